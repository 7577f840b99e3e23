"""Demography: firms grow or shrink, exit, are born; scheduled plants close; site investors arrive.

Growth is Gibrat-type: log-growth with a sector drift and a volatility falling with size, slowed
by last year's unrelieved space stress and raised, for small firms, by investment aid (spread
over the aid's commitment; Criscuolo, Martin, Overman & Van Reenen 2019). The exit hazard falls
with age and size, rises with the local tax on the premises and falls while a job-keeping
incentive is paid. What the policies add (aid growth, incentive survival) is measured against
each firm's own counterfactual: the same draws without the policy term.

Births are Poisson by zone and sector in proportion to incumbents, times the zone's attraction
(vacant land and its price); a newborn's home base (its founder's) is a pool of its zone, drawn
in proportion to the incumbents of its sector there, and it picks its location in the decision
stage.

Every draw is a firm's own (:class:`relocsim._rng.Streams`, stage ``DEMOGRAPHY``: slot 0 the exit
uniform, 1 the growth shock, 2 the rounding of jobs) or a birth cell's (stage ``BIRTHS``: the
cell's count by inversion of the Poisson distribution, then per newborn slot 0 its home pool and
slot 1 its size), so two runs with the same seed give each firm and each birth cell the same
draws whatever the policy did elsewhere. Newborn ids are derived from the same words
(:func:`newborn_ids`), so their later streams are paired too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import poisson

from relocsim._rng import Stage, Streams, normal_of, uniform_of
from relocsim.firms import FirmTable
from relocsim.scenarios import Behaviour, Scenario, ScenarioError

SLOT_EXIT, SLOT_SHOCK, SLOT_ROUNDING = 0, 1, 2
"""Slots of a firm's demography stream."""
SLOT_HOME, SLOT_SIZE = 0, 1
"""Slots of a newborn's birth stream."""
YEAR_SPAN = 1 << 40
"""Ids per simulated year: newborn ids of year t start at ``(t - start + 1) * YEAR_SPAN``."""
INDEX_SPAN = 1 << 20
"""Ids per birth cell and year (at most this many newborns of one zone and sector a year)."""
NEWBORN_SIZE_P = 0.5
"""Success probability of the geometric distribution of a newborn's jobs (mean 2)."""


@dataclass(frozen=True)
class SectorDemography:
    """Per-sector demography parameters as arrays (S,)."""

    drift: np.ndarray
    volatility: np.ndarray
    volatility_elasticity: np.ndarray
    exit_hazard: np.ndarray
    birth_rate: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> SectorDemography:
        """The scenario's sectors (sectors.csv) in their order."""
        sectors = list(scenario.sectors.values())
        return cls(
            drift=np.array([s.growth_drift for s in sectors]),
            volatility=np.array([s.growth_volatility for s in sectors]),
            volatility_elasticity=np.array([s.volatility_size_elasticity for s in sectors]),
            exit_hazard=np.array([s.exit_hazard for s in sectors]),
            birth_rate=np.array([s.birth_rate for s in sectors]),
        )


@dataclass(frozen=True)
class PolicyTerms:
    """Per-firm policy terms of demography (arrays over the rows that take them).

    Attributes:
        aid_boost: extra log-growth this year from investment aid.
        incentive_keur: job-keeping incentive paid to the firm (kEUR per job-year; 0: none).
        tax_keur: local tax on its premises (kEUR per job-year).
    """

    aid_boost: np.ndarray
    incentive_keur: np.ndarray
    tax_keur: np.ndarray


def aid_boost(
    aid_intensity: np.ndarray,
    commitment_years: np.ndarray,
    employees: np.ndarray,
    aided: np.ndarray,
    behaviour: Behaviour,
) -> np.ndarray:
    """Extra yearly log-growth of aided firms: the semi-elasticity times the aid's intensity,
    spread evenly over its commitment years; none at or above the size where the evaluated
    effect vanishes."""
    small = employees < behaviour.aid_growth_max_employees
    per_year = aid_intensity / np.maximum(commitment_years, 1)
    return np.where(aided & small, behaviour.aid_growth_semi_elasticity * per_year, 0.0)


@dataclass
class Newborns:
    """Firms about to be born: they still have to find a location.

    Attributes:
        sector: sector id.
        home_pool: pool of the founder's home base (distance is measured from its zone).
        employees: starting jobs.
        cell, index: birth cell (zone x sector) and rank in it (they make the newborn's id).
    """

    sector: np.ndarray
    home_pool: np.ndarray
    employees: np.ndarray
    cell: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.sector)


def gibrat_log_growth(
    params: SectorDemography,
    sector: np.ndarray,
    employees: np.ndarray,
    drift_shift: np.ndarray | float,
    shock: np.ndarray,
) -> np.ndarray:
    """A year's log-growth before space stress and policy: the drift plus a shock whose
    volatility falls with size (``shock`` standard normal)."""
    sigma = params.volatility[sector] * employees ** (-params.volatility_elasticity[sector])
    # the -sigma^2/2 makes ``drift`` the expected growth rate whatever the volatility
    return params.drift[sector] + drift_shift - 0.5 * sigma**2 + sigma * shock


def resized(
    employees: np.ndarray, log_growth: np.ndarray, rounding: np.ndarray, max_employees: int
) -> np.ndarray:
    """Whole jobs after ``log_growth``, rounded up with probability the fraction (``rounding``
    uniform), between 1 and ``max_employees``."""
    new = np.floor(employees * np.exp(log_growth) + rounding)
    return np.clip(new, 1, max_employees).astype(np.int64)


def exit_hazard(
    params: SectorDemography,
    behaviour: Behaviour,
    sector: np.ndarray,
    employees: np.ndarray,
    age: np.ndarray | int,
    tax_keur: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Yearly exit probability: the sector's hazard, falling with age and size, rising with the
    local tax on the premises (kEUR per job-year)."""
    return (
        params.exit_hazard[sector]
        * np.exp(-behaviour.exit_age_decay * age + behaviour.exit_tax_semi_elasticity * tax_keur)
        * employees.astype(np.float64) ** (-behaviour.exit_size_elasticity)
    )


def grow(
    firms: FirmTable,
    rows: np.ndarray,
    params: SectorDemography,
    behaviour: Behaviour,
    streams: Streams,
    boost: np.ndarray | float = 0.0,
    drift_shift: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Update employees with one year of log-growth and record the realised growth.

    ``boost`` is the policy's extra log-growth of each firm (see :func:`aid_boost`);
    ``drift_shift`` its region's drift on top of its sector's (:mod:`relocsim.regional_trends`).

    Returns:
        Jobs each firm gained from ``boost``: its new size minus the size the same draws give
        without it.
    """
    sector = firms.sector[rows]
    employees = firms.employees[rows].astype(np.float64)
    keys = streams.keys(Stage.DEMOGRAPHY, firms.firm_id[rows])
    stress = behaviour.growth_stress_penalty * firms.stress[rows]
    shock = normal_of(keys, SLOT_SHOCK)
    log_growth = gibrat_log_growth(params, sector, employees, drift_shift, shock) - stress
    rounding = uniform_of(keys, SLOT_ROUNDING)
    cap = behaviour.max_employees
    new = resized(employees, log_growth + boost, rounding, cap)
    created = (
        new - resized(employees, log_growth, rounding, cap)
        if np.any(boost)
        else np.zeros(len(rows), np.int64)
    )
    firms.growth[rows] = np.log(new / employees)
    firms.employees[rows] = new
    return created


def exits(
    firms: FirmTable,
    rows: np.ndarray,
    year: int,
    params: SectorDemography,
    behaviour: Behaviour,
    streams: Streams,
    incentive_keur: np.ndarray | float = 0.0,
    tax_keur: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Firms that exit this year: hazard falling with age and size, rising with the local tax
    on their premises and falling while they are paid a job-keeping incentive (both in kEUR per
    job-year).

    Returns:
        Rows that exit, and rows that survive only thanks to their incentive (the same draw
        would have taken them without it).
    """
    age = np.maximum(year - firms.birth_year[rows], 0)
    hazard = exit_hazard(
        params, behaviour, firms.sector[rows], firms.employees[rows], age, tax_keur
    )
    with_incentive = hazard * np.exp(-behaviour.exit_incentive_semi_elasticity * incentive_keur)
    draw = streams.uniform(Stage.DEMOGRAPHY, firms.firm_id[rows], SLOT_EXIT)
    return rows[draw < with_incentive], rows[(draw >= with_incentive) & (draw < hazard)]


def births(
    firms: FirmTable,
    rows: np.ndarray,
    pool_zone: np.ndarray,
    n_zones: int,
    params: SectorDemography,
    streams: Streams,
    zone_attraction: np.ndarray | float = 1.0,
    incumbent_weight: np.ndarray | None = None,
) -> Newborns:
    """Draw this year's newborn firms by zone and sector, in proportion to the incumbents ``rows``
    times the zone's attraction for new firms (see
    :func:`relocsim.land_market.birth_attraction`).

    The count of a cell is the Poisson quantile of the cell's own uniform, so a small change in
    its incumbents changes its count little; its newborns are ranked 0, 1, ... and each draws its
    home pool and size from its own stream. ``incumbent_weight`` (per row of ``rows``; default 1)
    is how many incumbents each firm counts for (:func:`relocsim.entry.incumbent_weight`).
    """
    n_sectors, n_pools = len(params.birth_rate), len(pool_zone)
    sector, pool = firms.sector[rows], firms.pool[rows]
    per_pool = np.bincount(
        sector.astype(np.int64) * n_pools + pool, minlength=n_sectors * n_pools
    ).reshape(n_sectors, n_pools)
    by_zone = np.zeros((n_sectors, n_zones), np.int64)
    np.add.at(by_zone, (slice(None), pool_zone), per_pool)
    cells = np.flatnonzero(by_zone.T.ravel() > 0)  # cell = zone * n_sectors + sector
    attraction = np.broadcast_to(np.asarray(zone_attraction, np.float64), n_zones)
    rate = params.birth_rate[cells % n_sectors] * attraction[cells // n_sectors]
    incumbents = by_zone
    if incumbent_weight is not None:
        weighted = np.bincount(
            sector.astype(np.int64) * n_pools + pool,
            weights=incumbent_weight,
            minlength=n_sectors * n_pools,
        ).reshape(n_sectors, n_pools)
        incumbents = np.zeros((n_sectors, n_zones))
        np.add.at(incumbents, (slice(None), pool_zone), weighted)
    expected = incumbents.T.ravel()[cells] * rate
    u = uniform_of(streams.birth_keys(cells), 0)
    counts = np.where(expected > 0, poisson.ppf(u, np.maximum(expected, 1e-300)), 0.0)
    counts = np.maximum(counts, 0).astype(np.int64)
    if counts.max(initial=0) >= INDEX_SPAN:
        worst = int(np.argmax(counts))
        raise ScenarioError(
            f"{counts[worst]:,} births drawn in one zone and sector in a year (rate "
            f"{rate[worst]:.3g} per incumbent), more than the {INDEX_SPAN:,} the model can tell "
            "apart: the sector's birth_rate times the zone's attraction "
            "(behaviour.birth_vacancy_elasticity, behaviour.birth_price_elasticity) is too high"
        )
    cell = np.repeat(cells, counts)
    index = np.arange(len(cell)) - np.repeat(np.cumsum(counts) - counts, counts)
    keys = streams.birth_keys(cell, index)
    zone, born_sector = cell // n_sectors, cell % n_sectors
    home = _home_pools(per_pool, pool_zone, zone, born_sector, uniform_of(keys, SLOT_HOME))
    # geometric jobs (1, 2, ... with probability p (1-p)^(k-1)) by inversion
    size = 1 + np.floor(np.log1p(-uniform_of(keys, SLOT_SIZE)) / np.log1p(-NEWBORN_SIZE_P))
    return Newborns(
        sector=born_sector.astype(np.int32),
        home_pool=home.astype(np.int32),
        employees=size.astype(np.int64),
        cell=cell,
        index=index,
    )


def _home_pools(
    per_pool: np.ndarray,
    pool_zone: np.ndarray,
    zone: np.ndarray,
    sector: np.ndarray,
    u: np.ndarray,
) -> np.ndarray:
    """Pool of each newborn's home base: a pool of its zone, in proportion to the incumbents of
    its sector there (``per_pool``: incumbents by sector and pool)."""
    order = np.argsort(pool_zone, kind="stable")  # pools grouped by zone
    sorted_zone = pool_zone[order]
    n_pools = len(pool_zone)
    cumulative = np.cumsum(per_pool[:, order].ravel())  # sector-major, then pools by zone
    first = np.searchsorted(sorted_zone, zone, side="left") + sector * n_pools
    last = np.searchsorted(sorted_zone, zone, side="right") + sector * n_pools
    before = np.where(first > 0, cumulative[first - 1], 0)
    total = cumulative[last - 1] - before
    target = before + np.floor(u * total).astype(np.int64)
    position = np.searchsorted(cumulative, target, side="right") - sector * n_pools
    return order[position]


def newborn_ids(year_index: int, cell: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Ids of newborns from their birth year (1 for the first simulated year), cell and rank:
    unique, and the same in two runs whenever the same cell gives birth to the same rank."""
    return (year_index * YEAR_SPAN + cell * INDEX_SPAN + index).astype(np.int64)


def closing_plants(firms: FirmTable, rows: np.ndarray, year: int) -> np.ndarray:
    """Rows of plants whose scheduled closure is this year."""
    return rows[firms.close_year[rows] == year]
