"""Conversion of productive land to housing and offices as a sourced yearly flow per region.

Brussels lost industrial premises at a steady 46,000-58,000 m2 a year (1997-2021 and
2018-2021; OAP n5, perspective.brussels 2024), most of them in mixed zones (59%; OAP n1, IEB
2012). A region's ``conversion_ha_per_year`` is taken each year from the vacant land of its
open, not pre-empted mixed and OGSO pools, in proportion to that vacant land; when less is
vacant the flow falls short (nothing occupied is converted: firms are not evicted). Pre-emption
by the region stops it, as it stops the conversion of released land in
:func:`relocsim.land_market.release`.
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


def convert_yearly_flow(
    land: LandState, pool_region: np.ndarray, flow_m2: np.ndarray, year: int
) -> np.ndarray:
    """Convert each region's yearly flow from its convertible vacant land.

    Returns:
        m2 converted in each pool this year.
    """
    convertible = np.isin(land.land_use, [LAND_USES.index(u) for u in CONVERTIBLE_USES])
    eligible = convertible & ~land.preempted & (land.open_year <= year)
    vacant = np.where(eligible, land.vacant_m2, 0.0)
    by_region = np.bincount(pool_region, weights=vacant, minlength=len(flow_m2))
    share = np.divide(flow_m2, by_region, out=np.zeros(len(flow_m2)), where=by_region > 0)
    lost = vacant * np.minimum(share, 1.0)[pool_region]
    land.developable_m2 -= lost
    land.converted_m2 += lost
    return lost
