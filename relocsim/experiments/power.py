"""Paired contrasts, their precision and the smallest effect a design can detect.

A study names contrasts (``[contrasts.NAME] b = ..., a = ...``): variant ``b`` minus variant
``a``, paired by seed (both runs share every random draw that the policy does not change), and by
the values of any parameter both variants vary (a grid inside the variants, a design). For each
contrast and outcome :func:`contrast_table` gives the mean paired difference, the standard
deviation of the differences, n, the 95% t-interval and the minimum detectable effect (two-sided
5% test, 80% power: ``(t(0.975, n-1) + t(0.80, n-1)) * sd / sqrt(n)``).

:func:`run_to_precision` adds replications (seeds) to a sweep until every contrast's 95% interval
is narrower than a target, up to a cap; finished runs are reused as in any resumed sweep.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from relocsim.experiments.study import Contrast, Study

LEVEL = 0.95
POWER = 0.80
ALPHA = 0.05


def minimum_detectable_effect(sd: float, n: int) -> float:
    """The smallest true mean difference a paired t-test (5%, two-sided) detects with 80%
    power, given the standard deviation of the differences and n pairs (NaN below 2 pairs)."""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    t_alpha = stats.t.ppf(1 - ALPHA / 2, n - 1)
    t_power = stats.t.ppf(POWER, n - 1)
    return float((t_alpha + t_power) * sd / math.sqrt(n))


def paired_summary(differences: np.ndarray) -> dict[str, float]:
    """Mean, sd, n, 95% t-interval, its width and the minimum detectable effect of paired
    differences (NaN dropped)."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 1) * sd / math.sqrt(n)) if n > 1 else np.nan
    mde = minimum_detectable_effect(sd, n)
    return {
        "mean": mean,
        "sd": sd,
        "n": n,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "ci_width": 2 * half,
        "mde": mde,
        # pairs that do not vary give a zero MDE: no evidence, so never "detectable"
        "detectable": bool(n > 1 and sd > 0 and abs(mean) >= mde),
    }


def crossed_summary(pairs: pd.DataFrame, outcome: str) -> dict[str, float]:
    """:func:`paired_summary` for differences crossed over parameter draws and seeds.

    Pairs that share a draw or a seed are not independent, so the interval and the minimum
    detectable effect come from the standard error of the mean over the cross (two-way random
    effects, :func:`relocsim.experiments.uncertainty.decompose`) with its Satterthwaite degrees
    of freedom; ``sd`` stays the spread of the individual differences.
    """
    from relocsim.experiments.uncertainty import cross, decompose

    split = decompose(cross(pairs, outcome))
    d = pairs[outcome].to_numpy(dtype=float)
    d = d[~np.isnan(d)]
    summary = paired_summary(d)
    se, df = split["se_mean"], split["df_mean"]
    if not (np.isfinite(se) and np.isfinite(df)):
        return summary
    half = float(stats.t.ppf(0.5 + LEVEL / 2, df) * se)
    mde = float((stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df)) * se)
    mean = split["mean"]
    return {
        **summary,
        "mean": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "ci_width": 2 * half,
        "mde": mde,
        "detectable": bool(se > 0 and abs(mean) >= mde),
    }


def _summary(group: pd.DataFrame, outcome: str) -> dict[str, float]:
    """The crossed summary where the pairs span several parameter draws, else the paired one."""
    if "draw" in group and group["draw"].nunique() > 1:
        return crossed_summary(group, outcome)
    return paired_summary(group[outcome].to_numpy())


def _varied(rows: pd.DataFrame, parameters: list[str]) -> list[str]:
    return [p for p in parameters if p in rows and rows[p].nunique(dropna=False) > 1]


def contrast_differences(
    table: pd.DataFrame, contrast: Contrast, parameters: list[str], outputs: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The paired differences ``b - a`` of one contrast: one row per pair.

    Runs are paired by seed (and parameter draw, with parameter draws) and by every parameter
    that both variants vary; parameters only ``b`` varies split the contrast into groups
    (returned as the second element).
    """
    ok = table[table["status"] == "ok"]
    b, a = ok[ok["variant"] == contrast.b], ok[ok["variant"] == contrast.a]
    by = _varied(b, parameters)
    match = [p for p in by if p in _varied(a, parameters)]
    keys = ["seed", *(["draw"] if "draw" in table else []), *match]
    a_side = a[[*keys, *outputs]].drop_duplicates(subset=keys)
    pairs = b[[*dict.fromkeys([*keys, *by]), *outputs]].merge(
        a_side, on=keys, suffixes=("", "__a"), how="inner"
    )
    for name in outputs:
        pairs[name] = pairs[name] - pairs[f"{name}__a"]
    return pairs[[*dict.fromkeys([*keys, *by]), *outputs]], by


def contrast_table(study: Study, table: pd.DataFrame, parameters: list[str]) -> pd.DataFrame:
    """Long table: contrast, b, a, group parameters, outcome, and :func:`paired_summary` (or
    :func:`crossed_summary` with parameter draws)."""
    rows = []
    for contrast in study.contrasts:
        outputs = [o for o in (contrast.outputs or study.output_names) if o in table]
        pairs, by = contrast_differences(table, contrast, parameters, outputs)
        groups = pairs.groupby(by, sort=False, dropna=False) if by else [((), pairs)]
        for keys, group in groups:
            keys = keys if isinstance(keys, tuple) else (keys,)
            for name in outputs:
                rows.append(
                    {
                        "contrast": contrast.name,
                        "b": contrast.b,
                        "a": contrast.a,
                        "group": ", ".join(f"{p}={v}" for p, v in zip(by, keys, strict=True)),
                        "outcome": name,
                        **_summary(group, name),
                    }
                )
    return pd.DataFrame(rows)


def describe(contrasts: pd.DataFrame) -> str:
    """Printable lines: each contrast with its interval, and whether the design can see it."""
    lines = []
    for row in contrasts.itertuples(index=False):
        label = f"{row.contrast} ({row.b} - {row.a}{'; ' + row.group if row.group else ''})"
        if row.n < 2:
            lines.append(f"{label} {row.outcome}: {row.n} pair(s), no interval (need >= 2 seeds)")
            continue
        if row.sd == 0:
            # a zero-width interval is no evidence: the pairs showed no spread to measure
            verdict = (
                "no difference in any pair"
                if row.mean == 0
                else f"the same difference in all {row.n} pairs: no spread to build an interval "
                "from; more seeds tell whether it varies"
            )
        elif row.detectable:
            verdict = "detectable"
        else:
            verdict = (
                f"below the minimum detectable effect {row.mde:,.4g}: this design cannot tell "
                "it from zero"
            )
        lines.append(
            f"{label} {row.outcome}: {row.mean:+,.4g} [{row.ci_low:,.4g}, {row.ci_high:,.4g}] "
            f"sd {row.sd:,.3g}, n {row.n}, MDE {row.mde:,.4g}: {verdict}"
        )
    return "\n".join(lines)


@dataclass
class PrecisionResult:
    """What :func:`run_to_precision` reached.

    Attributes:
        result: the last sweep's result.
        contrasts: the contrast table of its finished runs.
        replications: the replications run.
        reached: every contrast's interval is narrower than the target.
    """

    result: Any
    contrasts: pd.DataFrame
    replications: int
    reached: bool


def replications_needed(contrasts: pd.DataFrame, precision: float, current: int) -> int:
    """Replications for the widest interval to shrink below ``precision`` (from the observed
    standard deviations; an interval narrows as 1/sqrt(n))."""
    needed = current + 1
    for row in contrasts.itertuples(index=False):
        if row.n >= 2 and np.isfinite(row.sd) and row.sd > 0:
            t = stats.t.ppf(0.5 + LEVEL / 2, max(row.n - 1, 1))
            needed = max(needed, math.ceil((2 * t * row.sd / precision) ** 2))
    return needed


def _seeds_done(out: str | Path | None) -> int:
    """Replications an earlier sweep into ``out`` already finished (0 if none)."""
    path = Path(out) / "results.parquet" if out is not None else None
    if path is None or not path.exists():
        return 0
    try:
        table = pd.read_parquet(path, columns=["seed", "status"])
    except Exception:  # an unreadable table: start from the study's replications
        return 0
    return int(table.loc[table["status"] == "ok", "seed"].nunique())


def run_to_precision(
    study: Study,
    out: str | Path | None,
    precision: float,
    max_replications: int,
    run: Callable[..., Any],
    report: Callable[[str], None] = print,
    **options: Any,
) -> PrecisionResult:
    """Add replications until each contrast's 95% interval is narrower than ``precision``.

    Args:
        study: a study naming contrasts.
        out: the sweep's output folder.
        precision: target width of the 95% interval (outcome units).
        max_replications: the cap on replications.
        run: the sweep runner (:func:`relocsim.experiments.runner.run_sweep`).
        report: where progress lines go.
        **options: passed on to ``run``.
    """
    from relocsim.experiments.design import plan_runs

    parameters = plan_runs(study).parameters
    replications = max(2, study.replications, _seeds_done(out))
    while True:
        replications = min(replications, max_replications)
        result = run(study, out, replications=replications, **options)
        contrasts = contrast_table(study, result.table, parameters)
        widths = contrasts["ci_width"].to_numpy(dtype=float)
        reached = bool(len(widths)) and bool(np.all(widths < precision))
        if result.interrupted or reached or replications >= max_replications:
            return PrecisionResult(result, contrasts, replications, reached)
        widest = float(np.nanmax(widths)) if np.isfinite(widths).any() else float("nan")
        following = min(max_replications, replications_needed(contrasts, precision, replications))
        report(
            f"{replications} replications: widest 95% interval {widest:,.4g} >= {precision:,.4g}; "
            f"going on to {following}"
        )
        replications = following
