"""The dashboard's figures, drawn from a run's tables as matplotlib ``Figure`` objects.

Figures are built without ``pyplot`` (no global state), so the worker thread that renders the page
after a simulated year can draw them safely.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

REGION_COLOURS = {"Brussels": "#1f4e9c", "Flanders": "#e0a100", "Wallonia": "#c0392b"}
MONEY = (
    ("aid_paid", "aid paid"),
    ("aid_recovered", "aid recovered"),
    ("compensation_received", "compensation received"),
    ("incentives_paid", "incentives paid"),
    ("land_subsidy_paid", "land subsidy paid"),
    ("net_public_cost", "net public cost"),
)


def _empty(fig: Figure, text: str = "Run a year to see this view") -> Figure:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", color="grey")
    return fig


def _colour(region: str) -> str:
    return REGION_COLOURS.get(region, "grey")


def jobs_figure(yearly: pd.DataFrame | None, region: str = "Brussels", title: str = "") -> Figure:
    """Jobs by region over time (left) and one region's jobs by sector (right)."""
    fig = Figure(figsize=(9.5, 3.2), layout="constrained")
    if yearly is None or yearly.empty:
        return _empty(fig)
    left, right = fig.subplots(1, 2)
    by_region = yearly.groupby(["year", "region"], observed=True)["jobs"].sum().unstack()
    for name in by_region:
        left.plot(
            by_region.index, by_region[name] / 1000, marker=".", label=name, color=_colour(name)
        )
    left.set_title("Jobs by region")
    left.set_ylabel("thousand jobs")
    left.legend(fontsize=7)
    here = yearly[yearly["region"] == region]
    by_sector = here.groupby(["year", "sector"], observed=True)["jobs"].sum().unstack()
    right.stackplot(
        by_sector.index,
        (by_sector / 1000).T.to_numpy(),
        labels=[str(s).replace("_", " ") for s in by_sector.columns],
    )
    right.set_title(f"{region} jobs by sector")
    right.set_ylabel("thousand jobs")
    right.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def flows_figure(
    flows: pd.DataFrame | None,
    regions: list[str],
    last_year_only: bool = False,
    measure: str = "firms",
    title: str = "",
) -> Figure:
    """Origin-destination heat map of moves between regions (diagonal: moves inside one)."""
    fig = Figure(figsize=(4.6, 3.6), layout="constrained")
    if flows is None or flows.empty:
        return _empty(fig)
    data = flows
    if last_year_only:
        data = flows[flows["year"] == flows["year"].max()]
    matrix = (
        data.groupby(["origin_region", "destination_region"], observed=True)[measure]
        .sum()
        .unstack()
        .reindex(index=regions, columns=regions)
        .fillna(0)
    )
    ax = fig.add_subplot()
    image = ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(regions)), regions)
    ax.set_yticks(range(len(regions)), regions)
    ax.set_xlabel("destination")
    ax.set_ylabel("origin")
    top = matrix.to_numpy().max() or 1
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(
            j,
            i,
            f"{value:,.0f}",
            ha="center",
            va="center",
            color="white" if value > top / 2 else "black",
            fontsize=9,
        )
    span = "last year" if last_year_only else "all years run"
    ax.set_title(title or f"Moves ({measure}, {span})", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def zones_figure(
    zones: pd.DataFrame | None, colour_by: str = "occupancy", title: str = ""
) -> Figure:
    """The zones at their coordinates, coloured by occupancy or price, sized by jobs."""
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    if zones is None or zones.empty:
        return _empty(fig)
    now = zones[zones["year"] == zones["year"].max()]
    if colour_by == "price":
        values, label, cmap = now["price_eur_m2"], "land price (EUR/m2)", "magma_r"
    else:
        values = now["occupied_ha"] / now["developable_ha"].where(now["developable_ha"] > 0)
        label, cmap = "occupied share of developable land", "viridis"
    sizes = 20 + 500 * np.sqrt(now["jobs"] / max(now["jobs"].max(), 1))
    whole, zoom = fig.subplots(1, 2)
    near = (now["x_km"].abs() <= 8) & (now["y_km"].abs() <= 8)
    for ax, rows, span in ((whole, now.index, "metropolitan area"), (zoom, now.index[near], "")):
        part = now.loc[rows]
        points = ax.scatter(
            part["x_km"],
            part["y_km"],
            c=values.loc[rows],
            s=sizes.loc[rows],
            cmap=cmap,
            vmin=values.min(),
            vmax=values.max(),
            edgecolors="black",
            linewidths=0.5,
            alpha=0.85,
        )
        for row in part.itertuples():
            if ax is zoom or (row.region != "Brussels" and row.jobs >= now["jobs"].quantile(0.6)):
                ax.annotate(
                    str(row.zone),
                    (row.x_km, row.y_km),
                    fontsize=6,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        ax.set_xlabel("km east of the Grand-Place")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(span or "Brussels (zoom)", fontsize=9)
    whole.set_ylabel("km north")
    fig.colorbar(points, ax=zoom, shrink=0.8, label=label)
    fig.suptitle(title or f"Zones in {int(now['year'].iloc[0])} (size: jobs)", fontsize=10)
    return fig


def accounts_figure(accounts: pd.DataFrame | None, title: str = "") -> Figure:
    """Public money by region summed over the run (left) and net public cost per year (right)."""
    fig = Figure(figsize=(8.5, 3.2), layout="constrained")
    if accounts is None or accounts.empty:
        return _empty(fig)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    columns = [c for c, _ in MONEY if c in accounts]
    totals = accounts.groupby("region", observed=True)[columns].sum() / 1e6
    width = 0.8 / max(len(totals), 1)
    x = np.arange(len(columns))
    for i, (region, row) in enumerate(totals.iterrows()):
        left.bar(x + i * width, row.to_numpy(), width, label=region, color=_colour(region))
    left.set_xticks(
        x + width * (len(totals) - 1) / 2,
        [label for c, label in MONEY if c in columns],
        rotation=20,
        fontsize=7,
        ha="right",
    )
    left.set_ylabel("MEUR, summed over the run")
    left.set_title("Public money by region")
    left.legend(fontsize=7)
    per_year = (
        accounts.pivot_table(
            index="year", columns="region", values="net_public_cost", aggfunc="sum", observed=True
        )
        / 1e6
    )
    for region in per_year:
        right.plot(
            per_year.index, per_year[region], marker=".", label=region, color=_colour(region)
        )
    right.set_title("Net public cost per year")
    right.set_ylabel("MEUR")
    right.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def effect_figure(effects: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """B - A by year, one panel per measure: the mean over the seed pairs and its 95% interval
    (a band from two pairs on), with 0 drawn: where the band holds 0, the pairs cannot tell the
    effect from the seeds' noise."""
    fig = Figure(figsize=(9.5, 2.8), layout="constrained")
    if not effects or all(frame.empty for frame in effects.values()):
        return _empty(fig, "Compare two policies and run a year to see B - A")
    axes = fig.subplots(1, len(effects), squeeze=False).flat
    for ax, (label, frame) in zip(axes, effects.items(), strict=True):
        ax.axhline(0, color="grey", lw=0.8)
        ax.plot(frame["year"], frame["mean"], marker=".", color="#1f4e9c", label="mean")
        ax.fill_between(
            frame["year"],
            frame["low"],
            frame["high"],
            color="#1f4e9c",
            alpha=0.2,
            lw=0,
            label="95% interval",
        )
        pairs = int(frame["pairs"].max()) if len(frame) else 0
        ax.set_title(f"B - A: {label} ({pairs} seed pair{'s' if pairs != 1 else ''})", fontsize=9)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def all_figures(tables: Mapping[str, pd.DataFrame], regions: list[str]) -> dict[str, Figure]:
    """Every figure of one run, by file stem."""
    return {
        "jobs": jobs_figure(tables.get("yearly")),
        "flows": flows_figure(tables.get("flows"), regions),
        "zones_occupancy": zones_figure(tables.get("zones"), "occupancy"),
        "zones_price": zones_figure(tables.get("zones"), "price"),
        "accounts": accounts_figure(tables.get("accounts")),
    }


def figures_zip(runs: Mapping[str, Mapping[str, pd.DataFrame]], regions: list[str]) -> bytes:
    """PNG files of every figure of every run (``<run>_<figure>.png``) in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for label, tables in runs.items():
            for name, fig in all_figures(tables, regions).items():
                png = io.BytesIO()
                fig.savefig(png, format="png", dpi=110)
                archive.writestr(f"{label}_{name}.png", png.getvalue())
    return buffer.getvalue()
