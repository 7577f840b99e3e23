"""Demography: firms grow or shrink, exit, are born; scheduled plants close; site investors arrive.

Growth is Gibrat-type: log-growth with a sector drift and a volatility falling with size.
The exit hazard falls with age and size. Births are Poisson by region and sector in proportion to
incumbents; a newborn starts near a random incumbent of its region and sector (its founder's
home base) and picks its location in the decision stage. All draws come from the year's
generator, so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.firms import FirmTable
from relocsim.scenarios import Behaviour


@dataclass(frozen=True)
class SectorDemography:
    """Per-sector demography parameters as arrays (S,)."""

    drift: np.ndarray
    volatility: np.ndarray
    volatility_elasticity: np.ndarray
    exit_hazard: np.ndarray
    birth_rate: np.ndarray


@dataclass
class Newborns:
    """Firms about to be born: they still have to find a location.

    Attributes:
        sector: sector id.
        home_pool: pool of the founder's home base (distance is measured from its zone).
        employees: starting jobs.
    """

    sector: np.ndarray
    home_pool: np.ndarray
    employees: np.ndarray

    def __len__(self) -> int:
        return len(self.sector)


def grow(
    firms: FirmTable,
    rows: np.ndarray,
    params: SectorDemography,
    behaviour: Behaviour,
    rng: np.random.Generator,
) -> None:
    """Update employees with one year of log-growth and record the realised growth."""
    sector = firms.sector[rows]
    employees = firms.employees[rows].astype(np.float64)
    sigma = params.volatility[sector] * employees ** (-params.volatility_elasticity[sector])
    # the -sigma^2/2 makes ``drift`` the expected growth rate whatever the volatility
    log_growth = params.drift[sector] - 0.5 * sigma**2 + sigma * rng.standard_normal(len(rows))
    target = employees * np.exp(log_growth)
    new = np.floor(target + rng.random(len(rows)))
    new = np.clip(new, 1, behaviour.max_employees).astype(np.int64)
    firms.growth[rows] = np.log(new / employees)
    firms.employees[rows] = new


def exits(
    firms: FirmTable,
    rows: np.ndarray,
    year: int,
    params: SectorDemography,
    behaviour: Behaviour,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rows of firms that exit this year (hazard falling with age and size)."""
    sector = firms.sector[rows]
    age = np.maximum(year - firms.birth_year[rows], 0)
    hazard = (
        params.exit_hazard[sector]
        * np.exp(-behaviour.exit_age_decay * age)
        * firms.employees[rows].astype(np.float64) ** (-behaviour.exit_size_elasticity)
    )
    return rows[rng.random(len(rows)) < hazard]


def births(
    firms: FirmTable,
    rows: np.ndarray,
    pool_region: np.ndarray,
    n_regions: int,
    params: SectorDemography,
    rng: np.random.Generator,
) -> Newborns:
    """Draw this year's newborn firms by region and sector."""
    n_sectors = len(params.birth_rate)
    region = pool_region[firms.pool[rows]]
    cell = region * n_sectors + firms.sector[rows]
    incumbents = np.bincount(cell, minlength=n_regions * n_sectors)
    expected = incumbents * np.tile(params.birth_rate, n_regions)
    counts = rng.poisson(expected)
    order = np.argsort(cell, kind="stable")
    starts = np.concatenate([[0], np.cumsum(incumbents)])
    picks = []
    for c in np.flatnonzero(counts):
        members = order[starts[c] : starts[c + 1]]
        picks.append(members[rng.integers(0, len(members), counts[c])])
    parents = rows[np.concatenate(picks)] if picks else np.zeros(0, np.int64)
    employees = 1 + rng.geometric(0.5, size=len(parents)) - 1
    return Newborns(
        sector=firms.sector[parents].copy(),
        home_pool=firms.pool[parents].copy(),
        employees=employees.astype(np.int64),
    )


def closing_plants(firms: FirmTable, rows: np.ndarray, year: int) -> np.ndarray:
    """Rows of plants whose scheduled closure is this year."""
    return rows[firms.close_year[rows] == year]
