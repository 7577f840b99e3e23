"""Parameter draws: choice-coefficient vectors from an estimate's sampling distribution.

Reads the output folder of ``relocsim estimate`` (``estimates.csv``, ``covariance.csv``,
``estimated.toml``) and draws coefficient vectors from the multivariate normal with the
estimate as mean and the firm-clustered robust covariance, each applied to a scenario as
dotted-path overrides (the paths ``estimated.toml`` writes: a pooled coefficient sets every
sector's field).

A folder of ``relocsim calibrate`` (``estimates.csv``, ``covariance.csv``, ``calibrated.toml``)
is read the same way, with the simulated-moments covariance. A parameter that sets its fields'
value (``mode = "set"``) is drawn onto them as it is. A scale or shift parameter is drawn onto
each field relative to the value ``calibrated.toml`` gives it at the estimate: a scale estimated
at t that put v into a field puts v x draw / t there, a shift v + draw - t. So every field the
study moved is drawn jointly, with the correlations the whole study estimated.

Constraints: a vector is kept only if every coefficient lies in the range the scenario's schema
allows for its fields (nest scales in [0.01, 1], disutilities such as ``b_land`` or ``b_claw``
non-negative); otherwise the whole vector is drawn again. This is the normal approximation of
the likelihood truncated to the admissible set (the posterior under a flat prior on it), chosen
over drawing on a transformed scale (logit of a nest scale, log of a disutility, with the delta
method) because: far from a bound both give the same draws (a nest scale of 0.600 with SE 0.011
is never rejected), and near a bound, where the choice matters, the delta method breaks down
(a coefficient estimated at 1.24 with SE 1.53 would be log-normal with a mean of 2.6 and a 97.5%
quantile of 14), while truncation keeps the estimate's normal shape inside the bounds.
Rejection is reported (:attr:`ParameterDraws.rejected`) so a reader sees when it binds.

Reproducibility: draw ``k`` comes from its own random stream keyed by (seed, k), so it does not
depend on how many draws are made, and every variant of a study gets the same K vectors
(common parameters, as common random numbers).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relocsim.scenarios import Scenario, ScenarioError
from relocsim.scenarios.overrides import path_rule
from relocsim.scenarios.schema import Interval

FILES = ("estimates.csv", "covariance.csv", "estimated.toml")
CALIBRATION_FILES = ("estimates.csv", "covariance.csv", "calibrated.toml")
"""The files of a ``relocsim calibrate`` folder that parameter draws read."""
DRAW_LIMITS = (2, 10_000)
"""Allowed numbers of draws: one draw has no spread; 10,000 draws already pin a variance
share to about 1% (each draw is at least one simulation)."""
MAX_TRIES = 10_000
"""Proposals per draw before the truncation is declared impossible (acceptance below 1e-4)."""
STREAM = 0x50415241  # "PARA": keeps these streams apart from the simulation's (seed, ...) ones
PSD_TOLERANCE = 1e-9
"""An eigenvalue above -PSD_TOLERANCE x the largest counts as zero (rounding of the sandwich)."""
SIGNIFICANT = 12
"""Drawn values are rounded to 12 significant digits, so the run keys (hashes of the resolved
scenario) do not depend on the last bits of the linear algebra."""


class ParameterDrawError(ValueError):
    """An estimates folder or a draw request that cannot be used (one line, names the file)."""


@dataclass(frozen=True)
class Estimates:
    """An estimate and its sampling covariance, with the scenario paths of each coefficient.

    Attributes:
        directory: the estimates folder.
        names: coefficient names (P,), in estimates.csv order.
        mean: the estimates (P,).
        cov: the robust covariance (P, P), symmetric and positive semi-definite.
        paths: coefficient name -> the scenario dotted paths it sets.
        sha256: hash of the three files (provenance, and part of every run key via the values).
        overrides_file: the file of the folder that names the paths (``estimated.toml``, or
            ``calibrated.toml`` for a calibration).
        maps: path -> (offset, slope) of a path whose field is not the coefficient itself
            but offset + slope x coefficient (a calibration's scale and shift parameters); a
            path not here takes the coefficient's value.
    """

    directory: Path
    names: list[str]
    mean: np.ndarray
    cov: np.ndarray
    paths: dict[str, list[str]]
    sha256: str
    overrides_file: str = "estimated.toml"
    maps: dict[str, tuple[float, float]] = field(default_factory=dict)

    def field_value(self, path: str, coefficient: float) -> float:
        """The value ``path`` takes when its coefficient is ``coefficient``."""
        offset, slope = self.maps.get(path, (0.0, 1.0))
        return offset + slope * coefficient


def check_count(count: Any, where: str = "--parameter-draws") -> int:
    """The number of draws, or ParameterDrawError outside :data:`DRAW_LIMITS`."""
    low, high = DRAW_LIMITS
    if isinstance(count, bool) or not isinstance(count, int) or not low <= count <= high:
        raise ParameterDrawError(
            f"{where} {count!r}: expected an integer in [{low}, {high}] (the number of "
            "coefficient vectors drawn; one draw has no spread)"
        )
    return count


def _read_csv(path: Path, **options: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **options)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ParameterDrawError(f"{path}: cannot read it as CSV: {exc}") from exc


def _names_of_path(path: str) -> list[str]:
    """Coefficient names that may set ``path`` (the estimator's naming, estimation/spec.py):
    ``sectors.S.c`` is ``c[S]`` (by sector) or ``c`` (pooled); ``behaviour.c`` is ``c``;
    ``zones.Z.amenity`` is ``amenity[Z]``."""
    parts = path.split(".")
    if len(parts) == 3:
        return [f"{parts[2]}[{parts[1]}]", parts[2]]
    return [parts[-1]]


def _read_mean(directory: Path, name_column: str = "coefficient") -> pd.Series:
    path = directory / "estimates.csv"
    # names are text whatever they read like ("nan", "1"): numbers are checked column by column
    table = _read_csv(path, keep_default_na=False, dtype=str)
    for column in (name_column, "estimate"):
        if column not in table.columns:
            raise ParameterDrawError(
                f"{path}: no column '{column}'; expected the estimates.csv of relocsim estimate"
            )
    names = table[name_column].astype(str)
    duplicated = names[names.duplicated()]
    if len(duplicated):
        raise ParameterDrawError(f"{path}: coefficient {duplicated.iloc[0]!r} listed twice")
    values = pd.to_numeric(table["estimate"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(values.to_numpy(dtype=float)))
    if len(bad):
        raise ParameterDrawError(
            f"{path}: row {bad[0]} ({names.iloc[bad[0]]}): estimate "
            f"{table['estimate'].iloc[bad[0]]!r} is not a finite number"
        )
    if not len(names):
        raise ParameterDrawError(f"{path}: no coefficients")
    return pd.Series(values.to_numpy(dtype=float), index=list(names))


def _read_cov(directory: Path, names: list[str]) -> np.ndarray:
    path = directory / "covariance.csv"
    table = _read_csv(path, index_col=0, keep_default_na=False, dtype=str)
    rows, cols = [str(r) for r in table.index], [str(c) for c in table.columns]
    if sorted(rows) != sorted(names) or sorted(cols) != sorted(names):
        extra = sorted(set(rows) ^ set(names)) or sorted(set(cols) ^ set(names))
        raise ParameterDrawError(
            f"{path}: its coefficients do not match estimates.csv (differ in "
            f"{', '.join(extra) or 'order of rows and columns'}); are both files from the "
            "same relocsim estimate run?"
        )
    table.index, table.columns = rows, cols
    values = table.loc[names, names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise ParameterDrawError(f"{path}: entry ({names[i]}, {names[j]}) is not a finite number")
    scale = max(float(np.abs(values).max()), 1e-300)
    asym = np.abs(values - values.T)
    if asym.max() > 1e-8 * scale:
        i, j = np.unravel_index(int(asym.argmax()), asym.shape)
        raise ParameterDrawError(
            f"{path}: not symmetric: ({names[i]}, {names[j]}) = {values[i, j]!r} but "
            f"({names[j]}, {names[i]}) = {values[j, i]!r}"
        )
    values = 0.5 * (values + values.T)
    eigenvalues, vectors = np.linalg.eigh(values)
    if eigenvalues[0] < -PSD_TOLERANCE * max(eigenvalues[-1], 0.0) or eigenvalues[-1] <= 0:
        worst = names[int(np.abs(vectors[:, 0]).argmax())]
        raise ParameterDrawError(
            f"{path}: not positive semi-definite: smallest eigenvalue {eigenvalues[0]:.3g} "
            f"(largest {eigenvalues[-1]:.3g}), mostly along {worst}; expected a covariance "
            "matrix"
        )
    return values


def _read_paths(
    directory: Path,
    mean: pd.Series,
    file: str = "estimated.toml",
    owners: Callable[[str], list[str]] | None = None,
    relative: frozenset[str] = frozenset(),
) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Each coefficient's scenario paths, from the ``[overrides]`` of ``file``, and each path's
    value there; ``owners`` names the coefficients a path may belong to (default: the
    estimator's naming, :func:`_names_of_path`; a calibration's: the parameters whose study
    paths match it, and a path none matches, one the study fixed, is left out). A path's value
    must equal its coefficient's estimate unless the coefficient is in ``relative`` (a scale or
    shift of its fields)."""
    path = directory / file
    strict = owners is None
    owners = owners or _names_of_path
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParameterDrawError(f"{path}: cannot read it as TOML: {exc}") from exc
    if data.get("provenance", {}).get("converged") is False:
        raise ParameterDrawError(
            f"{path}: the estimation did not converge (its summary.txt says how far it got), so "
            "its covariance is no basis for coefficient draws; estimate again (more --starts, "
            "a simpler spec or more data)"
        )
    overrides = data.get("overrides")
    if not isinstance(overrides, dict) or not overrides:
        raise ParameterDrawError(
            f"{path}: no [overrides] table; expected the estimated.toml of relocsim estimate"
        )
    paths: dict[str, list[str]] = {name: [] for name in mean.index}
    values: dict[str, float] = {}
    for key, value in overrides.items():
        name = next((n for n in owners(key) if n in paths), None)
        if name is None and not strict:
            continue
        if name is None:
            raise ParameterDrawError(
                f"{path}: override '{key}' belongs to no coefficient of estimates.csv "
                f"(expected one of {', '.join(_names_of_path(key))}); are both files from the "
                "same relocsim estimate run?"
            )
        estimate = float(mean[name])
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterDrawError(f"{path}: override '{key}' = {value!r} is not a number")
        if name not in relative and not math.isclose(
            float(value), estimate, rel_tol=1e-9, abs_tol=1e-12
        ):
            raise ParameterDrawError(
                f"{path}: override '{key}' = {value!r} but estimates.csv has {name} = "
                f"{estimate!r}; are both files from the same relocsim estimate run?"
            )
        paths[name].append(key)
        values[key] = float(value)
    missing = [n for n, p in paths.items() if not p]
    if missing:
        raise ParameterDrawError(
            f"{path}: coefficient {missing[0]!r} of estimates.csv sets no scenario path here"
        )
    return paths, values


def read_estimates(directory: str | Path) -> Estimates:
    """Read and check an estimates folder (the ``--out`` of ``relocsim estimate``).

    Raises:
        ParameterDrawError: a missing folder or file, unreadable or inconsistent files, a
            covariance that is not symmetric positive semi-definite.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ParameterDrawError(
            f"{directory}: no such estimates folder; expected the --out folder of relocsim "
            f"estimate ({', '.join(FILES)}) or of relocsim calibrate"
        )
    if (directory / "calibrated.toml").is_file() and not (directory / "estimated.toml").exists():
        return _read_calibration(directory)
    for name in FILES:
        if not (directory / name).is_file():
            raise ParameterDrawError(
                f"{directory / name}: missing; an estimates folder holds {', '.join(FILES)} "
                "(relocsim estimate --out DIR)"
            )
    mean = _read_mean(directory)
    names = list(mean.index)
    cov = _read_cov(directory, names)
    paths, _ = _read_paths(directory, mean)
    digest = hashlib.sha256()
    for name in FILES:
        digest.update((directory / name).read_bytes())
    return Estimates(directory, names, mean.to_numpy(), cov, paths, digest.hexdigest())


def _pattern(study_path: str) -> re.Pattern[str]:
    """A calibration study's path (``*`` for every name at its level) as a regular expression."""
    return re.compile(r"[^.]+".join(re.escape(part) for part in study_path.split("*")))


def _read_calibration(directory: Path) -> Estimates:
    """A ``relocsim calibrate`` folder as an estimate: a set parameter is its fields' value, a
    scale or shift one maps onto each field from the value it has at the estimate."""
    for name in CALIBRATION_FILES:
        if not (directory / name).is_file():
            raise ParameterDrawError(
                f"{directory / name}: missing; a calibration folder holds "
                f"{', '.join(CALIBRATION_FILES)} (relocsim calibrate --out DIR; calibrations "
                "before session 20 wrote no covariance.csv: run the study again)"
            )
    mean = _read_mean(directory, name_column="parameter")
    names = list(mean.index)
    path = directory / "estimates.csv"
    table = _read_csv(path, keep_default_na=False, dtype=str)
    for column in ("mode", "paths"):
        if column not in table.columns:
            raise ParameterDrawError(
                f"{path}: no column '{column}'; expected the estimates.csv of relocsim calibrate"
            )
    modes = dict(zip(table["parameter"], table["mode"], strict=True))
    for name, mode in modes.items():
        if mode not in ("set", "scale", "shift"):
            raise ParameterDrawError(
                f"{path}: parameter {name!r} has mode {mode!r}; expected set, scale or shift"
            )
        if mode == "scale" and mean[name] == 0:
            raise ParameterDrawError(
                f"{path}: parameter {name!r} is a scale estimated at 0, which leaves its "
                "fields' base values unknown; it cannot be drawn"
            )
    patterns = {
        row.parameter: [_pattern(p) for p in row.paths.split(", ") if p]
        for row in table.itertuples()
    }
    paths, values = _read_paths(
        directory,
        mean,
        "calibrated.toml",
        lambda key: [n for n in names if any(p.fullmatch(key) for p in patterns.get(n, []))],
        frozenset(n for n, mode in modes.items() if mode != "set"),
    )
    maps = {
        key: (0.0, values[key] / mean[name])
        if modes[name] == "scale"
        else (values[key] - mean[name], 1.0)
        for name in names
        if modes[name] != "set"
        for key in paths[name]
    }
    digest = hashlib.sha256()
    for name in CALIBRATION_FILES:
        digest.update((directory / name).read_bytes())
    cov = _read_cov(directory, names)
    return Estimates(
        directory, names, mean.to_numpy(), cov, paths, digest.hexdigest(), "calibrated.toml", maps
    )


def _domain(estimates: Estimates, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound of each coefficient: the tightest its paths' schema ranges allow
    (through each path's map, for a scale or shift)."""
    low = np.full(len(estimates.names), -np.inf)
    high = np.full(len(estimates.names), np.inf)
    where = estimates.directory / estimates.overrides_file
    for i, name in enumerate(estimates.names):
        for path in estimates.paths[name]:
            try:
                rule = path_rule(scenario, path)
            except ScenarioError as exc:
                raise ParameterDrawError(
                    f"{where}: coefficient {name}: {exc} (scenario {scenario.name})"
                ) from exc
            if not isinstance(rule, Interval):
                raise ParameterDrawError(
                    f"{where}: coefficient {name} sets '{path}', which is not a number range "
                    "of the scenario"
                )
            offset, slope = estimates.maps.get(path, (0.0, 1.0))
            if slope == 0:  # a scale of a field at 0 leaves it at 0
                continue
            ends = sorted(((rule.low - offset) / slope, (rule.high - offset) / slope))
            low[i] = max(low[i], ends[0])
            high[i] = min(high[i], ends[1])
        if not low[i] <= estimates.mean[i] <= high[i]:
            raise ParameterDrawError(
                f"{estimates.directory / 'estimates.csv'}: coefficient {name} = "
                f"{estimates.mean[i]!r} is outside [{low[i]:g}, {high[i]:g}], the range its "
                f"paths ({estimates.paths[name][0]}, ...) allow in scenario {scenario.name}"
            )
    return low, high


def _square_root(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root of a PSD matrix (unique, so draws do not depend on how the
    eigenvectors come out)."""
    eigenvalues, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ vectors.T


@dataclass
class ParameterDraws:
    """K coefficient vectors drawn from an estimate, reproducible from (seed, draw index).

    Attributes:
        estimates: the estimate drawn from.
        seed: the study's (or run's) seed keying the draws.
        count: number of draws K.
        values: the draws (K, P), each inside the scenario's ranges.
        low, high: the range of each coefficient (P,).
        rejected: proposals rejected per coefficient outside its range (P,).
        proposals: proposals made in all (K when no bound binds).
    """

    estimates: Estimates
    seed: int
    count: int
    values: np.ndarray = field(repr=False)
    low: np.ndarray = field(repr=False)
    high: np.ndarray = field(repr=False)
    rejected: np.ndarray = field(repr=False)
    proposals: int = 0

    @property
    def names(self) -> list[str]:
        return self.estimates.names

    def overrides(self, k: int) -> dict[str, float]:
        """Dotted-path scenario overrides of draw ``k``."""
        row = self.values[k]
        return {
            path: _rounded(self.estimates.field_value(path, float(row[i])))
            for i, name in enumerate(self.names)
            for path in self.estimates.paths[name]
        }

    def table(self) -> pd.DataFrame:
        """One row per draw: ``draw`` and one column per coefficient."""
        frame = pd.DataFrame(self.values, columns=self.names)
        frame.insert(0, "draw", np.arange(self.count))
        return frame

    def describe(self) -> str:
        """One line: what was drawn, and whether the truncation to the ranges bound."""
        line = (
            f"{self.count} parameter draws of {len(self.names)} coefficients from "
            f"{self.estimates.directory} (seed {self.seed})"
        )
        if self.proposals > self.count:
            worst = ", ".join(
                f"{self.names[i]} {int(self.rejected[i])}"
                for i in np.argsort(-self.rejected)[:3]
                if self.rejected[i]
            )
            line += (
                f"; {self.proposals - self.count} of {self.proposals} proposals fell outside "
                f"the scenario's ranges and were drawn again ({worst})"
            )
        return line


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT}g}")


def draw_vector(
    estimates: Estimates,
    root: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    seed: int,
    k: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Draw ``k`` of ``seed``: the first proposal inside [low, high].

    Returns:
        (vector, rejections per coefficient, proposals made).
    """
    rng = np.random.default_rng([STREAM, seed, k])
    rejected = np.zeros(len(low))
    for tries in range(1, MAX_TRIES + 1):
        vector = estimates.mean + root @ rng.standard_normal(len(low))
        outside = (vector < low) | (vector > high)
        if not outside.any():
            return np.clip([_rounded(v) for v in vector], low, high), rejected, tries
        rejected += outside
    worst = estimates.names[int(rejected.argmax())]
    raise ParameterDrawError(
        f"{estimates.directory / 'covariance.csv'}: draw {k}: none of {MAX_TRIES} vectors from "
        f"the estimate's distribution lies inside the scenario's ranges (mostly {worst} "
        "outside); the estimate is too uncertain near a bound to be drawn from"
    )


def draw_parameters(
    estimates: Estimates | str | Path, scenario: Scenario, count: int, seed: int
) -> ParameterDraws:
    """Draw ``count`` coefficient vectors for ``scenario``, keyed by (``seed``, draw index).

    Raises:
        ParameterDrawError: bad estimates folder, a coefficient unknown to the scenario or
            outside its range, ``count`` outside :data:`DRAW_LIMITS`.
    """
    check_count(count)
    if not isinstance(estimates, Estimates):
        estimates = read_estimates(estimates)
    low, high = _domain(estimates, scenario)
    root = _square_root(estimates.cov)
    values = np.empty((count, len(low)))
    rejected = np.zeros(len(low))
    proposals = 0
    for k in range(count):
        values[k], rejections, tries = draw_vector(estimates, root, low, high, seed, k)
        rejected += rejections
        proposals += tries
    return ParameterDraws(estimates, seed, count, values, low, high, rejected, proposals)


DONE = "draw.json"
"""Written last into a draw's run folder of ``relocsim run --parameter-draws``: its request and
measures; a folder holding it (for the same request) is not run again."""


def read_done(folder: Path, request: dict[str, Any]) -> dict[str, float] | None:
    """The measures of a finished draw run in ``folder`` for ``request``, else ``None``."""
    path = folder / DONE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if stored.get("request") != json.loads(json.dumps(request, default=str)):
        return None
    measures = stored.get("measures")
    return measures if isinstance(measures, dict) else None


def run_measures(results: Any) -> dict[str, float]:
    """A run's summary by region (``relocsim.summary.summary_table``) as flat measures:
    ``"<region>: <column>"`` -> value."""
    from relocsim.summary import summary_table

    table = summary_table(results)
    return {
        f"{region}: {column}": float(value)
        for region, row in table.iterrows()
        for column, value in row.items()
    }


def summarise_runs(table: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """Mean, sd, 2.5%, 50% and 97.5% quantiles and n of each measure over the draws' runs."""
    rows = []
    for name in measures:
        values = table[name].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        rows.append(
            {
                "measure": name,
                "mean": values.mean() if len(values) else np.nan,
                "sd": values.std(ddof=1) if len(values) > 1 else np.nan,
                "q2.5": np.quantile(values, 0.025) if len(values) else np.nan,
                "median": np.median(values) if len(values) else np.nan,
                "q97.5": np.quantile(values, 0.975) if len(values) else np.nan,
                "n": len(values),
            }
        )
    return pd.DataFrame(rows)
