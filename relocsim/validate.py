"""``relocsim validate``: the model against every sourced fact, per decade, over several seeds.

Each seed is one run of the scenario (on the sweep backends: in this process, a process pool or
Dask); :func:`relocsim.facts.measure_facts` measures every fact of the registry per window of
years; :func:`summarise` gives per fact and window the model's mean and min-max over seeds and
whether the mean falls in the sourced range, and whether the seeds decide that: when the 95%
confidence interval of the seed mean (Student's t) holds an end of its range, other seeds could
put it on the other side, and the table says about how many seeds would decide it;
:func:`fresh_seed_outlook` says how many targeted fact-decades fresh sets of as many seeds would
put out of range, and how many the seeds' noise alone would cost a model centred in every range.
:func:`write_report` writes the table as CSV and Markdown and a figure of model against range.

Each finished run's measured facts are stored in ``OUT/runs`` (:mod:`relocsim.fact_runs`), keyed
by the scenario, overrides, seed, years, registry and code: an interrupted validation run again
with the same ``--out`` simulates only the seeds it had not finished, and more seeds added later
cost only their own runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import norm as normal
from scipy.stats import t as student_t

from relocsim.experiments.power import LEVEL as CONFIDENCE
from relocsim.fact_runs import (
    FactRun,
    MeasuredRuns,
    RunStore,
    base_fingerprint,
    measure_runs,
    report_interrupted,
    run_key,
)
from relocsim.facts import Fact, FactError, decades, load_facts
from relocsim.scenarios import Scenario, ScenarioError, load_scenario

WINDOW_YEARS = 10

MOST_SEEDS = 100_000
"""Most seeds a verdict is worked out for (``seeds_to_decide``, ``--outlook-seeds``)."""

TWO_SIDED = 0.5 + CONFIDENCE / 2
"""Quantile of the two-sided :data:`CONFIDENCE` interval (the paired contrasts' level, shared)
that a seed mean's interval must hold on one side of an end of its range for the seeds to decide
whether the model is in range."""


def windows_of(scenario: Scenario, years: int) -> tuple[tuple[int, int], ...]:
    """The decades of a run of ``years`` years from the scenario's start year."""
    start = scenario.start_year
    return tuple(decades(start, start + years - 1, WINDOW_YEARS)) if years > 0 else ()


def run_seeds(
    base: Scenario,
    tasks: Sequence[FactRun],
    store: RunStore,
    workers: int = 1,
    dask_scheduler: str | None = None,
    dask_local: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, MeasuredRuns]:
    """Measure every task's run (from the store, or simulated on a sweep backend and stored as
    it finishes) and stack their measured facts, by seed."""
    runs = {}
    for task in tasks:
        fingerprint = base_fingerprint(base, task.years, task.windows, task.facts)
        runs[run_key(fingerprint, task.overrides, task.seed)] = task
    measured = measure_runs(
        base, runs, store, workers, dask_scheduler, dask_local, progress, desc="validate"
    )
    table = pd.concat(measured.tables.values(), ignore_index=True)
    return table.sort_values(["seed", "first_year"], kind="stable"), measured


def summarise(measured: pd.DataFrame, facts: Sequence[Fact]) -> pd.DataFrame:
    """Per fact and window: range, model mean and min-max over seeds, in range, role, source,
    and whether the seeds decide it.

    ``in_range`` is judged on the mean over seeds (NaN when the fact could not be measured).
    ``se`` is the standard error of that mean (NaN with one seed); ``margin_se`` the distance
    from the mean to the nearest end of the range in standard errors (positive inside, negative
    outside); ``decided`` whether the :data:`CONFIDENCE` interval of the mean (Student's t)
    leaves that end out; and ``seeds_to_decide``, for an undecided row, about how many seeds
    would at the seeds' spread (normal approximation); ``p_out_fresh`` the chance that as many
    fresh seeds put the mean out of range (:func:`chance_out_of_range`).
    """
    stats = (
        measured.groupby(["fact", "window"], sort=False)["value"]
        .agg(mean="mean", min="min", max="max", seeds="count", sd="std")
        .reset_index()
    )
    by_id = {f.id: f for f in facts}
    order = {f.id: i for i, f in enumerate(facts)}
    stats["label"] = stats["fact"].map(lambda i: by_id[i].label)
    stats["low"] = stats["fact"].map(lambda i: by_id[i].low)
    stats["high"] = stats["fact"].map(lambda i: by_id[i].high)
    stats["unit"] = stats["fact"].map(lambda i: by_id[i].unit)
    stats["role"] = stats["fact"].map(lambda i: by_id[i].role)
    stats["in_range"] = [
        by_id[f].contains(m) if np.isfinite(m) else None
        for f, m in zip(stats["fact"], stats["mean"], strict=True)
    ]
    stats = stats.join(_seed_margin(stats))
    stats["source"] = stats["fact"].map(lambda i: by_id[i].source)
    stats["_order"] = stats["fact"].map(order)
    stats = stats.sort_values(["_order", "window"]).drop(columns="_order")
    columns = ["fact", "label", "role", "window", "low", "high", "unit", "mean", "min", "max"]
    margin = ["se", "margin_se", "decided", "seeds_to_decide", "p_out_fresh"]
    return stats[[*columns, "seeds", "in_range", *margin, "source"]].reset_index(drop=True)


def _seed_margin(stats: pd.DataFrame) -> pd.DataFrame:
    """Standard error of each seed mean and its distance to the nearest end of its range."""
    se = stats["sd"] / np.sqrt(stats["seeds"])
    margin = np.minimum(stats["mean"] - stats["low"], stats["high"] - stats["mean"])
    measurable = np.isfinite(stats["mean"]) & (stats["seeds"] > 1)
    t = student_t.ppf(TWO_SIDED, np.maximum(stats["seeds"] - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_se = (margin / se).where(measurable)  # no spread: +-inf, decided
    decided = (margin_se.abs() >= t).astype(object).where(measurable, None)
    undecided = decided == False  # noqa: E712 (None: not judged)
    needed = [
        seeds_to_decide(sd, m, n) if u else np.nan
        for sd, m, n, u in zip(stats["sd"], margin, stats["seeds"], undecided, strict=True)
    ]
    out = chance_out_of_range(
        stats["mean"], stats["sd"], stats["seeds"], stats["low"], stats["high"]
    )
    return pd.DataFrame(
        {"se": se.where(measurable), "margin_se": margin_se, "decided": decided},
    ).assign(
        seeds_to_decide=needed, p_out_fresh=pd.Series(out, index=stats.index).where(measurable)
    )


def chance_out_of_range(
    mean: ArrayLike, sd: ArrayLike, seeds: ArrayLike, low: ArrayLike, high: ArrayLike
) -> np.ndarray:
    """Chance that the mean over as many fresh seeds falls out of ``[low, high]``: seed means
    taken as normal around ``mean`` with standard error ``sd / sqrt(seeds)`` (no spread: 0 in
    range, 1 out). With few seeds ``sd`` itself is rough, and so is the chance."""
    mean, low, high = (np.asarray(a, dtype=float) for a in (mean, low, high))
    se = np.asarray(sd, dtype=float) / np.sqrt(np.asarray(seeds, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = normal.cdf((high - mean) / se) - normal.cdf((low - mean) / se)
    inside = np.where(se > 0, inside, ((mean >= low) & (mean <= high)).astype(float))
    return 1.0 - inside


@dataclass(frozen=True)
class FreshSeedOutlook:
    """What fresh sets of as many seeds would make of the targets' verdicts.

    Attributes:
        seeds: seeds per set (the number measured).
        fact_decades: targeted fact-decades judged.
        expected_out: expected number of them out of range, at the measured means and spreads.
        all_in: chance that none is (fact-decades taken as independent).
        centred_expected_out, centred_all_in: the same for a model whose every mean sat at the
            centre of its range, with the measured spreads: what the seed noise alone allows.
    """

    seeds: int
    fact_decades: int
    expected_out: float
    all_in: float
    centred_expected_out: float
    centred_all_in: float


def fresh_seed_outlook(summary: pd.DataFrame, seeds: int | None = None) -> FreshSeedOutlook | None:
    """:class:`FreshSeedOutlook` of the targets of a :func:`summarise` table, for fresh sets of
    ``seeds`` seeds (default: as many as measured; more measured seeds give better spreads to
    judge sets of few). None without targets measured on two seeds or more."""
    rows = summary[(summary["role"] == "target") & summary["p_out_fresh"].notna()]
    if rows.empty:
        return None
    n = rows["seeds"] if seeds is None else np.full(len(rows), seeds)
    sd = rows["se"] * np.sqrt(rows["seeds"])
    p_out = chance_out_of_range(rows["mean"], sd, n, rows["low"], rows["high"])
    centre = (rows["low"] + rows["high"]) / 2
    centred = chance_out_of_range(centre, sd, n, rows["low"], rows["high"])
    return FreshSeedOutlook(
        seeds=int(np.min(n)),
        fact_decades=len(rows),
        expected_out=float(p_out.sum()),
        all_in=float(np.prod(1.0 - p_out)),
        centred_expected_out=float(centred.sum()),
        centred_all_in=float(np.prod(1.0 - centred)),
    )


def seeds_to_decide(sd: float, margin: float, seeds: int, most: int = MOST_SEEDS) -> float:
    """Fewest seeds (more than ``seeds``) whose :data:`CONFIDENCE` interval of the mean leaves
    out an end of the range ``margin`` away, at the standard deviation ``sd`` over seeds
    (``most``: none as few, or no margin at all)."""
    if margin == 0:
        return float(most)
    n = max(seeds + 1, int(np.ceil((normal.ppf(TWO_SIDED) * sd / abs(margin)) ** 2)))
    while n < most and student_t.ppf(TWO_SIDED, n - 1) * sd / np.sqrt(n) > abs(margin):
        n += 1  # the normal approximation is a lower bound a few seeds short at most
    return float(min(n, most))


def _number(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table: one row per fact, one column per window."""
    windows = list(dict.fromkeys(summary["window"]))
    header = ["fact", "role", "range", *windows, "source"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, rows in summary.groupby("fact", sort=False):
        first = rows.iloc[0]
        cells = [f"{first['label']} ({first['unit']})", first["role"].replace("_", " ")]
        cells.append(f"{_number(first['low'])} - {_number(first['high'])}")
        for w in windows:
            row = rows[rows["window"] == w]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            doubt = "?" if r["decided"] is False else ""
            mark = {True: f"yes{doubt}", False: f"**no{doubt}**", None: "n/a"}[r["in_range"]]
            cells.append(f"{_number(r['mean'])} ({_number(r['min'])}-{_number(r['max'])}) {mark}")
        cells.append(str(first["source"]).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Cells: seed mean (min-max over seeds), in range or not. A ? marks a mean whose "
        f"{CONFIDENCE:.0%} confidence interval over the seeds holds an end of the range: other "
        "seeds could put it on the other side (facts.csv: seeds_to_decide)."
    )
    return "\n".join(lines) + "\n"


LEGEND_COLUMNS = 6


def plot_facts(summary: pd.DataFrame, path: str | Path) -> Path:
    """Dot-and-range chart: each fact on its own range scaled to [0, 1] (the grey band); dots
    are the model's mean per window, whiskers its min-max over seeds; values off the chart are
    drawn at its edge as arrows pointing the way they lie."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    facts = list(dict.fromkeys(summary["fact"]))
    windows = list(dict.fromkeys(summary["window"]))
    # a fact's windows share one row band: a long validation gets taller rows, not overlap
    spacing = min(0.22, 0.7 / max(len(windows) - 1, 1))
    fig, ax = plt.subplots(figsize=(9, (0.1 + 0.075 * max(len(windows), 3)) * len(facts) + 1.5))
    ax.axvspan(0, 1, color="0.88", zorder=0, label="sourced range")
    lo_edge, hi_edge = -2.0, 3.0
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, max(len(windows), 1)))
    for k, w in enumerate(windows):
        rows = summary[summary["window"] == w].set_index("fact").reindex(facts)
        width = (rows["high"] - rows["low"]).replace(0, np.nan)
        scaled = {c: (rows[c] - rows["low"]) / width for c in ("mean", "min", "max")}
        y = np.arange(len(facts)) + (k - (len(windows) - 1) / 2) * spacing
        mean = scaled["mean"].clip(lo_edge, hi_edge)
        below, above = scaled["mean"] < lo_edge, scaled["mean"] > hi_edge
        off = below | above
        ax.hlines(
            y,
            scaled["min"].clip(lo_edge, hi_edge),
            scaled["max"].clip(lo_edge, hi_edge),
            color=colours[k],
            lw=1,
        )
        undecided = (rows["decided"] == False).to_numpy()  # noqa: E712 (None: not judged)
        shown = ~off.to_numpy()
        ax.scatter(
            mean[shown & ~undecided],
            y[shown & ~undecided],
            color=colours[k],
            s=14,
            label=w,
            zorder=3,
        )
        ax.scatter(
            mean[shown & undecided],
            y[shown & undecided],
            facecolors="none",
            edgecolors=colours[k],
            s=14,
            zorder=3,
        )
        for side, marker in ((below, "<"), (above, ">")):
            ax.scatter(
                mean[side], y[side.to_numpy()], color=colours[k], s=30, marker=marker, zorder=3
            )
    labels = [
        f"{f} ({'T' if (summary[summary['fact'] == f]['role'].iloc[0] == 'target') else 'H'})"
        for f in facts
    ]
    ax.set_yticks(np.arange(len(facts)), labels, fontsize=7)
    ax.set_ylim(len(facts) - 0.5, -0.5)  # first fact on top, no empty margin
    ax.set_xlim(lo_edge - 0.1, hi_edge + 0.1)
    ax.set_xlabel("position in the sourced range (0 = low end, 1 = high end); T target, H held out")
    # above the axes, under the title: any corner inside them hides a fact's marks
    ax.legend(
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=LEGEND_COLUMNS,
        frameon=False,
    )
    ax.set_title(
        "Model (mean, min-max over seeds) against the sourced facts; hollow: the seeds do not "
        "decide",
        fontsize=9,
        pad=6 + 12 * math.ceil((len(windows) + 1) / LEGEND_COLUMNS),
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(summary: pd.DataFrame, measured: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write ``facts.csv`` (summary), ``facts.md``, ``facts_by_seed.csv`` and ``facts.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "facts.csv", out / "facts.md", out / "facts_by_seed.csv"]
    summary.to_csv(paths[0], index=False)
    paths[1].write_text(markdown_table(summary), encoding="utf-8")
    measured.to_csv(paths[2], index=False)
    paths.append(plot_facts(summary, out / "facts.png"))
    return paths


# --------------------------------------------------------------------------------------------
# Command line


MAX_SEEDS = 10_000  # each seed is a whole run: more is a typo, and would not finish


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` (or a mix) into a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                if int(b) - int(a) >= MAX_SEEDS:
                    raise argparse.ArgumentTypeError(
                        f"--seeds {text!r}: expected at most {MAX_SEEDS:,} seeds"
                    )
                seeds.extend(range(int(a), int(b) + 1))
            elif part:
                seeds.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--seeds {text!r}: expected integers like 0,1,2 or a range like 0-2"
            ) from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected at least one seed")
    if min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected seeds >= 0")
    if len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected at most {MAX_SEEDS:,} seeds")
    repeated = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if repeated:
        # a seed run twice is the same run twice: it would count as two seeds and shrink the
        # spread the verdicts are judged on
        raise argparse.ArgumentTypeError(
            f"--seeds {text!r}: seed {repeated[0]} given twice; give each seed once"
        )
    return seeds


def format_seeds(seeds: Sequence[int]) -> str:
    """The inverse of ``parse_seeds``: runs of consecutive seeds as ranges (``[0, 1, 2, 7]`` is
    ``"0-2,7"``)."""
    parts: list[str] = []
    ordered = sorted(seeds)
    start = prev = ordered[0]
    for seed in [*ordered[1:], None]:
        if seed is not None and seed == prev + 1:
            prev = seed
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if seed is not None:
            start = prev = seed
    return ",".join(parts)


class GivenOnce(argparse.Action):
    """An option that may be given once: a second value stops with an error rather than
    silently replacing the first."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{option_string} given twice: keep one")
        given.add(self.dest)
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relocsim validate",
        description="Measure every sourced fact on runs of a scenario, per decade, over seeds.",
    )
    parser.add_argument("--scenario", action=GivenOnce, default="brussels-metro")
    parser.add_argument(
        "--seeds", action=GivenOnce, type=parse_seeds, default=[0, 1, 2], help="e.g. 0-2 or 0,4"
    )
    parser.add_argument(
        "--years", action=GivenOnce, type=int, default=30, help="simulated years (default 30)"
    )
    parser.add_argument("--out", action=GivenOnce, default="validation", help="output folder")
    parser.add_argument(
        "--facts", action=GivenOnce, default=None, help="fact file (default: the registry)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="scenario override"
    )
    parser.add_argument(
        "--workers",
        action=GivenOnce,
        type=int,
        default=None,
        help="worker processes (default: all cores)",
    )
    parser.add_argument("--dask-local", action=GivenOnce, type=int, default=None, metavar="N")
    parser.add_argument("--dask-scheduler", action=GivenOnce, default=None, metavar="ADDRESS")
    parser.add_argument(
        "--outlook-seeds",
        action=GivenOnce,
        type=int,
        default=None,
        metavar="N",
        help="judge fresh sets of N seeds at the measured spreads (default: as many as run)",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _outlook_line(o: FreshSeedOutlook) -> str:
    return (
        f"fresh sets of {o.seeds} seeds would put about {o.expected_out:.1f} of the "
        f"{o.fact_decades} targeted fact-decades out of range (all in: chance "
        f"{o.all_in:.2f}); a model centred in every range, at these spreads: "
        f"{o.centred_expected_out:.1f} (all in: {o.centred_all_in:.2f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``relocsim validate``."""
    from relocsim.cli import CliError, parse_set
    from relocsim.experiments.backends import BackendError, default_workers

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.years < 1:
            raise CliError(f"--years {args.years}: expected at least 1 year")
        if args.outlook_seeds is not None and not 1 <= args.outlook_seeds <= MOST_SEEDS:
            raise CliError(
                f"--outlook-seeds {args.outlook_seeds}: expected 1 to {MOST_SEEDS:,} seeds"
            )
        facts = load_facts(args.facts)
        base = load_scenario(args.scenario)
        overrides = parse_set(args.set)
        if overrides:
            from relocsim.scenarios import apply_overrides

            apply_overrides(base, overrides)  # fail here, not in every worker
        windows = windows_of(base, args.years)
        tasks = [FactRun(seed, args.years, overrides, windows, facts) for seed in args.seeds]
        store = RunStore(Path(args.out) / "runs")
        measured, runs = run_seeds(
            base,
            tasks,
            store,
            workers=args.workers or default_workers(),
            dask_scheduler=args.dask_scheduler,
            dask_local=args.dask_local,
            progress=not args.no_progress,
        )
    except (ScenarioError, FactError, CliError) as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2
    except (BackendError, KeyboardInterrupt) as exc:
        return report_interrupted(exc, Path(args.out) / "runs")
    summary = summarise(measured[measured["fact"].isin([f.id for f in facts])], facts)
    paths = write_report(summary, measured, args.out)
    judged = summary.dropna(subset=["in_range"])
    for role in ("target", "held_out"):
        part = judged[judged["role"] == role]
        undecided = int((part["decided"] == False).sum())  # noqa: E712 (None: not judged)
        print(
            f"{role.replace('_', ' ')}: {int(part['in_range'].sum())} of {len(part)} "
            f"fact-decades in range; {undecided} not decided by these seeds"
        )
    outlook = fresh_seed_outlook(summary, args.outlook_seeds)
    if outlook is not None:
        print(_outlook_line(outlook))
    found = f" ({runs.reused} found in {store.folder})" if runs.reused else ""
    print(
        f"{len(args.seeds)} seeds x {args.years} years{found} in "
        f"{time.perf_counter() - started:.0f} s; wrote " + ", ".join(str(p) for p in paths)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
