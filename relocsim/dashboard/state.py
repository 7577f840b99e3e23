"""Dashboard state, free of any UI: the levers, one policy's run and a session of one or two runs.

The Solara page (:mod:`relocsim.dashboard.app`) calls :meth:`Session.step` from a worker thread
(``solara.lab.task``); this module owns everything that is neither drawing nor widgets:

- :data:`LEVERS`: the policy levers and behavioural parameters a user can move, each with the
  scenario paths it sets;
- :class:`Run`: one :class:`~relocsim.model.RelocationModel` and the tables of the years simulated
  so far, grown one year at a time (the full :meth:`RelocationModel.results` builds the per-firm
  event log, too slow to call every year, so it is called only for downloads);
- :class:`Session`: one policy, or two policies run on the same seeds (compare mode: one pair
  of runs per seed, :data:`DEFAULT_PAIRS` seeds), stepped in lockstep;
- :class:`Indicators`: the headline numbers of the cards, and :class:`Difference`: B - A of one
  of them over the seed pairs, with its 95% interval (a policy effect is never one run).
"""

from __future__ import annotations

import io
import math
import shlex
import threading
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from relocsim.experiments.power import paired_summary
from relocsim.model import RelocationModel
from relocsim.records import Results
from relocsim.scenarios import PORTABILITY_MODES, SITE_OPTIONS, Scenario, load_scenario

HEADLINE_REGION = "Brussels"
BRUSSELS_PRODUCTIVE_ZONES = (
    "bxl_canal_port",
    "bxl_canal_south",
    "bxl_mixed_enterprise",
    "bxl_audi_vorst",
)
AUDI_ZONE = "bxl_audi_vorst"
URBAN_INDUSTRY_ZONES = ("bxl_canal_south", "bxl_audi_vorst")
MATERIAL_SECTORS = ("heavy_industry", "material_production", "green_circular", "logistics")
LIVE_TABLES = ("yearly", "flows", "zones", "accounts")
DEFAULT_PAIRS = 5
"""Seed pairs compare mode runs: a 95% t-interval on 4 degrees of freedom (2.78 standard errors
either side), for five times the work of one pair (about 0.7 s a simulated year on the default)."""


@dataclass(frozen=True)
class Lever:
    """A control of the dashboard and the scenario values it sets.

    Attributes:
        key: the name of the control (also its test id in the page).
        label: what the user reads.
        paths: dotted scenario paths set to the lever's value (one slider may set several zones).
        kind: ``"select"``, ``"float"``, ``"int"`` or ``"bool"``.
        low, high, step: the slider range.
        options: the choices of a select.
        advanced: shown behind the "advanced" fold.
        help: one line of explanation.
        switched: for a ``"bool"`` lever whose paths are not booleans, the scenario values of
            off and on.
    """

    key: str
    label: str
    paths: tuple[str, ...]
    kind: str
    low: float = 0.0
    high: float = 1.0
    step: float = 0.05
    options: tuple[str, ...] = ()
    advanced: bool = False
    help: str = ""
    switched: tuple[Any, Any] | None = None


def _zones(attribute: str) -> tuple[str, ...]:
    return tuple(f"zones.{zone}.{attribute}" for zone in BRUSSELS_PRODUCTIVE_ZONES)


LEVERS: tuple[Lever, ...] = (
    Lever(
        "aid_mode",
        "Aid portability",
        ("policies.aid_portability.mode",),
        "select",
        options=PORTABILITY_MODES,
        help="what happens to Brussels aid when a firm leaves the region",
    ),
    Lever(
        "repayment_share",
        "Repayment share",
        ("policies.aid_portability.repayment_share",),
        "float",
        0.0,
        1.0,
        0.05,
        help="share of the aid repaid when leaving in year one",
    ),
    Lever(
        "commitment_years",
        "Commitment period (years)",
        ("regions.Brussels.aid.commitment_years",),
        "int",
        1,
        15,
        1,
        help="years the aided investment must stay in Brussels",
    ),
    Lever(
        "incentive",
        "Fiscal incentive (EUR/job/yr)",
        ("regions.Brussels.incentive_eur_per_job_year",),
        "float",
        0,
        5000,
        250,
        help="Brussels incentive per job and year",
    ),
    Lever(
        "incentive_take_up",
        "Incentive take-up",
        ("regions.Brussels.incentive_take_up",),
        "float",
        0.0,
        1.0,
        0.05,
        help="share of firms taking up the incentive each year",
    ),
    Lever(
        "land_subsidy",
        "Land price subsidy",
        _zones("land_subsidy"),
        "float",
        0.0,
        0.9,
        0.05,
        help="share of the land price paid by Brussels in its productive zones",
    ),
    Lever(
        "audi_site",
        "Audi Vorst site",
        (f"zones.{AUDI_ZONE}.site_option",),
        "select",
        options=SITE_OPTIONS,
        help="mixed industrial park, one investor, or housing",
    ),
    Lever(
        "audi_open_year",
        "Audi Vorst opens in",
        (f"zones.{AUDI_ZONE}.open_year",),
        "int",
        2025,
        2040,
        1,
    ),
    Lever(
        "speculation_tax",
        "Speculation tax",
        ("policies.speculation_tax",),
        "float",
        0.0,
        0.2,
        0.01,
        help="yearly tax on the value of retained vacant land",
    ),
    Lever(
        "preemption",
        "Pre-emption on productive zones",
        _zones("preemption"),
        "bool",
        help="Brussels can buy industrial land before it is converted",
    ),
    Lever(
        "reserved",
        "Urban-industry zones reserved for material production",
        tuple(f"zones.{zone}.reserved_for" for zone in URBAN_INDUSTRY_ZONES),
        "bool",
        help="immaterial production and high tech no longer settle there; those there stay",
        switched=((), MATERIAL_SECTORS),
    ),
    Lever(
        "b_stress",
        "Space stress (b_stress)",
        ("behaviour.b_stress",),
        "float",
        0,
        5,
        0.1,
        advanced=True,
    ),
    Lever(
        "b_growth", "Growth (b_growth)", ("behaviour.b_growth",), "float", 0, 4, 0.1, advanced=True
    ),
    Lever("b_age", "Age (b_age)", ("behaviour.b_age",), "float", 0, 1, 0.05, advanced=True),
    Lever("b_size", "Size (b_size)", ("behaviour.b_size",), "float", 0, 1, 0.05, advanced=True),
    Lever(
        "b_size_deloc",
        "Size, leaving the region (b_size_deloc)",
        ("behaviour.b_size_deloc",),
        "float",
        0,
        1,
        0.05,
        advanced=True,
    ),
    Lever(
        "own_region_distance_scale",
        "Distance decay inside the region (x b_dist)",
        ("behaviour.own_region_distance_scale",),
        "float",
        1,
        4,
        0.1,
        advanced=True,
    ),
    Lever(
        "price_elasticity",
        "Land price elasticity",
        ("land_market.price_elasticity",),
        "float",
        0,
        2,
        0.1,
        advanced=True,
    ),
)
LEVERS_BY_KEY = {lever.key: lever for lever in LEVERS}


def scenario_value(scenario: Scenario, path: str) -> Any:
    """The value at a dotted path of a scenario (dict keys or dataclass fields)."""
    node: Any = scenario
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def _coerce(lever: Lever, value: Any) -> Any:
    if lever.switched is not None:
        return lever.switched[bool(value)]
    if lever.kind == "int":
        return int(value)
    if lever.kind == "float":
        return float(value)
    if lever.kind == "bool":
        return bool(value)
    return str(value)


def available_levers(scenario: Scenario) -> tuple[Lever, ...]:
    """The levers whose every path exists in ``scenario`` (another scenario may lack the zones)."""
    found = []
    for lever in LEVERS:
        try:
            for path in lever.paths:
                scenario_value(scenario, path)
        except (KeyError, AttributeError):
            continue
        found.append(lever)
    return tuple(found)


def default_policy(scenario: Scenario) -> dict[str, Any]:
    """The lever values of the scenario as it is (the first path of each available lever)."""
    return {
        lever.key: _lever_value(lever, scenario_value(scenario, lever.paths[0]))
        for lever in available_levers(scenario)
    }


def _lever_value(lever: Lever, value: Any) -> Any:
    """What the control shows for a scenario value."""
    if lever.switched is not None:
        return value == lever.switched[True]
    return _coerce(lever, value)


def _cli_text(value: Any) -> str:
    """A scenario value as ``--set`` reads it back (floats to their shortest exact form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def policy_overrides(scenario: Scenario, policy: Mapping[str, Any]) -> dict[str, Any]:
    """The scenario overrides of a policy: every path whose value differs from the scenario."""
    overrides = {}
    for key, value in policy.items():
        lever = LEVERS_BY_KEY[key]
        for path in lever.paths:
            if scenario_value(scenario, path) != _coerce(lever, value):
                overrides[path] = _coerce(lever, value)
    return overrides


@dataclass(frozen=True)
class Indicators:
    """The headline numbers of one run after its last simulated year.

    Attributes:
        year: the last simulated year (None before the first step).
        jobs, low_skilled_jobs: Brussels jobs at the end of the year.
        delocalisations: firms leaving Brussels for another region this year.
        aid_recovered_eur: Brussels aid repaid by leaving firms, summed over the run.
        deadweight_share: share of this year's Brussels aid paid to firms that would have stayed.
    """

    year: int | None = None
    jobs: float = math.nan
    low_skilled_jobs: float = math.nan
    delocalisations: float = math.nan
    aid_recovered_eur: float = math.nan
    deadweight_share: float = math.nan

    def minus(self, other: Indicators) -> Indicators:
        """This run's indicators less another's (compare mode: B - A)."""
        return Indicators(
            year=self.year,
            **{name: getattr(self, name) - getattr(other, name) for name in INDICATOR_NAMES},
        )

    @staticmethod
    def mean(runs: Sequence[Indicators]) -> Indicators:
        """The mean of several runs' indicators (of the runs where an indicator is defined)."""
        values = {name: [getattr(run, name) for run in runs] for name in INDICATOR_NAMES}
        return Indicators(
            year=runs[0].year,
            **{
                name: math.fsum(kept) / len(kept)
                if (kept := [v for v in vs if not math.isnan(v)])
                else math.nan
                for name, vs in values.items()
            },
        )


@dataclass(frozen=True)
class Difference:
    """B - A of one headline indicator over the seed pairs of compare mode.

    Attributes:
        mean: the mean paired difference.
        low, high: its 95% t-interval (NaN with one pair).
        mde: the smallest true difference these pairs detect (5% two-sided, 80% power).
        pairs: the pairs where the indicator is defined in both runs.
    """

    mean: float
    low: float
    high: float
    mde: float
    pairs: int

    @classmethod
    def of(cls, differences: Sequence[float]) -> Difference:
        summary = paired_summary(np.asarray(differences, dtype=float))
        return cls(
            mean=summary["mean"],
            low=summary["ci_low"],
            high=summary["ci_high"],
            mde=summary["mde"],
            pairs=int(summary["n"]),
        )

    @property
    def same_in_every_pair(self) -> bool:
        """Every pair differs by the same amount: a zero-width interval, which is no evidence."""
        return bool(self.pairs > 1 and self.low == self.high)

    @property
    def told_from_zero(self) -> bool:
        """The interval excludes 0 (False with one pair, or pairs that do not vary)."""
        return bool((self.low > 0 or self.high < 0) and not self.same_in_every_pair)


INDICATOR_NAMES = (
    "jobs",
    "low_skilled_jobs",
    "delocalisations",
    "aid_recovered_eur",
    "deadweight_share",
)


def _latest_frames(model: RelocationModel) -> dict[str, pd.DataFrame]:
    """The light tables of the year just simulated (no event log, so cheap every year)."""
    latest = model.recorder.latest()
    return {name: latest[name] for name in LIVE_TABLES}


@dataclass
class Run:
    """One policy simulated year by year.

    Attributes:
        label: "A" or "B".
        policy: lever values.
        model: the model.
        tables: yearly, flows, zones and accounts of the years simulated so far.
    """

    label: str
    policy: dict[str, Any]
    model: RelocationModel
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def start(cls, label: str, scenario: Scenario, policy: Mapping[str, Any], seed: int) -> Run:
        overrides = policy_overrides(scenario, policy)
        model = RelocationModel(scenario, seed=seed, overrides=overrides)
        return cls(label, dict(policy), model)

    @property
    def years_done(self) -> int:
        return self.model.year - self.model.scenario.start_year

    def step(self) -> None:
        """Simulate one year and append its rows to the tables."""
        self.model.step()
        for name, frame in _latest_frames(self.model).items():
            old = self.tables.get(name)
            self.tables[name] = (
                frame.reset_index(drop=True)
                if old is None
                else pd.concat([old, frame], ignore_index=True)
            )

    def indicators(self) -> Indicators:
        """The headline numbers after the last simulated year."""
        if not self.tables:
            return Indicators()
        yearly, accounts = self.tables["yearly"], self.tables["accounts"]
        year = int(yearly["year"].max())
        here = yearly[(yearly["year"] == year) & (yearly["region"] == HEADLINE_REGION)]
        money = accounts[accounts["region"] == HEADLINE_REGION]
        this_year = money[money["year"] == year]
        return Indicators(
            year=year,
            jobs=float(here["jobs"].sum()),
            low_skilled_jobs=float(here["low_skilled_jobs"].sum()),
            delocalisations=float(here["delocalisations"].sum()),
            aid_recovered_eur=float(money["aid_recovered"].sum()),
            deadweight_share=float(this_year["deadweight_share"].iloc[0])
            if len(this_year)
            else math.nan,
        )

    def results(self) -> Results:
        return self.model.results()


class Session:
    """One policy, or two on the same seeds (compare mode), stepped together.

    Compare mode runs both policies on ``pairs`` seeds (``seed``, ``seed + 1``, ...): the cards
    show each policy's mean over them and B - A with its 95% interval, since one pair of runs
    cannot tell a policy's effect from the noise of the seed. The figures and downloads show
    the pair of ``seed``.

    Args:
        scenario: built-in name, path or a loaded :class:`Scenario`.
        policies: one policy (lever values) or two (A, B).
        seed: the seed of the runs shown (the first pair's).
        horizon: years Play runs to.
        pairs: seed pairs of compare mode (one policy: one run).
        source: how the command line names the scenario (default: the name or path given, or
            the loaded scenario's name).

    Attributes:
        runs: the runs shown, A first.
        other_pairs: the runs of the other seeds, one (A, B) list per seed.
        lock: held while a year is simulated, so a reader never sees half a year.
    """

    def __init__(
        self,
        scenario: Scenario | str,
        policies: Sequence[Mapping[str, Any]],
        seed: int = 0,
        horizon: int | None = None,
        pairs: int = DEFAULT_PAIRS,
        source: str | None = None,
    ) -> None:
        if int(pairs) < 1:
            raise ValueError(f"pairs {pairs}: expected at least one seed pair")
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.source = source or (scenario if isinstance(scenario, str) else self.scenario.name)
        self.seed = int(seed)
        self.horizon = int(self.scenario.years if horizon is None else horizon)
        self.lock = threading.Lock()
        self.runs = self._start(policies, self.seed)
        more = int(pairs) - 1 if self.compare else 0
        self.other_pairs = [self._start(policies, self.seed + k) for k in range(1, more + 1)]

    def _start(self, policies: Sequence[Mapping[str, Any]], seed: int) -> list[Run]:
        return [
            Run.start(label, self.scenario, policy, seed)
            for label, policy in zip("AB", policies, strict=False)
        ]

    @property
    def compare(self) -> bool:
        return len(self.runs) == 2

    @property
    def pairs(self) -> int:
        """Seed pairs in compare mode (1 for one policy)."""
        return 1 + len(self.other_pairs)

    @property
    def years_done(self) -> int:
        return self.runs[0].years_done

    @property
    def next_year(self) -> int:
        return self.runs[0].model.year

    @property
    def finished(self) -> bool:
        return self.years_done >= self.horizon

    def step(self) -> bool:
        """Simulate one more year of every run; False (and nothing done) past the horizon."""
        with self.lock:
            if self.finished:
                return False
            for runs in (self.runs, *self.other_pairs):
                for run in runs:
                    run.step()
            return True

    def _pair_indicators(self) -> list[list[Indicators]]:
        return [[run.indicators() for run in runs] for runs in (self.runs, *self.other_pairs)]

    def indicators(self) -> list[Indicators]:
        """Each policy's headline numbers: its mean over the seed pairs in compare mode."""
        by_pair = self._pair_indicators()
        return [Indicators.mean([pair[k] for pair in by_pair]) for k in range(len(self.runs))]

    def difference(self) -> dict[str, Difference] | None:
        """B - A of each headline indicator over the seed pairs (compare mode only)."""
        if not self.compare:
            return None
        diffs = [b.minus(a) for a, b in self._pair_indicators()]
        return {
            name: Difference.of([getattr(diff, name) for diff in diffs]) for name in INDICATOR_NAMES
        }

    def effect_by_year(self, region: str = HEADLINE_REGION, column: str = "jobs") -> pd.DataFrame:
        """B - A of ``region``'s ``column`` of the yearly table at the end of each simulated
        year, over the seed pairs: ``year``, ``mean``, ``low``, ``high`` (95% t-interval),
        ``pairs`` (empty before the first year or with one policy)."""
        columns = ["year", "mean", "low", "high", "pairs"]
        if not self.compare or self.years_done == 0:
            return pd.DataFrame(columns=columns)

        def path(run: Run) -> pd.Series:
            yearly = run.tables["yearly"]
            return yearly[yearly["region"] == region].groupby("year")[column].sum()

        diffs = pd.DataFrame([path(b) - path(a) for a, b in (self.runs, *self.other_pairs)])
        # read while the worker steps the pairs one after the other: years every run has done
        diffs = diffs.dropna(axis="columns")
        rows = []
        for year in diffs.columns:
            summary = Difference.of(diffs[year].to_numpy())
            rows.append([int(year), summary.mean, summary.low, summary.high, summary.pairs])
        return pd.DataFrame(rows, columns=columns)

    # ---- downloads

    def tables_zip(self, fmt: str = "csv") -> bytes:
        """Every table of the runs shown, as ``<run>_<table>.<fmt>`` files in a zip, with the
        policies; in compare mode also ``difference.csv`` (the cards' B - A with their 95%
        intervals and minimum detectable effects) and ``difference_by_year.csv`` (B - A of
        each region's jobs and low-skilled jobs by year), over the seed pairs, and
        ``compare_command.txt`` (:meth:`compare_command`)."""
        buffer = io.BytesIO()
        with self.lock, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for run in self.runs:
                for name, table in run.results().tables().items():
                    data = io.BytesIO()
                    if fmt == "parquet":
                        table.to_parquet(data, index=False)
                    else:
                        table.to_csv(data, index=False)
                    archive.writestr(f"{run.label}_{name}.{fmt}", data.getvalue())
            archive.writestr("policies.csv", self.policy_table().to_csv())
            command = self.compare_command()
            if command:
                archive.writestr("compare_command.txt", command + "\n")
            if self.compare:
                archive.writestr("difference.csv", self.difference_table().to_csv(index=False))
                archive.writestr(
                    "difference_by_year.csv", self.difference_by_year().to_csv(index=False)
                )
        return buffer.getvalue()

    def difference_table(self) -> pd.DataFrame:
        """The cards' B - A over the seed pairs, one row per indicator (compare mode)."""
        seeds = f"{self.seed}-{self.seed + self.pairs - 1}"
        differences = self.difference() or {}
        return pd.DataFrame(
            [
                {"indicator": name, "year": self.next_year - 1, "seeds": seeds, **asdict(diff)}
                for name, diff in differences.items()
            ]
        )

    def difference_by_year(self) -> pd.DataFrame:
        """B - A of every region's jobs and low-skilled jobs by year over the seed pairs."""
        frames = [
            self.effect_by_year(region, column).assign(region=region, measure=column)
            for region in self.scenario.regions
            for column in ("jobs", "low_skilled_jobs")
        ]
        return pd.concat(frames, ignore_index=True)[
            ["region", "measure", "year", "mean", "low", "high", "pairs"]
        ]

    def compare_command(self) -> str | None:
        """The ``relocsim compare`` command that measures B - A on more seed pairs than the page
        runs: A's changes to the scenario go to ``--base-set``, and B's differences from A to
        ``--set``. None outside compare mode or when B is A."""
        if not self.compare:
            return None
        a, b = (policy_overrides(self.scenario, run.policy) for run in self.runs)
        changed = {
            path: b.get(path, scenario_value(self.scenario, path))
            for path in sorted(set(a) | set(b))
            if a.get(path) != b.get(path)
        }
        if not changed:
            return None
        words = ["relocsim", "compare", "--scenario", self.source]
        for flag, overrides in (("--base-set", a), ("--set", changed)):
            for path, value in sorted(overrides.items()):
                words += [flag, f"{path}={_cli_text(value)}"]
        words += ["--seed", str(self.seed), "--years", str(self.horizon)]
        return shlex.join(words)

    def policy_table(self) -> pd.DataFrame:
        """Lever values of each run, one column per run."""
        return pd.DataFrame({run.label: run.policy for run in self.runs})
