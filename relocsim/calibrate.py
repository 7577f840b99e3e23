"""``relocsim calibrate STUDY.toml``: the method of simulated moments against the fact registry.

The free parameters are those no micro-data estimator identifies (demography, land market,
decision propensities); the moments are the study's targeted facts (:mod:`relocsim.facts`) in
each window of years (decades), each the mean over the study's seeds. Every parameter vector is
simulated with the same seeds (common random numbers), so the criterion does not jump from
sampling noise between nearby vectors.

The estimation is estimagic's ``estimate_msm`` (on optimagic): the optimiser (default
``nag_dfols``, NAG's derivative-free least-squares trust region, which uses the least-squares
structure of the MSM criterion and needs few evaluations), standard errors from the sandwich
formula (:func:`estimate_covariance`: the ranges' variance plus the simulation noise of the
seeds' mean) and the sensitivity measures of Honore, Jorgensen & de Paula (2020). Weights come from
the target ranges: a range is read as +- 2 standard deviations, so the moment's variance is
((high - low) / 4)^2 and its weight the inverse. The Jacobian of the moments is computed here by
central differences with steps of ``jacobian_step`` times each parameter's bounds, all its
simulations in one parallel batch (estimagic's default steps are far below the resolution of a
simulation with a finite number of firms).

Every simulation (one parameter vector x one seed) is stored on disk as it finishes, keyed by a
hash of the scenario, the overrides, the seed, the years, the fact registry and the installed
code (``OUT/simulations/<key>.parquet``, written atomically; :mod:`relocsim.fact_runs`), and
simulations run on the sweep backends (serial, process pool, Dask). The optimiser's path is
deterministic given the simulated values, so an interrupted calibration run again replays its
path from the store and simulates nothing twice.

Outputs in ``OUT``: ``estimates.csv`` (estimate, SE, 95% CI), ``moments.csv`` (moment fit),
``sensitivity.csv`` (each parameter's sensitivity to each moment), ``jacobian.csv``,
``covariance.csv`` (the estimate's sampling covariance: with ``estimates.csv`` and
``calibrated.toml`` the folder is an ``--estimates DIR`` for ``--parameter-draws`` when every
parameter sets its fields' value, :mod:`relocsim.parameter_draws`),
``calibrated.toml`` (the overrides with provenance), ``summary.md`` and ``evaluations.csv`` (every
criterion evaluation, appended as the optimiser goes; a log of another parameter set found there
is renamed ``evaluations.N.csv``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import relocsim
from relocsim.fact_runs import (
    FactRun,
    RunStore,
    base_fingerprint,
    measure_runs,
    report_interrupted,
    run_key,
)
from relocsim.facts import Fact, FactError, load_facts
from relocsim.scenarios import Scenario, ScenarioError, apply_overrides, load_scenario, writeback
from relocsim.scenarios.files import TOML_FILE
from relocsim.scenarios.overrides import field_view
from relocsim.toml_types import is_finite_number, is_integer
from relocsim.validate import GivenOnce, format_seeds, parse_seeds, windows_of

MODES = ("set", "scale", "shift")
PENALTY_SD = 10.0
"""A moment the run could not measure (NaN) counts as this many standard deviations off."""


class StudyError(ValueError):
    """A calibration study file holds a value the calibrator cannot use."""


@dataclass(frozen=True)
class Parameter:
    """A free parameter: one number written to one or more scenario fields.

    Attributes:
        name: its name in the outputs.
        paths: dotted scenario paths it sets; ``*`` stands for every key of a table
            (``sectors.*.birth_rate``).
        mode: ``set`` writes the value; ``scale`` multiplies each field's base value by it;
            ``shift`` adds it to each field's base value.
        start: start value of the optimiser; ``None`` in a study file without one: the scenario's
            own value (``set``: the fields' common value; ``scale``: 1; ``shift``: 0), resolved
            by :class:`Calibrator`.
        lower: lower bound.
        upper: upper bound.
    """

    name: str
    paths: tuple[str, ...]
    mode: str
    start: float | None
    lower: float
    upper: float


@dataclass
class CalibrationStudy:
    """What a calibration study file says.

    Attributes:
        name: study name.
        scenario: base scenario (built-in name, path or ``synthetic:...``).
        years: simulated years of every run.
        seeds: the common random numbers: the seeds every parameter vector is run with.
        facts: ids of the targeted facts (default: every ``target`` of the registry).
        facts_file: fact file (default: the registry shipped with relocsim).
        parameters: the free parameters.
        fixed: overrides held fixed in every run (e.g. ``burn_in_years``).
        algorithm: optimagic algorithm.
        algo_options: its options.
        jacobian_step: finite-difference step as a share of each parameter's bounds.
        path: the study file.
    """

    name: str
    scenario: str
    years: int
    seeds: tuple[int, ...]
    parameters: tuple[Parameter, ...]
    facts: tuple[str, ...] = ()
    facts_file: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    algorithm: str = "nag_dfols"
    algo_options: dict[str, Any] = field(default_factory=dict)
    jacobian_step: float = 0.05
    path: str = ""


def load_study(path: str | Path) -> CalibrationStudy:
    """Read and check a calibration study file; errors name the file, field and value."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StudyError(f"{path}: cannot read the study file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from exc
    where = str(path)
    head = raw.get("calibration")
    if not isinstance(head, dict):
        raise StudyError(f"{where}: missing table [calibration]")
    known = {
        "name",
        "scenario",
        "years",
        "seeds",
        "facts",
        "facts_file",
        "fixed",
        "algorithm",
        "algo_options",
        "jacobian_step",
    }
    unknown = sorted(set(head) - known)
    if unknown:
        raise StudyError(
            f"{where}: field 'calibration.{unknown[0]}' is unknown; expected one of "
            + ", ".join(sorted(known))
        )
    years = head.get("years", 30)
    if not is_integer(years) or years < 1:
        raise StudyError(f"{where}: field 'calibration.years': value {years!r}; expected >= 1")
    seeds = head.get("seeds", [0, 1, 2])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(is_integer(s) for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise StudyError(
            f"{where}: field 'calibration.seeds': value {seeds!r}; expected distinct integers"
        )
    step = _number(head.get("jacobian_step", 0.05), f"{where}: field 'calibration.jacobian_step'")
    if not 0 < step <= 0.5:
        raise StudyError(
            f"{where}: field 'calibration.jacobian_step': value {step}; expected in (0, 0.5]"
        )
    text = {key: _typed(head, key, str, where, "a string") for key in TEXT_FIELDS if key in head}
    tables = {key: _typed(head, key, dict, where, "a table") for key in TABLE_FIELDS}
    facts = _typed(head, "facts", list, where, "a list of fact ids")
    if not all(isinstance(f, str) for f in facts):
        raise StudyError(
            f"{where}: field 'calibration.facts': value {facts!r}; expected a list of fact ids"
        )
    items = raw.get("parameter", [])
    if not isinstance(items, list):
        raise StudyError(f"{where}: 'parameter' must be [[parameter]] tables")
    parameters = tuple(_parameter(item, where, i) for i, item in enumerate(items))
    if not parameters:
        raise StudyError(f"{where}: no [[parameter]] entries; expected at least one")
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise StudyError(f"{where}: parameter names must be distinct: {names}")
    facts_file = text.get("facts_file")
    if facts_file is not None:
        facts_file = str((path.parent / facts_file).resolve())
    return CalibrationStudy(
        name=text.get("name", path.stem),
        scenario=text.get("scenario", "brussels-metro"),
        years=years,
        seeds=tuple(seeds),
        parameters=parameters,
        facts=tuple(facts),
        facts_file=facts_file,
        fixed=tables["fixed"],
        algorithm=text.get("algorithm", "nag_dfols"),
        algo_options=tables["algo_options"],
        jacobian_step=step,
        path=str(path),
    )


TEXT_FIELDS = ("name", "scenario", "facts_file", "algorithm")
TABLE_FIELDS = ("fixed", "algo_options")
_EMPTY: dict[type, Any] = {dict: {}, list: []}


def _typed(head: Mapping[str, Any], key: str, kind: type, where: str, expected: str) -> Any:
    """``calibration.<key>`` if it is of ``kind`` (an empty one if absent), else an error."""
    value = head.get(key, _EMPTY.get(kind))
    if not isinstance(value, kind):
        raise StudyError(
            f"{where}: field 'calibration.{key}': value {value!r}; expected {expected}"
        )
    return value


def _number(value: Any, label: str) -> float:
    """A finite number (TOML integer or float, not a boolean), else an error naming ``label``."""
    if not is_finite_number(value):
        raise StudyError(f"{label}: value {value!r}; expected a finite number")
    return float(value)


def _parameter(item: Any, where: str, index: int) -> Parameter:
    if not isinstance(item, dict):
        raise StudyError(f"{where}: parameter[{index}]: expected a [[parameter]] table")
    name = f"{where}: parameter[{index}] ({item.get('name', '?')})"
    for key in ("name", "paths", "lower", "upper"):
        if key not in item:
            raise StudyError(f"{name}: field '{key}' is missing")
    if not isinstance(item["name"], str) or not item["name"]:
        raise StudyError(f"{name}: field 'name': value {item['name']!r}; expected a name")
    paths = item["paths"]
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise StudyError(
            f"{name}: field 'paths': value {item['paths']!r}; expected a dotted scenario path "
            "or a list of them"
        )
    mode = item.get("mode", "set")
    if mode not in MODES:
        raise StudyError(f"{name}: field 'mode': value {mode!r}; expected one of {MODES}")
    lower = _number(item["lower"], f"{name}: field 'lower'")
    upper = _number(item["upper"], f"{name}: field 'upper'")
    start = _number(item["start"], f"{name}: field 'start'") if "start" in item else None
    _check_bounds(name, start, lower, upper)
    return Parameter(item["name"], tuple(paths), mode, start, lower, upper)


def _check_bounds(name: str, start: float | None, lower: float, upper: float) -> None:
    if not lower < upper or (start is not None and not lower <= start <= upper):
        raise StudyError(
            f"{name}: expected lower < upper and start within them; got lower={lower}, "
            f"start={start}, upper={upper}"
        )


def resolve_starts(base: Scenario, parameters: Sequence[Parameter]) -> tuple[Parameter, ...]:
    """Parameters whose study gave no ``start`` start from the scenario's own values: a ``set``
    parameter from its fields' common value (an error if they differ), ``scale`` from 1,
    ``shift`` from 0; so a study run again after its estimates were written into the scenario
    (``--write-scenario``) restarts where the last one ended."""
    resolved = []
    for p in parameters:
        start = p.start
        fields = _numeric_fields(base, p)
        if start is None and p.mode == "set":
            values = set(fields.values())
            if len(values) != 1:
                raise StudyError(
                    f"parameter {p.name}: no 'start', and its fields hold different values "
                    f"{sorted(values)}; give a start"
                )
            start = values.pop()
        elif start is None:
            start = 1.0 if p.mode == "scale" else 0.0
        _check_bounds(f"parameter {p.name}", start, p.lower, p.upper)
        resolved.append(replace(p, start=start))
    return tuple(resolved)


# --------------------------------------------------------------------------------------------
# From parameter values to scenario overrides


def expand_path(scenario: Scenario, path: str) -> list[str]:
    """Expand the ``*`` of a dotted path over the keys of the table it stands in."""
    parts = path.split(".")
    prefixes = [""]
    node_of: dict[str, Any] = {"": scenario}
    for part in parts:
        expanded = []
        for prefix in prefixes:
            node = node_of[prefix]
            keys = list(node) if part == "*" and isinstance(node, dict) else [part]
            for key in keys:
                full = f"{prefix}.{key}" if prefix else key
                expanded.append(full)
                if isinstance(node, dict):
                    node_of[full] = node.get(key)
                else:
                    node_of[full] = field_view(node, key) if hasattr(node, key) else None
        prefixes = expanded
    return prefixes


def _numeric_fields(base: Scenario, parameter: Parameter) -> dict[str, float]:
    """The numeric fields ``parameter``'s paths stand for, with their values; an error names a
    path that is not a numeric field of the scenario."""
    fields = {}
    for pattern in parameter.paths:
        for path in expand_path(base, pattern):
            try:
                value = _value_at(base, path)
            except (AttributeError, KeyError, TypeError):
                value = None
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StudyError(
                    f"parameter {parameter.name}: path {path!r} (from {pattern!r}) is not a "
                    "numeric field of the scenario"
                )
            fields[path] = float(value)
    if not fields:
        raise StudyError(
            f"parameter {parameter.name}: paths {list(parameter.paths)} match no field"
        )
    return fields


def _value_at(scenario: Scenario, path: str) -> Any:
    node: Any = scenario
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else field_view(node, part)
    return node


def parameter_overrides(
    base: Scenario, parameters: Sequence[Parameter], values: Sequence[float]
) -> dict[str, float]:
    """The dotted-path overrides a parameter vector stands for."""
    overrides: dict[str, float] = {}
    for parameter, value in zip(parameters, values, strict=True):
        for pattern in parameter.paths:
            for path in expand_path(base, pattern):
                if parameter.mode == "scale":
                    overrides[path] = float(_value_at(base, path)) * float(value)
                elif parameter.mode == "shift":
                    overrides[path] = float(_value_at(base, path)) + float(value)
                else:
                    overrides[path] = float(value)
    return overrides


def _set_aside_other_study_log(path: Path, columns: list[str]) -> None:
    """An evaluation log whose columns are another parameter set's is renamed
    ``evaluations.N.csv`` (first free N), so a study with other parameters starts its own log
    instead of appending rows under the wrong header."""
    if not path.exists():
        return
    with path.open() as log:
        header = log.readline().strip().split(",")
    if header == columns:
        return
    n = 1
    while path.with_name(f"evaluations.{n}.csv").exists():
        n += 1
    path.rename(path.with_name(f"evaluations.{n}.csv"))


# --------------------------------------------------------------------------------------------
# The calibrator


@dataclass
class Moments:
    """The targeted moments: one per targeted fact and window.

    Attributes:
        index: ``fact@window`` labels.
        facts: the fact of each moment.
        windows: its window label.
        empirical: the source's value (midpoint of the range where no value is given).
        sd: the range read as +- 2 standard deviations: (high - low) / 4.
    """

    index: list[str]
    facts: list[Fact]
    windows: list[str]
    empirical: np.ndarray
    sd: np.ndarray


class Calibrator:
    """Simulated moments of a study, with a store of simulations and a sweep backend.

    Args:
        study: the study.
        out: output folder (holds the store of simulations).
        workers: local worker processes (1: in this process).
        dask_scheduler, dask_local: run on Dask instead.
        on_simulation: called with the number of simulations this calibrator ran, after each
            (tests inject interruptions here).
        progress: show progress.
    """

    def __init__(
        self,
        study: CalibrationStudy,
        out: str | Path,
        workers: int = 1,
        dask_scheduler: str | None = None,
        dask_local: int | None = None,
        on_simulation: Callable[[int], None] | None = None,
        progress: bool = False,
    ) -> None:
        self.out = Path(out)
        self.base = load_scenario(study.scenario)
        if study.fixed:
            self.base = apply_overrides(self.base, study.fixed)
        try:
            starts = resolve_starts(self.base, study.parameters)
        except StudyError as exc:
            raise StudyError(f"{study.path}: {exc}") from None
        self.study = study = replace(study, parameters=starts)
        self.registry = load_facts(study.facts_file)
        self.windows = windows_of(self.base, study.years)
        self.store = RunStore(self.out / "simulations")
        self.workers = workers
        self.dask_scheduler, self.dask_local = dask_scheduler, dask_local
        self.on_simulation = on_simulation
        self.progress = progress
        self.simulated = 0
        self.reused = 0
        self.evaluations = 0
        self.lower = np.array([p.lower for p in study.parameters])
        self.upper = np.array([p.upper for p in study.parameters])
        self.moments = self._targeted_moments()
        # the start vector is checked once here, so a bad path fails before any simulation
        self.overrides(np.array([p.start for p in study.parameters]))
        self._fingerprint = base_fingerprint(self.base, study.years, self.windows, self.registry)

    def _targeted_moments(self) -> Moments:
        by_id = {f.id: f for f in self.registry}
        wanted = self.study.facts or tuple(f.id for f in self.registry if f.role == "target")
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise StudyError(
                f"{self.study.path}: field 'calibration.facts': {missing[0]!r} is not in the "
                "fact registry"
            )
        facts = [by_id[i] for i in wanted]
        rows = [(f, f"{a}-{b}") for f in facts for a, b in self.windows]
        empirical = [f.value if np.isfinite(f.value) else (f.low + f.high) / 2 for f, _ in rows]
        sd = [max(f.width / 4, 1e-12) for f, _ in rows]
        return Moments(
            index=[f"{f.id}@{w}" for f, w in rows],
            facts=[f for f, _ in rows],
            windows=[w for _, w in rows],
            empirical=np.array(empirical),
            sd=np.array(sd),
        )

    def overrides(self, values: np.ndarray) -> dict[str, Any]:
        """The scenario overrides of a parameter vector (checked against the scenario)."""
        changes = parameter_overrides(self.base, self.study.parameters, values)
        try:
            apply_overrides(self.base, changes)
        except ScenarioError as exc:
            raise StudyError(f"{self.study.path}: parameters {list(values)}: {exc}") from exc
        return changes

    def key(self, values: np.ndarray, seed: int) -> str:
        changes = parameter_overrides(self.base, self.study.parameters, values)
        return run_key(self._fingerprint, changes, seed)

    def simulate(self, vectors: Sequence[np.ndarray]) -> list[pd.DataFrame]:
        """Measured facts of every vector x seed (from the store or simulated in one batch)."""
        runs = {}
        for values in vectors:
            changes = self.overrides(values)
            for seed in self.study.seeds:
                runs[run_key(self._fingerprint, changes, seed)] = FactRun(
                    seed, self.study.years, changes, self.windows, self.registry
                )
        measured = measure_runs(
            self.base,
            runs,
            self.store,
            self.workers,
            self.dask_scheduler,
            self.dask_local,
            self.progress,
            desc="simulations",
            on_run=self._count_simulation,
        )
        self.reused += measured.reused
        tables = measured.tables
        return [
            pd.concat([tables[self.key(v, s)] for s in self.study.seeds], ignore_index=True)
            for v in vectors
        ]

    def _count_simulation(self, _: int) -> None:
        self.simulated += 1
        if self.on_simulation is not None:
            self.on_simulation(self.simulated)

    def moment_values(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over seeds of every targeted moment."""
        labelled = table.assign(label=table["fact"] + "@" + table["window"])
        stats = labelled.groupby("label")["value"].agg(["mean", "std"]).reindex(self.moments.index)
        return stats["mean"].to_numpy(), stats["std"].to_numpy()

    def simulate_moments(self, values: np.ndarray) -> np.ndarray:
        """The targeted moments at ``values`` (a moment the runs cannot measure is penalised).

        Each evaluation is appended to ``OUT/evaluations.csv`` (parameters, criterion, moments
        in range), to follow a long calibration.
        """
        values = np.asarray(values, float)
        mean, _ = self.moment_values(self.simulate([values])[0])
        self._log_evaluation(values, mean)
        return self._penalise(mean)

    def _log_evaluation(self, values: np.ndarray, mean: np.ndarray) -> None:
        m = self.moments
        measured = np.isfinite(mean)
        criterion = float(np.sum(((mean[measured] - m.empirical[measured]) / m.sd[measured]) ** 2))
        in_range = sum(f.contains(v) for f, v in zip(m.facts, mean, strict=True))
        row = {p.name: v for p, v in zip(self.study.parameters, values, strict=True)}
        row.update(criterion=criterion, in_range=in_range, moments=len(mean))
        path = self.out / "evaluations.csv"
        if self.evaluations == 0:
            _set_aside_other_study_log(path, list(row))
        pd.DataFrame([row]).to_csv(path, mode="a", header=not path.exists(), index=False)
        self.evaluations += 1
        if self.progress:
            print(
                f"evaluation {self.evaluations}: criterion {criterion:.4g}, "
                f"{in_range}/{len(mean)} moments in range",
                file=sys.stderr,
            )

    def _penalise(self, mean: np.ndarray) -> np.ndarray:
        m = self.moments
        return np.where(np.isfinite(mean), mean, m.empirical + PENALTY_SD * m.sd)

    def jacobian(self, values: np.ndarray) -> np.ndarray:
        """d moments / d parameters by central differences (one-sided at a bound), one batch."""
        values = np.asarray(values, float)
        h = self.study.jacobian_step * (self.upper - self.lower)
        points = []
        for k in range(len(values)):
            up, down = values.copy(), values.copy()
            up[k] = min(values[k] + h[k], self.upper[k])
            down[k] = max(values[k] - h[k], self.lower[k])
            points.extend([up, down])
        tables = self.simulate(points)
        columns = []
        for k in range(len(values)):
            up = self._penalise(self.moment_values(tables[2 * k])[0])
            down = self._penalise(self.moment_values(tables[2 * k + 1])[0])
            columns.append((up - down) / (points[2 * k][k] - points[2 * k + 1][k]))
        return np.column_stack(columns)

    def usable_moments(self, values: np.ndarray) -> np.ndarray:
        """Which moments the runs at ``values`` can measure (the others are left out)."""
        mean, _ = self.moment_values(self.simulate([values])[0])
        return np.isfinite(mean)


# --------------------------------------------------------------------------------------------
# Estimation


@dataclass
class CalibrationResult:
    """What a calibration produced.

    Attributes:
        estimates: per parameter: start, bounds, estimate, SE, 95% CI.
        moments: per moment: fact, window, range, target, simulated (mean and SD over seeds),
            in range, weight, contribution to the criterion.
        sensitivity: parameters x moments, estimagic's ``sensitivity(kind="bias")``.
        jacobian: moments x parameters at the estimate.
        covariance: parameters x parameters, the estimate's sampling covariance (the SEs are
            the square roots of its diagonal).
        overrides: the calibrated scenario overrides.
        criterion: the weighted sum of squared deviations at the estimate.
        simulated: simulations run by this call; reused: found in the store.
        elapsed_s: wall time.
    """

    estimates: pd.DataFrame
    moments: pd.DataFrame
    sensitivity: pd.DataFrame
    jacobian: pd.DataFrame
    covariance: pd.DataFrame
    overrides: dict[str, Any]
    criterion: float
    simulated: int
    reused: int
    elapsed_s: float


def estimate_covariance(
    jac: np.ndarray, range_sd: np.ndarray, seed_sd: np.ndarray | None, n_seeds: int
) -> np.ndarray:
    """The estimate's sampling covariance: estimagic's sandwich for weights that are not the
    efficient ones (``cov_robust``), with the weights the criterion used (the ranges') and, as
    the moments' covariance, the ranges' variance plus the simulation noise of a mean over
    ``n_seeds`` seeds (each moment's variance over the seeds / S; diagonal, since a handful of
    seeds cannot estimate the moments' correlations). The estimate is a function of the seeds
    the calibration drew, so their noise is part of its error (McFadden 1989; Pakes & Pollard
    1989; Gourieroux & Monfort 1996, ch. 2). ``seed_sd`` None leaves the noise out; a moment
    whose spread over the seeds is unknown (one seed) adds none.

    Args:
        jac: moments x parameters, at the estimate.
        range_sd: each moment's range read as +- 2 SD ((high - low) / 4).
        seed_sd: each moment's SD over the seeds at the estimate.
        n_seeds: the seeds each moment is the mean of.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from estimagic.msm_covs import cov_robust

    noise = np.zeros_like(range_sd) if seed_sd is None else np.nan_to_num(seed_sd) ** 2 / n_seeds
    moments_cov = np.diag(range_sd**2 + noise)
    return np.asarray(cov_robust(jac, np.diag(1.0 / range_sd**2), moments_cov), float)


@contextmanager
def _unwrapped(wrapper: type[Exception]) -> Iterator[None]:
    """Re-raise the error a simulation raised (a dead worker, an interruption) rather than the
    optimiser's wrapper around it, so that callers can tell a resumable stop."""
    try:
        yield
    except wrapper as exc:
        if exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise


def calibrate(calibrator: Calibrator) -> CalibrationResult:
    """Estimate the study's parameters by the method of simulated moments (estimagic)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import estimagic as em
        import optimagic as om

    started = time.perf_counter()
    study = calibrator.study
    start = np.array([p.start for p in study.parameters])
    usable = calibrator.usable_moments(start)
    if not usable.any():
        raise StudyError(f"{study.path}: none of the targeted facts can be measured on the runs")
    m = calibrator.moments
    keep = np.flatnonzero(usable)

    def simulate_moments(values: np.ndarray) -> np.ndarray:
        return calibrator.simulate_moments(values)[keep]

    def jacobian(values: np.ndarray) -> np.ndarray:
        return calibrator.jacobian(values)[keep]

    options = {"initial_directions": "coordinate"} if study.algorithm == "nag_dfols" else {}
    options.update(study.algo_options)
    np.random.seed(0)  # some optimisers draw directions from NumPy's global state
    with warnings.catch_warnings(), _unwrapped(om.exceptions.UserFunctionRuntimeError):
        warnings.simplefilter("ignore", FutureWarning)
        result = em.estimate_msm(
            simulate_moments=simulate_moments,
            empirical_moments=m.empirical[keep],
            moments_cov=np.diag(m.sd[keep] ** 2),
            params=start,
            optimize_options={
                "algorithm": study.algorithm,
                "algo_options": options,
                "scaling": om.ScalingOptions(method="bounds"),
            },
            bounds=om.Bounds(lower=calibrator.lower, upper=calibrator.upper),
            jacobian=jacobian,
        )
        estimate = np.asarray(result.params, float)
        sensitivity = np.asarray(result.sensitivity(kind="bias"), float)
    mean, sd = calibrator.moment_values(calibrator.simulate([estimate])[0])
    jac = calibrator.jacobian(estimate)[keep]
    cov = estimate_covariance(jac, m.sd[keep], sd[keep], len(study.seeds))
    se = np.sqrt(np.diag(cov))
    se_ranges = np.sqrt(np.diag(estimate_covariance(jac, m.sd[keep], None, len(study.seeds))))
    names = [p.name for p in study.parameters]
    estimates = pd.DataFrame(
        {
            "parameter": names,
            "paths": [", ".join(p.paths) for p in study.parameters],
            "mode": [p.mode for p in study.parameters],
            "start": start,
            "lower": calibrator.lower,
            "upper": calibrator.upper,
            "estimate": estimate,
            "se": se,
            "se_without_simulation_noise": se_ranges,
            "ci_low": estimate - 1.96 * se,
            "ci_high": estimate + 1.96 * se,
            # the sandwich SE ignores bounds: an estimate on a bound says the moments want more
            "at_bound": np.isclose(estimate, calibrator.lower)
            | np.isclose(estimate, calibrator.upper),
        }
    )
    deviation = (mean - m.empirical) / m.sd
    moments = pd.DataFrame(
        {
            "moment": m.index,
            "fact": [f.id for f in m.facts],
            "window": m.windows,
            "low": [f.low for f in m.facts],
            "high": [f.high for f in m.facts],
            "target": m.empirical,
            "simulated": mean,
            "seed_sd": sd,
            "in_range": [f.contains(v) for f, v in zip(m.facts, mean, strict=True)],
            "used": usable,
            "weight": 1.0 / m.sd**2,
            "contribution": np.where(usable, deviation**2, np.nan),
        }
    )
    used_index = [m.index[i] for i in keep]
    return CalibrationResult(
        estimates=estimates,
        moments=moments,
        sensitivity=pd.DataFrame(sensitivity, index=names, columns=used_index),
        jacobian=pd.DataFrame(jac, index=used_index, columns=names),
        covariance=pd.DataFrame(cov, index=names, columns=names),
        overrides=calibrator.overrides(estimate),
        criterion=float(np.nansum(moments["contribution"])),
        simulated=calibrator.simulated,
        reused=calibrator.reused,
        elapsed_s=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------------------------
# Outputs


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(float(value)) if isinstance(value, float) else str(value)
    return json.dumps(str(value))


def overrides_toml(result: CalibrationResult, study: CalibrationStudy) -> str:
    """The calibrated overrides as TOML, with provenance in comments and a [provenance] table."""
    lines = [
        f"# Calibrated overrides of '{study.scenario}' by relocsim calibrate {study.path}",
        "# Method of simulated moments (estimagic estimate_msm); estimates, SEs and the moment",
        "# fit in estimates.csv and moments.csv beside this file.",
        "",
        "[provenance]",
        f"study = {json.dumps(study.path)}",
        f"scenario = {json.dumps(study.scenario)}",
        f"date = {json.dumps(dt.datetime.now(dt.UTC).isoformat(timespec='seconds'))}",
        f"relocsim = {json.dumps(relocsim.__version__)}",
        f"python = {json.dumps(platform.python_version())}",
        f"seeds = {list(study.seeds)}",
        f"years = {study.years}",
        f"algorithm = {json.dumps(study.algorithm)}",
        f"criterion = {result.criterion!r}",
        f"targeted_facts = {json.dumps(sorted(set(result.moments['fact'])))}",
        "",
        "[overrides]",
    ]
    fixed = dict(study.fixed)
    for path, value in {**fixed, **result.overrides}.items():
        note = "fixed by the study" if path in fixed else "calibrated"
        lines.append(f"{json.dumps(path)} = {_toml_value(value)}  # {note}")
    lines.append("")
    lines.append("[estimates]  # parameter = [estimate, standard error]")
    for row in result.estimates.itertuples():
        lines.append(f"{json.dumps(row.parameter)} = [{row.estimate!r}, {row.se!r}]")
    return "\n".join(lines) + "\n"


def load_overrides(path: str | Path) -> dict[str, Any]:
    """The ``[overrides]`` table of a calibrated TOML (for ``RelocationModel(overrides=...)``)."""
    return dict(tomllib.loads(Path(path).read_text(encoding="utf-8"))["overrides"])


def write_outputs(result: CalibrationResult, study: CalibrationStudy, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "estimates.csv": result.estimates,
        "moments.csv": result.moments,
        "sensitivity.csv": result.sensitivity,
        "jacobian.csv": result.jacobian,
        "covariance.csv": result.covariance,
    }
    written = []
    for name, table in paths.items():
        table.to_csv(
            out / name, index=name in ("sensitivity.csv", "jacobian.csv", "covariance.csv")
        )
        written.append(out / name)
    (out / "calibrated.toml").write_text(overrides_toml(result, study), encoding="utf-8")
    written.append(out / "calibrated.toml")
    summary = [
        f"# Calibration {study.name}",
        "",
        f"{len(study.seeds)} seeds x {study.years} years; {result.simulated} simulations run, "
        f"{result.reused} found in the store; {result.elapsed_s:.0f} s; criterion "
        f"{result.criterion:.3g}.",
        "",
        "SE: the ranges' uncertainty and the simulation noise of a mean over the seeds; the "
        "ranges' alone in brackets (more seeds bring the SE towards it).",
        "",
        "| parameter | estimate | SE | 95% CI | bounds | on a bound |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.estimates.itertuples():
        summary.append(
            f"| {r.parameter} | {r.estimate:.4g} | {r.se:.3g} ({r.se_without_simulation_noise:.3g})"
            f" | {r.ci_low:.4g} - {r.ci_high:.4g} | {r.lower:g} - {r.upper:g} | "
            f"{'yes' if r.at_bound else ''} |"
        )
    summary += [
        "",
        "| moment | range | target | simulated (seed SD) | in range |",
        "|---|---|---|---|---|",
    ]
    for r in result.moments.itertuples():
        summary.append(
            f"| {r.moment} | {r.low:g} - {r.high:g} | {r.target:.4g} | {r.simulated:.4g} "
            f"({r.seed_sd:.2g}) | {'yes' if r.in_range else 'no'} |"
        )
    (out / "summary.md").write_text("\n".join(summary) + "\n", encoding="utf-8")
    written.append(out / "summary.md")
    return written


# --------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relocsim calibrate",
        description="Calibrate a scenario by the method of simulated moments (estimagic).",
    )
    parser.add_argument(
        "study", help="calibration study file, e.g. experiments/calibrate_brussels.toml"
    )
    parser.add_argument("--out", default=None, help="output folder (default: calibrations/<name>)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all)")
    parser.add_argument("--dask-local", type=int, default=None, metavar="N")
    parser.add_argument("--dask-scheduler", default=None, metavar="ADDRESS")
    parser.add_argument(
        "--seeds",
        action=GivenOnce,
        type=parse_seeds,
        default=None,
        help="the common random numbers, in place of the study's seeds (e.g. 0-5: does the "
        "estimate hold on more seeds?)",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--write-scenario",
        default=None,
        metavar="FOLDER",
        help="write the estimates into this scenario folder's files (comments and other cells "
        "kept; e.g. relocsim/scenarios/brussels-metro to make them the default)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the study and print its parameters and moments; simulate nothing",
    )
    return parser


def with_seeds(study: CalibrationStudy, seeds: Sequence[int]) -> CalibrationStudy:
    """``study`` run with other common random numbers (``--seeds``); its name gets the seeds, so
    that the default output folder is not the study's own (``parse_seeds`` refuses a seed given
    twice)."""
    return replace(study, seeds=tuple(seeds), name=f"{study.name}-seeds{format_seeds(seeds)}")


def describe(calibrator: Calibrator) -> str:
    """What a study will do: parameters, moments, simulations per criterion evaluation."""
    study = calibrator.study
    lines = [
        f"study {study.name}: scenario {study.scenario}, {study.years} years, seeds "
        f"{list(study.seeds)} (common random numbers), algorithm {study.algorithm}"
    ]
    for p in study.parameters:
        fields = sum(len(expand_path(calibrator.base, path)) for path in p.paths)
        lines.append(
            f"  parameter {p.name}: {p.mode} {', '.join(p.paths)} ({fields} fields), start "
            f"{p.start:g} in [{p.lower:g}, {p.upper:g}]"
        )
    facts = sorted({f.id for f in calibrator.moments.facts})
    lines.append(
        f"  {len(calibrator.moments.index)} moments: {len(facts)} facts x "
        f"{len(calibrator.windows)} windows ({', '.join(facts)})"
    )
    n = len(study.seeds)
    lines.append(f"  {n} simulations per evaluation, {2 * len(study.parameters) * n} per Jacobian")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``relocsim calibrate``."""
    from relocsim.experiments.backends import BackendError, default_workers

    args = build_parser().parse_args(argv)
    out = Path(args.out or "calibrations")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import estimagic  # noqa: F401
    except ImportError:
        print(
            "relocsim: error: calibrate needs estimagic: pip install 'relocsim[calibration]'",
            file=sys.stderr,
        )
        return 2
    except TypeError as exc:  # an optimagic that does not support the installed numpy
        print(
            f"relocsim: error: estimagic fails to import ({exc}): pip install "
            "'relocsim[calibration]' pins versions that work together",
            file=sys.stderr,
        )
        return 2
    try:
        study = load_study(args.study)
        if args.seeds is not None:
            study = with_seeds(study, args.seeds)
        if (
            args.write_scenario is not None
            and not (Path(args.write_scenario) / TOML_FILE).is_file()
        ):
            raise StudyError(
                f"--write-scenario '{args.write_scenario}': not a scenario folder (no {TOML_FILE})"
            )
        out = Path(args.out or Path("calibrations") / study.name)
        calibrator = Calibrator(
            study,
            out,
            workers=args.workers or default_workers(),
            dask_scheduler=args.dask_scheduler,
            dask_local=args.dask_local,
            progress=not args.no_progress,
        )
        if args.dry_run:
            print(describe(calibrator))
            return 0
        result = calibrate(calibrator)
    except (StudyError, ScenarioError, FactError) as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2
    except (BackendError, KeyboardInterrupt) as exc:
        return report_interrupted(exc, out / "simulations")
    paths = write_outputs(result, calibrator.study, out)
    if args.write_scenario is not None:
        seeds = f" --seeds {format_seeds(args.seeds)}" if args.seeds is not None else ""
        note = (
            f"calibrated by relocsim calibrate {args.study}{seeds} (estimate and SE: "
            f"{_cited(out / 'estimates.csv')})"
        )
        overrides = writeback.read_overrides(out / "calibrated.toml")
        paths += writeback.write_overrides(Path(args.write_scenario), overrides, note)
    columns = ["parameter", "estimate", "se", "ci_low", "ci_high", "at_bound"]
    print(result.estimates[columns].to_string())
    in_range = result.moments["in_range"].sum()
    print(
        f"\n{in_range} of {len(result.moments)} targeted moments in range; "
        f"{result.simulated} simulations run, {result.reused} found in the store; "
        f"{result.elapsed_s:.0f} s; wrote " + ", ".join(str(p) for p in paths)
    )
    return 0


def _cited(path: Path) -> Path:
    """``path`` as the scenario notes cite it: relative to the working directory (the project)
    when it lies inside it; otherwise absolute, with a warning, since the files then cite
    estimates that live outside the project."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        print(
            f"warning: the scenario notes cite {path.resolve()}, outside {Path.cwd()}: copy that "
            "calibration folder into the project to keep the estimates the files cite",
            file=sys.stderr,
        )
        return path.resolve()


if __name__ == "__main__":
    sys.exit(main())
