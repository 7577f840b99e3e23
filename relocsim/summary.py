"""Summary of a run by region: stocks at the start and the end, yearly flows and public money."""

from __future__ import annotations

import pandas as pd

from relocsim.records import Results


def summary_table(results: Results) -> pd.DataFrame:
    """One row per region: firms and jobs first/last year, mean yearly moves, money totals."""
    yearly, accounts = results.yearly, results.accounts
    if yearly.empty:
        return pd.DataFrame()
    first, last = yearly["year"].min(), yearly["year"].max()
    stock = yearly.groupby(["region", "year"], observed=True)[["firms", "jobs"]].sum()
    flows = yearly.groupby("region", observed=True)[
        ["relocations", "delocalisations", "arrivals"]
    ].sum() / (last - first + 1)
    money = (
        accounts.groupby("region", observed=True)[
            ["aid_paid", "aid_recovered", "net_transfer"]
        ].sum()
        / 1e6
    )
    table = pd.DataFrame(
        {
            f"firms {first}": stock.xs(first, level="year")["firms"],
            f"firms {last}": stock.xs(last, level="year")["firms"],
            f"jobs {first}": stock.xs(first, level="year")["jobs"],
            f"jobs {last}": stock.xs(last, level="year")["jobs"],
            "relocations/yr": flows["relocations"].round(1),
            "delocalisations/yr": flows["delocalisations"].round(1),
            "arrivals/yr": flows["arrivals"].round(1),
            "aid paid MEUR": money["aid_paid"].round(2),
            "aid recovered MEUR": money["aid_recovered"].round(2),
            "net transfer MEUR": money["net_transfer"].round(2),
        }
    )
    table.index.name = "region"
    return table
