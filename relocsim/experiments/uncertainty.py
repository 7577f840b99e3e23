"""Parameters versus chance: how much of an outcome's spread comes from the estimated
coefficients and how much from the simulation's randomness.

With K parameter draws crossed with R seeds (``[parameter_draws]``, :mod:`relocsim.parameter_draws`)
each outcome ``y[k, r]`` of a design point follows the two-way random-effects model

    y[k, r] = mu + a[k] + b[r] + e[k, r],   Var a = s2_par, Var b = s2_seed, Var e = s2_int

(``a``: the draw's coefficients; ``b``: the seed's random streams, shared by every draw through
common random numbers; ``e``: how the two interact, and everything else). The ANOVA mean squares

    MS_par = R * sum_k (ybar_k. - ybar)^2 / (K - 1)           E = s2_int + R * s2_par
    MS_seed = K * sum_r (ybar_.r - ybar)^2 / (R - 1)          E = s2_int + K * s2_seed
    MS_int = sum (y - ybar_k. - ybar_.r + ybar)^2 / ((K-1)(R-1))  E = s2_int

give unbiased components (negative ones set to 0). By the law of total variance, the spread of
an outcome over new coefficient draws and new seeds is ``Var E[y | coefficients]`` (the part from
parameters, ``s2_par``) plus ``E Var[y | coefficients]`` (the part from chance, ``s2_seed +
s2_int``). The same split is made for each paired contrast (b - a per draw and seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = (
    "n_draws",
    "n_seeds",
    "mean",
    "se_mean",
    "df_mean",
    "sd_total",
    "var_parameters",
    "var_seeds",
    "var_interaction",
    "var_chance",
    "share_parameters",
    "F_parameters",
    "p_parameters",
)


def decompose(values: np.ndarray) -> dict[str, float]:
    """Split the spread of ``values`` (K draws x R seeds) into parameters and chance.

    Draws (rows) with a missing value are left out, so the table stays a full cross.

    Returns:
        n_draws, n_seeds, mean, se_mean (standard error of the mean over draws and seeds:
        ``sqrt(s2_par / K + s2_seed / R + s2_int / (K R))``), df_mean (its Satterthwaite degrees
        of freedom, for a t-interval), sd_total (of one run with a new
        draw and a new seed), the variance components, var_chance = var_seeds + var_interaction,
        share_parameters, and the F test of "no parameter effect" (F, p). NaN where the cross is
        smaller than 2 x 2.
    """
    y = np.asarray(values, dtype=float)
    y = y[~np.isnan(y).any(axis=1)] if y.ndim == 2 else y.reshape(0, 0)
    k, r = y.shape if y.size else (0, 0)
    out = dict.fromkeys(COLUMNS, float("nan"))
    out.update(n_draws=k, n_seeds=r, mean=float(y.mean()) if y.size else float("nan"))
    if k < 2 or r < 2:
        return out
    grand, rows, cols = y.mean(), y.mean(axis=1), y.mean(axis=0)
    ms_par = r * float(((rows - grand) ** 2).sum()) / (k - 1)
    ms_seed = k * float(((cols - grand) ** 2).sum()) / (r - 1)
    df_int = (k - 1) * (r - 1)
    ms_int = float(((y - rows[:, None] - cols[None, :] + grand) ** 2).sum()) / df_int
    var_par = max((ms_par - ms_int) / r, 0.0)
    var_seed = max((ms_seed - ms_int) / k, 0.0)
    total = var_par + var_seed + ms_int
    out.update(
        se_mean=float(np.sqrt(var_par / k + var_seed / r + ms_int / (k * r))),
        df_mean=_satterthwaite(
            [(ms_par, k - 1, var_par > 0), (ms_seed, r - 1, var_seed > 0)], ms_int, df_int
        ),
        sd_total=float(np.sqrt(total)),
        var_parameters=var_par,
        var_seeds=var_seed,
        var_interaction=ms_int,
        var_chance=var_seed + ms_int,
        share_parameters=var_par / total if total > 0 else float("nan"),
    )
    if ms_int > 0:
        f = ms_par / ms_int
        out.update(F_parameters=f, p_parameters=float(stats.f.sf(f, k - 1, df_int)))
    return out


def _satterthwaite(effects: list[tuple[float, int, bool]], ms_int: float, df_int: int) -> float:
    """Degrees of freedom of the squared standard error of the mean written as a combination
    of mean squares: each kept (non-truncated) main effect adds its MS and takes one MS_int
    away (``s2_par / K = (MS_par - MS_int) / (K R)``), and MS_int itself enters once."""
    terms = [(ms, df) for ms, df, kept in effects if kept]
    int_coef = 1 - len(terms)
    if int_coef:
        terms.append((int_coef * ms_int, df_int))
    total = sum(ms for ms, _ in terms)
    spread = sum(ms * ms / df for ms, df in terms)
    return float(total * total / spread) if spread > 0 else float("nan")


def cross(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    """The draws x seeds table of one outcome (NaN where a run is missing)."""
    wide = frame.pivot_table(index="draw", columns="seed", values=outcome, aggfunc="mean")
    return wide.to_numpy(dtype=float)


def uncertainty_table(
    table: pd.DataFrame,
    outputs: list[str],
    contrasts: list[tuple[str, pd.DataFrame, list[str]]] = (),
) -> pd.DataFrame:
    """The split for every variant and design point, and every contrast, by outcome.

    Args:
        table: the sweep's results (with a ``draw`` column).
        outputs: the outcomes.
        contrasts: (name, paired differences with ``draw`` and ``seed``, group columns).

    Returns:
        Long table: kind (``variant``/``contrast``), name, point (design point, or the contrast's
        group), outcome and the columns of :func:`decompose`.
    """
    rows = []
    ok = table[table["status"] == "ok"]
    for (variant, point), group in ok.groupby(["variant", "point"], sort=False):
        for name in outputs:
            rows.append(
                {
                    "kind": "variant",
                    "name": variant,
                    "point": str(point),
                    "outcome": name,
                    **decompose(cross(group, name)),
                }
            )
    for cname, pairs, by in contrasts:
        groups = pairs.groupby(by, sort=False, dropna=False) if by else [((), pairs)]
        for keys, group in groups:
            keys = keys if isinstance(keys, tuple) else (keys,)
            label = ", ".join(f"{p}={v}" for p, v in zip(by, keys, strict=True))
            for name in outputs:
                if name not in group:
                    continue
                rows.append(
                    {
                        "kind": "contrast",
                        "name": cname,
                        "point": label,
                        "outcome": name,
                        **decompose(cross(group, name)),
                    }
                )
    return pd.DataFrame(rows)


def describe(frame: pd.DataFrame) -> str:
    """Printable lines: each outcome's sd and the shares from parameters and from chance."""
    lines = []
    for row in frame.itertuples(index=False):
        label = f"{row.kind} {row.name}" + (f" [{row.point}]" if row.point not in ("", "0") else "")
        if not np.isfinite(row.share_parameters):
            lines.append(
                f"{label} {row.outcome}: {row.n_draws} draws x {row.n_seeds} seeds: no split "
                "(needs at least 2 draws and 2 seeds, and some spread)"
            )
            continue
        seed = row.var_seeds / (row.var_parameters + row.var_chance)
        lines.append(
            f"{label} {row.outcome}: mean {row.mean:,.4g} (se {row.se_mean:,.3g}), sd "
            f"{row.sd_total:,.3g}: parameters {row.share_parameters:.0%}, chance "
            f"{1 - row.share_parameters:.0%} (seeds {seed:.0%}, interaction "
            f"{1 - row.share_parameters - seed:.0%}); parameter effect F = "
            f"{row.F_parameters:.3g}, p = {row.p_parameters:.2g} "
            f"({row.n_draws} draws x {row.n_seeds} seeds)"
        )
    return "\n".join(lines)


def plot_shares(frame: pd.DataFrame, path: Path, max_rows: int = 30) -> Path:
    """Horizontal bars: variance from parameters, seeds and their interaction, per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = frame[np.isfinite(frame["share_parameters"])].head(max_rows)
    total = shown["var_parameters"] + shown["var_chance"]
    labels = [
        f"{r.name} {r.outcome}" + (f" [{r.point}]" if r.point not in ("", "0") else "")
        for r in shown.itertuples(index=False)
    ]
    parts = [
        ("parameters", shown["var_parameters"] / total, "#4c72b0"),
        ("seeds", shown["var_seeds"] / total, "#dd8452"),
        ("interaction", shown["var_interaction"] / total, "#bbbbbb"),
    ]
    fig, ax = plt.subplots(figsize=(7.5, 0.3 * len(shown) + 1.2))
    left = np.zeros(len(shown))
    for name, share, colour in parts:
        ax.barh(range(len(shown)), share, left=left, color=colour, label=name)
        left += share.to_numpy()
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the outcome's variance", fontsize=8)
    ax.legend(fontsize=7, ncols=3, loc="lower left", bbox_to_anchor=(0, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
