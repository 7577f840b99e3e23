"""Figures of a run: jobs by region over time (index) and delocalisations per year (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from relocsim.records import Results  # noqa: E402


def plot_run(results: Results, path: str | Path) -> Path:
    """Draw jobs by region and delocalisations per year by origin region; save as PNG."""
    yearly = results.yearly
    by_region = (
        yearly.groupby(["year", "region"], observed=True)[["jobs", "delocalisations"]]
        .sum()
        .unstack("region")
    )
    fig, (jobs_ax, deloc_ax) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    jobs = by_region["jobs"]
    # regions differ tenfold in size: an index shows their paths side by side
    index = 100 * jobs / jobs.iloc[0]
    index.columns = [f"{r} ({jobs[r].iloc[0] / 1000:,.0f}k jobs in {jobs.index[0]})"
                     for r in jobs.columns]
    index.plot(ax=jobs_ax, marker=".")
    jobs_ax.axhline(100, color="grey", linewidth=0.6)
    jobs_ax.set_title("Jobs by region (first year = 100)")
    jobs_ax.set_ylabel("index")
    by_region["delocalisations"].plot(ax=deloc_ax, kind="bar", stacked=True, width=0.8)
    deloc_ax.set_title("Delocalisations per year, by region of origin")
    deloc_ax.set_ylabel("firms")
    labels = [str(y) if i % 5 == 0 else "" for i, y in enumerate(by_region.index)]
    deloc_ax.set_xticklabels(labels, rotation=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
