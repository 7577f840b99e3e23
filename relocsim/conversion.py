"""Conversion of productive land to housing and offices as a sourced yearly flow per region.

Brussels lost industrial premises at a steady 46,000-58,000 m2 a year (1997-2021 and
2018-2021; OAP n5, perspective.brussels 2024), most of them in mixed zones (59%; OAP n1, IEB
2012). A region's ``conversion_ha_per_year`` is taken each year from the vacant land of its
open, not pre-empted mixed and OGSO *premises*, in proportion to their occupied land: each
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

import numpy as np

from relocsim.land_market import HA, LandState
from relocsim.scenarios import LAND_USES, Scenario

CONVERTIBLE_USES = ("mixed", "ogso")
"""Land-use classes whose land is converted (the classes land_market.release converts)."""


def yearly_flow_m2(scenario: Scenario, region_names: list[str]) -> np.ndarray:
    """Conversion flow of each region (m2 a year)."""
    return np.array([scenario.regions[name].conversion_ha_per_year * HA for name in region_names])


def owe_yearly_flow(
    land: LandState, pool_region: np.ndarray, flow_m2: np.ndarray, year: int
) -> None:
    """Make each region's flow for ``year`` owed by its convertible premises (open, not
    pre-empted mixed and OGSO pools), in proportion to their occupied land
    (``land.conversion_due_m2``); it is converted as firms release them during that year."""
    convertible = np.isin(land.land_use, [LAND_USES.index(u) for u in CONVERTIBLE_USES])
    eligible = convertible & ~land.preempted & (land.open_year <= year)
    premises = np.where(eligible, land.occupied_m2, 0.0)
    by_region = np.bincount(pool_region, weights=premises, minlength=len(flow_m2))
    owed = np.divide(flow_m2, by_region, out=np.zeros(len(flow_m2)), where=by_region > 0)
    land.conversion_due_m2 += premises * owed[pool_region]
