"""Calibration targets: the stylised facts a default run should reproduce, and the comparison.

Each :class:`Fact` is a range from the sourced literature (``shared/data``); :func:`compare`
computes the model's value of each from a run's tables and says whether it falls in the range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from relocsim.geography import Geography
from relocsim.records import Results

BRABANT_ZONES = ("vb_", "bw_")
"""Zone-name prefixes of the Flemish and Walloon Brabant provinces in the default scenario."""

SHORT_MOVE_KM = 40.0


@dataclass(frozen=True)
class Fact:
    """A stylised fact as a target range."""

    key: str
    label: str
    low: float
    high: float
    source: str


FACTS: tuple[Fact, ...] = (
    Fact(
        "relocation_rate",
        "moves per firm and year",
        0.02,
        0.06,
        "Belgium 2.1-2.5% change municipality (IBSA 2009-2020); NL 4% (van Oort et al. 2007), "
        "6% (CBS 2013)",
    ),
    Fact(
        "short_move_share",
        f"share of moves under {SHORT_MOVE_KM:.0f} km",
        0.85,
        0.97,
        "Belgium: 90% of moves < 40 km (IBSA); NL: 94% within the region (van Oort et al. 2007)",
    ),
    Fact(
        "brussels_out_rate",
        "Brussels firms leaving the region per year",
        0.015,
        0.035,
        "2,824-3,115 leavers a year (Statbel 2020-2023) on ~95,000-136,000 Brussels firms "
        "(BISA 2014; IBSA: net -818 = 0.6% of the stock)",
    ),
    Fact(
        "brussels_in_out_ratio",
        "firms entering / leaving Brussels",
        0.6,
        0.85,
        "1,928/2,824 (2020), 2,129/3,115 (2023), 2,768/3,420 (2017), 2,123/2,941 (IBSA)",
    ),
    Fact(
        "brabant_share",
        "share of Brussels leavers going to the two Brabants",
        0.55,
        0.8,
        "about two thirds (IBSA Mini-Bru 2023)",
    ),
    Fact(
        "brussels_involved_share",
        "share of interregional moves involving Brussels",
        0.75,
        0.9,
        "82-83% (Statbel 2019, 2020)",
    ),
    Fact(
        "large_small_out_ratio",
        "Brussels out-rate of firms > 100 jobs / 1-4 jobs",
        1.5,
        6.0,
        "17-18 vs ~6 per 1,000 (IBSA 2009-2020)",
    ),
)


def _moves(results: Results) -> pd.DataFrame:
    events = results.events
    return events[events["event"].isin(["moved", "delocalised"])]


def measure(results: Results, geo: Geography) -> dict[str, float]:
    """The model's value of every fact in :data:`FACTS` from a run's tables."""
    yearly, flows = results.yearly, results.flows
    moves = _moves(results)
    firm_years = yearly["firms"].sum()
    zone_index = {name: i for i, name in enumerate(geo.zone_names)}
    origin = moves["from_zone"].map(zone_index).to_numpy()
    destination = moves["to_zone"].map(zone_index).to_numpy()
    distance = geo.distance_km[origin, destination] if len(moves) else np.zeros(0)

    by_region = yearly.groupby("region", observed=True)[
        ["firms", "delocalisations", "arrivals"]
    ].sum()
    brussels = by_region.loc["Brussels"] if "Brussels" in by_region.index else None
    interregional = flows[flows["origin_region"] != flows["destination_region"]]
    involved = interregional[
        (interregional["origin_region"] == "Brussels")
        | (interregional["destination_region"] == "Brussels")
    ]
    leavers = moves[(moves["event"] == "delocalised") & moves["from_zone"].str.startswith("bxl_")]
    to_brabant = leavers["to_zone"].str.startswith(BRABANT_ZONES)

    values = {
        "relocation_rate": len(moves) / firm_years if firm_years else np.nan,
        "short_move_share": float((distance < SHORT_MOVE_KM).mean()) if len(moves) else np.nan,
        "brussels_in_out_ratio": np.nan,
        "brussels_out_rate": np.nan,
        "brabant_share": float(to_brabant.mean()) if len(leavers) else np.nan,
        "brussels_involved_share": (
            involved["firms"].sum() / interregional["firms"].sum()
            if interregional["firms"].sum()
            else np.nan
        ),
        "large_small_out_ratio": _size_gradient(results),
    }
    if brussels is not None and brussels["delocalisations"] > 0:
        values["brussels_out_rate"] = brussels["delocalisations"] / brussels["firms"]
        values["brussels_in_out_ratio"] = brussels["arrivals"] / brussels["delocalisations"]
    return values


def _size_gradient(results: Results) -> float:
    """Out-rate of large (100+ jobs) over small (1-4 jobs) Brussels firms."""
    sizes = results.sizes
    brussels = (
        sizes[sizes["region"] == "Brussels"]
        .groupby("size_class")[["firms", "delocalisations"]]
        .sum()
    )
    if not {"1-4", "100+"} <= set(brussels.index):
        return np.nan
    rate = brussels["delocalisations"] / brussels["firms"].where(brussels["firms"] > 0)
    return float(rate["100+"] / rate["1-4"]) if rate["1-4"] > 0 else np.nan


def compare(results: Results, geo: Geography) -> pd.DataFrame:
    """Table of facts: target range, model value, and whether it is inside the range."""
    values = measure(results, geo)
    return pd.DataFrame(
        [
            {
                "fact": fact.label,
                "target": f"{fact.low:g} - {fact.high:g}",
                "model": round(values[fact.key], 4),
                "ok": bool(fact.low <= values[fact.key] <= fact.high),
                "source": fact.source,
            }
            for fact in FACTS
        ]
    ).set_index("fact")
