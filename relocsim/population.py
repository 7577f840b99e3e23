"""Initial firm population: firms of every region x sector cell placed on land pools, plus plants.

Sizes are log-normal with the cell's mean size and dispersion; each firm lands on a pool of its
region that its sector may occupy, with the pools' ``firm_share`` weights. Ages are those a
firm of its size has under the model's own growth and exit law
(:mod:`relocsim.stationary_ages`), so large firms start old.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.demography import SectorDemography
from relocsim.geography import Geography
from relocsim.land_market import HA, NEVER
from relocsim.scenarios import LAND_USES, Scenario, ScenarioError
from relocsim.stationary_ages import draw_ages


@dataclass
class InitialFirms:
    """Columns of the initial firms (one entry per firm)."""

    sector: np.ndarray
    pool: np.ndarray
    employees: np.ndarray
    land_m2: np.ndarray
    birth_year: np.ndarray
    plant_close_year: np.ndarray


def lognormal_sizes(rng: np.random.Generator, n: int, mean: float, sigma: float) -> np.ndarray:
    """Integer firm sizes >= 1 whose mean is close to ``mean``."""
    if n == 0:
        return np.zeros(0, np.int64)
    mu = np.log(max(mean, 1.0)) - 0.5 * sigma**2
    sizes = np.maximum(1, np.rint(rng.lognormal(mu, sigma, n))).astype(np.int64)
    return sizes


def pool_weights(scenario: Scenario, geo: Geography, region: int, sector: int) -> np.ndarray:
    """Placement weights of a region's pools for a sector (normalised)."""
    shares = np.array(
        [
            scenario.land[geo.zone_names[z]][LAND_USES[u]].firm_share
            for z, u in zip(geo.pool_zone, geo.pool_use, strict=True)
        ]
    )
    weights = np.where((geo.pool_region == region) & geo.allowed[sector], shares, 0.0)
    if weights.sum() <= 0:
        raise ScenarioError(
            f"{scenario.source_dir}/land.csv: no pool of region '{geo.region_names[region]}' with "
            f"firm_share > 0 admits sector '{geo.sector_names[sector]}'; expected at least one"
        )
    return weights / weights.sum()


def initial_firms(scenario: Scenario, geo: Geography, rng: np.random.Generator) -> InitialFirms:
    """Draw the initial firm population and place it on land pools."""
    sectors, pools, employees, shifts = [], [], [], []
    for cell in scenario.population:
        if cell.firms == 0:
            continue
        r, s = geo.region_id(cell.region), geo.sector_names.index(cell.sector)
        sizes = lognormal_sizes(rng, cell.firms, cell.jobs / cell.firms, cell.size_sigma)
        weights = pool_weights(scenario, geo, r, s)
        sectors.append(np.full(cell.firms, s, np.int32))
        shifts.append(np.full(cell.firms, cell.growth_drift_shift))
        pools.append(rng.choice(len(weights), size=cell.firms, p=weights).astype(np.int32))
        employees.append(sizes)
    sector = np.concatenate(sectors) if sectors else np.zeros(0, np.int32)
    pool = np.concatenate(pools) if pools else np.zeros(0, np.int32)
    emp = np.concatenate(employees) if employees else np.zeros(0, np.int64)
    land_per_job = np.array([s.land_per_job_m2 for s in scenario.sectors.values()])
    densification = np.array(
        [scenario.zones[geo.zone_names[z]].densification for z in geo.pool_zone]
    )
    land = emp * land_per_job[sector] * densification[pool]
    shift = np.concatenate(shifts) if shifts else np.zeros(0)
    age = draw_ages(
        rng, emp, sector, shift, SectorDemography.from_scenario(scenario), scenario.behaviour
    )
    birth_year = (scenario.start_year - age).astype(np.int32)
    close = np.zeros(len(emp), np.int32)

    plant_pools = [
        geo.pool_names.index(f"{p.zone}.{p.land_use}")
        if f"{p.zone}.{p.land_use}" in geo.pool_names
        else -1
        for p in scenario.plants
    ]
    for plant, plant_pool in zip(scenario.plants, plant_pools, strict=True):
        if plant_pool < 0:
            raise ScenarioError(
                f"{scenario.source_dir}: field 'plants.{plant.name}.land_use': value "
                f"{plant.land_use!r} has no pool in zone '{plant.zone}' (land.csv); expected one"
            )
    if scenario.plants:
        sector = np.concatenate(
            [sector, [geo.sector_names.index(p.sector) for p in scenario.plants]]
        ).astype(np.int32)
        pool = np.concatenate([pool, plant_pools]).astype(np.int32)
        emp = np.concatenate([emp, [p.jobs for p in scenario.plants]]).astype(np.int64)
        land = np.concatenate([land, [p.land_ha * HA for p in scenario.plants]])
        birth_year = np.concatenate(
            [birth_year, np.full(len(scenario.plants), scenario.start_year - 30)]
        ).astype(np.int32)
        # a plant that never closes stays an anchor: it takes no yearly decision
        close_years = [p.close_year or NEVER for p in scenario.plants]
        close = np.concatenate([close, close_years]).astype(np.int32)
    return InitialFirms(sector, pool, emp, land, birth_year, close)
