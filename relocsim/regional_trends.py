"""Regional trends: a growth drift by region and sector on top of the sector's own drift.

A sector's ``growth_drift`` (sectors.csv) is common to every region; the sources give trends
that differ by region within a sector (Brussels industry shrinking by 0-3.1% a year while
industry elsewhere holds; OAP n5, perspective.brussels 2024). ``population.csv`` carries each
region x sector cell's ``growth_drift_shift`` (1/year), added to the expected yearly growth of
the cell's firms wherever they are now located (the region of their pool).
"""

from __future__ import annotations

import numpy as np

from relocsim.firms import FirmTable
from relocsim.geography import Geography
from relocsim.scenarios import Scenario


def drift_shift_table(scenario: Scenario, geo: Geography) -> np.ndarray:
    """Drift shift by region and sector (R, S), from ``population.csv``; 0 for absent cells."""
    table = np.zeros((len(geo.region_names), len(geo.sector_names)))
    for cell in scenario.population:
        region, sector = geo.region_id(cell.region), geo.sector_names.index(cell.sector)
        table[region, sector] = cell.growth_drift_shift
    return table


def drift_shift(
    table: np.ndarray, geo: Geography, firms: FirmTable, rows: np.ndarray
) -> np.ndarray:
    """Each firm's drift shift: that of its current region and its sector."""
    return table[geo.pool_region[firms.pool[rows]], firms.sector[rows]]
