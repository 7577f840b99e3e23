"""Conversion of productive land to housing and offices as a sourced yearly flow per region.

Brussels lost industrial premises at a steady 46,000-58,000 m2 a year (1997-2021 and
2018-2021; OAP n5, perspective.brussels 2024), most of them in mixed zones (59%; OAP n1, IEB
2012), 7% in urban-industry zones (ZIU/GSI; the rest, outside the industrial zones, is what
the model's mixed class stands for). A region's ``conversion_ha_per_year`` is taken each year
from its open, not pre-empted *premises*: ``conversion_industrial_share`` of it from the
urban-industry ones, the rest from the mixed and OGSO ones, in proportion to occupied land. Each
year's flow is owed by them from the start of the year and converted as firms release them
(exits, moves, shrinking; :func:`relocsim.land_market.release`), before anyone else can take
them. The sources count premises converted, most of them vacated by the firms that used them;
no firm is evicted, and vacant land stays for firms (taking the flow from vacant land first used
up the mixed zones' vacant land in about 20 years, after which the flow fell short). What firms
do not release stays owed, and developers' offer for it (``land_market.conversion_premium_eur_m2``
on each premises' owed share, :func:`relocsim.land_market.owed_share`) raises the resale value
firms weigh when deciding to move: the advice's speculation on reconverted productive land,
which keeps the flow going where firms hold on to their premises.
Pre-emption by the region stops it, as it stops the conversion of released land.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.land_market import HA, LandState
from relocsim.scenarios import LAND_USES, Scenario

CONVERTIBLE_USES = ("mixed", "ogso")
"""Land-use classes whose land is converted (the classes land_market.release converts)."""

INDUSTRIAL_USES = ("gsi",)
"""Urban-industry zones (ZIU/GSI): they owe a region's ``conversion_industrial_share``."""


@dataclass(frozen=True)
class ConversionFlow:
    """Each region's yearly conversion (m2) and the share of it its urban-industry premises owe."""

    m2: np.ndarray
    industrial_share: np.ndarray


def yearly_flow(scenario: Scenario, region_names: list[str]) -> ConversionFlow:
    """Conversion flow of each region (m2 a year) and its urban-industry share."""
    regions = [scenario.regions[name] for name in region_names]
    return ConversionFlow(
        m2=np.array([r.conversion_ha_per_year * HA for r in regions]),
        industrial_share=np.array([r.conversion_industrial_share for r in regions]),
    )


def owe_yearly_flow(
    land: LandState, pool_region: np.ndarray, flow: ConversionFlow, year: int
) -> None:
    """Make each region's flow for ``year`` owed by its open, not pre-empted premises
    (``land.conversion_due_m2``): ``industrial_share`` of it by its urban-industry premises, the
    rest by its mixed and OGSO premises, each part in proportion to occupied land. A region
    with premises of one kind only owes the whole flow there. It is converted as firms release
    the premises during that year."""
    eligible = ~land.preempted & (land.open_year <= year)
    n = len(flow.m2)
    premises = [
        np.where(eligible & np.isin(land.land_use, _indices(uses)), land.occupied_m2, 0.0)
        for uses in (CONVERTIBLE_USES, INDUSTRIAL_USES)
    ]
    held = [np.bincount(pool_region, weights=p, minlength=n) for p in premises]
    industrial = np.where(held[1] > 0, np.where(held[0] > 0, flow.industrial_share, 1.0), 0.0)
    for owing, total, share in zip(premises, held, (1.0 - industrial, industrial), strict=True):
        per_m2 = np.divide(flow.m2 * share, total, out=np.zeros(n), where=total > 0)
        land.conversion_due_m2 += owing * per_m2[pool_region]


def _indices(uses: tuple[str, ...]) -> list[int]:
    return [LAND_USES.index(u) for u in uses]
