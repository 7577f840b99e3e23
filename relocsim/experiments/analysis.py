"""Analysis of a sweep: outcomes by variant with 95% confidence intervals, Sobol indices, plots.

``analyze(DIR)`` reads ``DIR/results.parquet`` and ``DIR/study.toml`` and writes into
``DIR/analysis/``:

- ``variants.csv``: per variant (and per value of a variant's own grid parameters) and outcome:
  mean, standard deviation, n and the 95% t-interval of the mean over replications (and over the
  design points when the study also has a design);
- ``contrasts.csv``: the study's contrasts (variant b minus a, paired by seed): mean, sd of the
  paired difference, n, 95% interval and minimum detectable effect (80% power, 5% two-sided);
- ``sobol.csv``: first-order (S1) and total (ST) Sobol indices with 95% bootstrap confidence
  intervals, per variant and outcome (``sobol`` designs);
- ``uncertainty.csv`` (sweeps with parameter draws): each variant point's and contrast's
  variance split into the part from the coefficients' uncertainty and the part from chance
  (:mod:`relocsim.experiments.uncertainty`), with ``uncertainty.png``;
- ``tornado.csv``: outcome at the low and high end of each parameter from a linear fit, others
  at their mean (``grid`` and ``lhs`` designs);
- PNG plots: ``variants.png`` (variants side by side with error bars), ``vs_<parameter>.png``
  (every outcome against the parameter), ``sobol.png`` or ``tornado.png``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from relocsim.experiments.study import Study, parse_study

MAX_PANELS = 12


@dataclass
class Report:
    """What :func:`analyze` wrote.

    Attributes:
        variants: outcomes by variant with confidence intervals (long format).
        contrasts: the study's paired contrasts (empty without contrasts).
        sobol: Sobol indices (empty without a sobol design).
        tornado: low/high outcome per parameter (empty without a grid/lhs design).
        uncertainty: parameters-vs-chance split (empty without parameter draws).
        files: files written.
        text: a printable summary.
    """

    variants: pd.DataFrame
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    sobol: pd.DataFrame = field(default_factory=pd.DataFrame)
    tornado: pd.DataFrame = field(default_factory=pd.DataFrame)
    uncertainty: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: list[Path] = field(default_factory=list)
    text: str = ""


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, int, float, float]:
    """Mean, standard deviation, n and the t confidence interval of the mean (NaN dropped)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return (np.nan, np.nan, 0, np.nan, np.nan)
    mean = float(values.mean())
    if n == 1:
        return (mean, np.nan, 1, np.nan, np.nan)
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n))
    return (mean, sd, n, mean - half, mean + half)


def variant_grid_parameters(study: Study) -> list[str]:
    """Parameters a variant lists several values of (a grid inside the variant)."""
    return list(
        dict.fromkeys(
            p
            for values in study.variants.values()
            for p, v in values.items()
            if isinstance(v, list)
        )
    )


def variant_ci(table: pd.DataFrame, outputs: list[str], by: list[str]) -> pd.DataFrame:
    """Long table: group columns, outcome, mean, sd, n, ci_low, ci_high (95%)."""
    rows = []
    for keys, group in table.groupby(by, sort=False, dropna=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        for name in outputs:
            mean, sd, n, low, high = mean_ci(group[name].to_numpy())
            rows.append(
                {
                    **dict(zip(by, keys, strict=True)),
                    "outcome": name,
                    "mean": mean,
                    "sd": sd,
                    "n": n,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)


def variant_table(
    table: pd.DataFrame, outputs: list[str], by_parameters: list[str] = ()
) -> pd.DataFrame:
    """Printable wide table: one row per variant group, ``mean ± half-width`` per outcome."""
    by = ["variant", *[p for p in by_parameters if p in table and table[p].nunique() > 1]]
    long = variant_ci(table, outputs, by)

    def cell(row: pd.Series) -> str:
        if np.isnan(row["ci_high"]):
            return f"{row['mean']:,.4g}"
        return f"{row['mean']:,.4g} ± {(row['ci_high'] - row['ci_low']) / 2:,.2g}"

    long["cell"] = long.apply(cell, axis=1)
    wide = long.pivot_table(index=by, columns="outcome", values="cell", aggfunc="first", sort=False)
    return wide[[o for o in outputs if o in wide.columns]]


def sobol_indices(study: Study, table: pd.DataFrame, outputs: list[str]) -> pd.DataFrame:
    """Sobol S1 and ST with 95% confidence intervals, per variant and outcome.

    The outcome of each design point is its mean over replications; SALib's estimator needs
    every point of the Saltelli sample, so a variant with a missing or failed point is skipped.
    """
    from SALib.analyze import sobol

    from relocsim.experiments.design import salib_problem

    problem = salib_problem(study)
    rows = []
    for variant, group in table.groupby("variant", sort=False):
        means = group.groupby("point")[outputs].mean().sort_index()
        for name in outputs:
            y = means[name].to_numpy(dtype=float)
            expected = study.design.samples * (
                problem["num_vars"] * (2 if study.design.second_order else 1) + 2
            )
            if len(y) != expected or np.isnan(y).any() or np.nanstd(y) == 0:
                continue
            result = sobol.analyze(
                problem,
                y,
                calc_second_order=study.design.second_order,
                conf_level=0.95,
                seed=study.design.seed,
            )
            for i, param in enumerate(problem["names"]):
                rows.append(
                    {
                        "variant": variant,
                        "outcome": name,
                        "parameter": param,
                        "S1": result["S1"][i],
                        "S1_conf": result["S1_conf"][i],
                        "ST": result["ST"][i],
                        "ST_conf": result["ST_conf"][i],
                    }
                )
    return pd.DataFrame(rows)


def tornado(table: pd.DataFrame, outputs: list[str], parameters: list[str]) -> pd.DataFrame:
    """Outcome at each parameter's low and high end from a linear fit (others at their mean)."""
    numeric = [
        p for p in parameters if pd.api.types.is_numeric_dtype(table[p]) and table[p].nunique() > 1
    ]
    rows = []
    if not numeric:
        return pd.DataFrame()
    for variant, group in table.groupby("variant", sort=False):
        x = group[numeric].to_numpy(dtype=float)
        for name in outputs:
            y = group[name].to_numpy(dtype=float)
            keep = ~np.isnan(y)
            if keep.sum() <= len(numeric):
                continue
            design = np.column_stack([np.ones(keep.sum()), x[keep]])
            coef, *_ = np.linalg.lstsq(design, y[keep], rcond=None)
            centre = float(y[keep].mean())
            for j, param in enumerate(numeric):
                low, high = x[:, j].min(), x[:, j].max()
                mean = x[keep, j].mean()
                rows.append(
                    {
                        "variant": variant,
                        "outcome": name,
                        "parameter": param,
                        "low_value": low,
                        "high_value": high,
                        "mean_outcome": centre,
                        "outcome_at_low": centre + coef[j + 1] * (low - mean),
                        "outcome_at_high": centre + coef[j + 1] * (high - mean),
                    }
                )
    return pd.DataFrame(rows)


def _panels(n: int) -> tuple:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n]), plt


def _save(fig, plt, path: Path) -> Path:  # noqa: ANN001
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_variants(long: pd.DataFrame, by: list[str], path: Path) -> Path:
    """Bars of each outcome by variant group with 95% confidence intervals."""
    outcomes = list(dict.fromkeys(long["outcome"]))[:MAX_PANELS]
    fig, axes, plt = _panels(len(outcomes))
    for ax, name in zip(axes, outcomes, strict=False):
        part = long[long["outcome"] == name]
        labels = [" ".join(str(v) for v in row) for row in part[by].itertuples(index=False)]
        err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]])
        ax.bar(range(len(part)), part["mean"], yerr=np.nan_to_num(err), capsize=3, color="#4c72b0")
        ax.set_xticks(range(len(part)), labels, rotation=35, ha="right", fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    return _save(fig, plt, path)


def plot_against(table: pd.DataFrame, outputs: list[str], parameter: str, path: Path) -> Path:
    """Every outcome against one parameter, a colour per variant (mean ± 95% CI on grids)."""
    fig, axes, plt = _panels(min(len(outputs), MAX_PANELS))
    grid_like = table[parameter].nunique() <= 12
    for ax, name in zip(axes, outputs, strict=False):
        for variant, group in table.groupby("variant", sort=False):
            if group[parameter].nunique() < 2 and table["variant"].nunique() > 1 and grid_like:
                continue
            if grid_like:
                long = variant_ci(group, [name], [parameter]).sort_values(parameter)
                ax.errorbar(
                    long[parameter].astype(str)
                    if not pd.api.types.is_numeric_dtype(long[parameter])
                    else long[parameter],
                    long["mean"],
                    yerr=np.nan_to_num(
                        [long["mean"] - long["ci_low"], long["ci_high"] - long["mean"]]
                    ),
                    marker="o",
                    capsize=3,
                    label=str(variant),
                )
            else:
                ax.scatter(group[parameter], group[name], s=8, alpha=0.6, label=str(variant))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(parameter, fontsize=7)
        ax.tick_params(labelsize=7)
    if table["variant"].nunique() > 1:
        axes[0].legend(fontsize=6)
    return _save(fig, plt, path)


def contrast_baselines(table: pd.DataFrame, contrasts: pd.DataFrame) -> np.ndarray:
    """For each row of a contrast table, the mean of its outcome over the finished runs of the
    contrast's ``a`` variant (the scale its difference is read against)."""
    ok = table[table["status"] == "ok"]
    return np.array(
        [
            ok.loc[ok["variant"] == row.a, row.outcome].mean()
            for row in contrasts.itertuples(index=False)
        ],
        dtype=float,
    )


def plot_contrasts(contrasts: pd.DataFrame, baselines: np.ndarray, path: Path) -> Path:
    """Forest plot: each contrast's paired difference per outcome with its 95% interval, in %
    of the mean of ``a`` so that outcomes of any unit share the axis; the grey band is the
    minimum detectable effect either side of 0; dark marks are detectable, pale ones not (the
    first ``MAX_PANELS * 4`` rows of the table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = contrasts.iloc[: MAX_PANELS * 4].reset_index(drop=True)
    scale = 100.0 / np.where(
        np.abs(baselines[: len(rows)]) > 0, np.abs(baselines[: len(rows)]), np.nan
    )
    several = rows["contrast"].nunique() > 1 or rows["group"].astype(bool).any()
    values = [
        f"{row.mean:+,.4g} [{row.ci_low:,.4g}, {row.ci_high:,.4g}]"
        for row in rows.itertuples(index=False)
    ]
    fig, ax = plt.subplots(figsize=(9.0, 1.0 + 0.42 * len(rows)))
    for k, row in enumerate(rows.itertuples(index=False)):
        y = len(rows) - 1 - k
        mean, low, high, mde = (v * scale[k] for v in (row.mean, row.ci_low, row.ci_high, row.mde))
        if np.isfinite(mde):
            ax.fill_betweenx([y - 0.3, y + 0.3], -mde, mde, color="#dddddd", lw=0)
        colour = "#1f4e9c" if row.detectable else "#9aaed0"
        if np.isfinite(low):
            ax.errorbar(
                mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=3
            )
        else:
            ax.plot(mean, y, "o", color=colour)
        ax.annotate(
            values[k],
            (1.01, y),
            xycoords=("axes fraction", "data"),
            va="center",
            fontsize=7,
        ).set_in_layout(False)
    labels = [
        f"{row.outcome}"
        + (f" ({row.contrast}{', ' + row.group if row.group else ''})" if several else "")
        for row in rows.itertuples(index=False)
    ]
    ax.set_yticks(range(len(rows) - 1, -1, -1), labels, fontsize=7)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel(
        "b - a, % of the mean of a (95% interval; grey: minimum detectable effect)", fontsize=8
    )
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    if not several:
        row = rows.iloc[0]
        ax.set_title(f"{row['b']} - {row['a']}, paired by seed (n = {int(row['n'])})", fontsize=9)
    # 7-point text takes about 0.06 inch a character: room for the labels and the values
    label_in = 0.06 * max(len(label) for label in labels) + 0.2
    value_in = 0.06 * max(len(value) for value in values) + 0.2
    width = 4.5 + label_in + value_in
    height = fig.get_figheight()
    fig.set_figwidth(width)
    fig.subplots_adjust(
        left=label_in / width,
        right=1 - value_in / width,
        bottom=0.6 / height,
        top=1 - 0.4 / height,
    )
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_sobol(frame: pd.DataFrame, path: Path) -> Path:
    """S1 and ST bars with 95% confidence intervals, a panel per outcome (and variant)."""
    groups = list(frame.groupby(["variant", "outcome"], sort=False))[:MAX_PANELS]
    fig, axes, plt = _panels(len(groups))
    for ax, ((variant, name), part) in zip(axes, groups, strict=False):
        pos = np.arange(len(part))
        ax.barh(pos - 0.2, part["S1"], 0.4, xerr=part["S1_conf"], label="S1", capsize=2)
        ax.barh(pos + 0.2, part["ST"], 0.4, xerr=part["ST_conf"], label="ST", capsize=2)
        ax.set_yticks(
            pos,
            [
                p.split(".")[-1] if p.count(".") < 2 else ".".join(p.split(".")[-2:])
                for p in part["parameter"]
            ],
            fontsize=7,
        )
        ax.axvline(0, color="grey", lw=0.5)
        title = name if frame["variant"].nunique() == 1 else f"{name} ({variant})"
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    axes[0].legend(fontsize=7)
    return _save(fig, plt, path)


def plot_tornado(frame: pd.DataFrame, path: Path) -> Path:
    """Tornado bars: outcome at each parameter's low and high end around the mean."""
    groups = list(frame.groupby(["variant", "outcome"], sort=False))[:MAX_PANELS]
    fig, axes, plt = _panels(len(groups))
    for ax, ((variant, name), part) in zip(axes, groups, strict=False):
        part = part.assign(width=(part["outcome_at_high"] - part["outcome_at_low"]).abs())
        part = part.sort_values("width")
        pos = np.arange(len(part))
        centre = part["mean_outcome"].iloc[0]
        ax.barh(pos, part["outcome_at_low"] - centre, left=centre, color="#dd8452", label="low")
        ax.barh(pos, part["outcome_at_high"] - centre, left=centre, color="#4c72b0", label="high")
        ax.set_yticks(pos, [p.split(".")[-1] for p in part["parameter"]], fontsize=7)
        title = name if frame["variant"].nunique() == 1 else f"{name} ({variant})"
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    axes[0].legend(fontsize=7)
    return _save(fig, plt, path)


def _uncertainty(
    study: Study, table: pd.DataFrame, outputs: list[str], parameters: list[str]
) -> pd.DataFrame:
    """Parameters-vs-chance split of every variant point and contrast."""
    from relocsim.experiments.power import contrast_differences
    from relocsim.experiments.uncertainty import uncertainty_table

    contrasts = []
    for contrast in study.contrasts:
        chosen = [o for o in (contrast.outputs or outputs) if o in outputs]
        pairs, by = contrast_differences(table, contrast, parameters, chosen)
        contrasts.append((contrast.name, pairs, by))
    return uncertainty_table(table, outputs, contrasts)


def analyze(out_dir: str | Path, outputs: list[str] | None = None, plots: bool = True) -> Report:
    """Analyse a sweep folder; write CSV tables and PNG plots to ``out_dir/analysis``.

    Raises:
        FileNotFoundError: no ``results.parquet`` or ``study.toml`` in ``out_dir``.
        StudyError: an unknown outcome name in ``outputs``.
    """
    from relocsim.experiments.study import StudyError

    out_dir = Path(out_dir)
    results_path, study_path = out_dir / "results.parquet", out_dir / "study.toml"
    for path in (results_path, study_path):
        if not path.exists():
            inside = sorted(p.parent.name for p in out_dir.glob("*/results.parquet"))
            hint = (
                f"it holds the sweeps {', '.join(inside)} (relocsim compare keeps one folder per "
                f"change): analyse one of them, e.g. relocsim analyze {out_dir / inside[0]}"
                if inside
                else f"is {out_dir} the folder of a sweep (relocsim sweep STUDY --out DIR)?"
            )
            raise FileNotFoundError(f"{path}: not found; {hint}")
    study = parse_study(tomllib.loads(study_path.read_text(encoding="utf-8")), str(study_path))
    table = pd.read_parquet(results_path)
    names = outputs or [o for o in study.output_names if o in table.columns]
    unknown = [o for o in names if o not in table.columns]
    if unknown:
        raise StudyError(
            f"{results_path}: no outcome {unknown[0]!r}; it has "
            + ", ".join(o for o in study.output_names if o in table.columns)
        )
    target = out_dir / "analysis"
    target.mkdir(exist_ok=True)
    counts = table["status"].value_counts().to_dict()
    ok = table[table["status"] == "ok"]
    report = Report(variants=pd.DataFrame())
    lines = [
        f"{results_path}: {len(table)} runs: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    ]
    design_params = list(study.design.parameters) if study.design else []
    grid_params = variant_grid_parameters(study)
    by = ["variant", *[p for p in grid_params if p in ok and ok[p].nunique() > 1]]
    if len(ok):
        report.variants = variant_ci(ok, names, by)
        report.variants.to_csv(target / "variants.csv", index=False)
        report.files.append(target / "variants.csv")
        lines += [
            "",
            "Outcomes by variant: mean ± half-width of the 95% CI over "
            + ("replications and design points" if design_params else "replications")
            + (
                " (runs sharing parameter draws and seeds taken as independent: see the se "
                "under 'Parameters vs chance')"
                if "draw" in table
                else ""
            ),
            variant_table(ok, names, grid_params).to_string(),
        ]
        if plots:
            report.files.append(plot_variants(report.variants, by, target / "variants.png"))
    if study.contrasts and len(ok):
        from relocsim.experiments.power import contrast_table, describe

        report.contrasts = contrast_table(study, table, [*grid_params, *design_params])
        report.contrasts.to_csv(target / "contrasts.csv", index=False)
        report.files.append(target / "contrasts.csv")
        lines += [
            "",
            "Contrasts (b - a, paired by seed): mean [95% CI], sd of the paired difference, n,"
            " minimum detectable effect (80% power, 5% two-sided)"
            + (
                "; with parameter draws the interval and MDE come from the se of the mean over"
                " the draws x seeds cross"
                if "draw" in table
                else ""
            ),
            describe(report.contrasts),
        ]
        if plots and len(report.contrasts):
            baselines = contrast_baselines(table, report.contrasts)
            report.files.append(
                plot_contrasts(report.contrasts, baselines, target / "contrasts.png")
            )
    if "draw" in table and len(ok):
        report.uncertainty = _uncertainty(study, table, names, [*grid_params, *design_params])
        report.uncertainty.to_csv(target / "uncertainty.csv", index=False)
        report.files.append(target / "uncertainty.csv")
        from relocsim.experiments.uncertainty import describe as describe_split

        lines += [
            "",
            "Parameters vs chance (K parameter draws crossed with R seeds; two-way random "
            "effects): share of each outcome's variance from the coefficients' uncertainty and "
            "from chance; se: standard error of the mean over draws and seeds",
            describe_split(report.uncertainty),
        ]
        if plots:
            from relocsim.experiments.uncertainty import plot_shares

            report.files.append(plot_shares(report.uncertainty, target / "uncertainty.png"))
    if study.design is not None and study.design.type == "sobol" and len(ok):
        report.sobol = sobol_indices(study, table.where(table["status"] == "ok"), names)
        if len(report.sobol):
            report.sobol.to_csv(target / "sobol.csv", index=False)
            report.files.append(target / "sobol.csv")
            shown = report.sobol.round(3)
            lines += [
                "",
                "Sobol indices (95% CI half-widths in *_conf)",
                shown.to_string(index=False),
            ]
            if plots:
                report.files.append(plot_sobol(report.sobol, target / "sobol.png"))
        else:
            lines += ["", "Sobol indices: not computed (missing or failed design points)"]
    elif design_params and len(ok):
        report.tornado = tornado(ok, names, design_params)
        if len(report.tornado):
            report.tornado.to_csv(target / "tornado.csv", index=False)
            report.files.append(target / "tornado.csv")
            if plots:
                report.files.append(plot_tornado(report.tornado, target / "tornado.png"))
    if plots and len(ok):
        for param in [*grid_params, *design_params]:
            if param in ok and ok[param].nunique() > 1:
                safe = param.replace(".", "_")
                report.files.append(plot_against(ok, names, param, target / f"vs_{safe}.png"))
    lines += ["", "wrote " + ", ".join(str(p) for p in report.files)]
    report.text = "\n".join(lines)
    return report
