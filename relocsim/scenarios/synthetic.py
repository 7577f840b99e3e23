"""Synthetic scenarios for scale work: any number of firms, zones and regions.

``synthetic(n_firms, n_zones, n_regions, seed)`` lays zones at random in a 250 x 250 km square,
splits it into vertical strips of regions, gives each zone one land-use class (in turn) and
random prices and accessibility, and takes sectors, behaviour and land-market rules from the
``brussels-metro`` default so that behaviour is realistic. Reachable from the command line as
``--scenario synthetic:n_firms=1000000,n_zones=600,n_regions=3,seed=0``; the sizes are
checked against the bounds of :class:`SyntheticSpec` before anything is built.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from importlib import resources

import numpy as np

from relocsim.scenarios.files import coerce, load_folder, scenario_files
from relocsim.scenarios.schema import (
    LAND_USES,
    Interval,
    LandPool,
    PopulationCell,
    Scenario,
    ScenarioError,
    Zone,
    did_you_mean,
    hints,
    param,
)
from relocsim.scenarios.validation import check_fields, validate

SQUARE_KM = 250.0
MEAN_FIRM_SIZE = 12.0
VACANT_SHARE = 0.12
"""Vacant land as a share of the land firms occupy at the start."""


BASE = "brussels-metro"
"""Built-in scenario whose sectors, behaviour and land-market rules a synthetic one takes."""
PREFIX = "synthetic:"


@dataclass
class SyntheticSpec:
    """Sizes of a synthetic scenario, with their bounds.

    Attributes:
        n_firms: initial firms (about); at most 10 million, ten times the national scale the
            model is benchmarked at (``relocsim bench model``).
        n_zones: zones, one land pool each; at most 10,000 (the zone-to-zone travel times
            and distances are dense matrices, 0.8 GB each at that size).
        n_regions: regions (vertical strips of the square); at most 1,000.
        seed: seed of the layout, a non-negative integer below 1e18.
    """

    n_firms: int = param(100_000, Interval(1, 10_000_000))
    n_zones: int = param(60, Interval(1, 10_000))
    n_regions: int = param(3, Interval(1, 1_000))
    seed: int = param(0, Interval(0, 1e18))


def _base_scenario() -> Scenario:
    root = resources.files("relocsim") / "scenarios" / BASE
    with resources.as_file(root) as folder:
        return load_folder(*scenario_files(folder))


def synthetic(
    n_firms: int = 100_000, n_zones: int = 60, n_regions: int = 3, seed: int = 0
) -> Scenario:
    """Build a synthetic scenario.

    Args:
        n_firms: initial firms (about).
        n_zones: zones, one land pool each.
        n_regions: regions (vertical strips of the square).
        seed: seed of the layout.
    """
    spec = SyntheticSpec(n_firms, n_zones, n_regions, seed)
    label = f"synthetic scenario {dataclasses.asdict(spec)}"
    check_fields(spec, spec, label)
    if n_zones < n_regions:
        raise ScenarioError(
            f"{label}: n_zones={n_zones} < n_regions={n_regions}; expected a zone per region"
        )
    base = _base_scenario()
    rng = np.random.default_rng(seed)
    region_names = [f"R{r}" for r in range(n_regions)]
    template = next(iter(base.regions.values()))
    regions = {}
    for name in region_names:
        region = copy.deepcopy(template)
        region.name, region.language = name, "both"
        region.local_tax_eur_m2_year = float(rng.uniform(3, 7))
        regions[name] = region
    xy = rng.uniform(0, SQUARE_KM, size=(n_zones, 2))
    # every region gets at least one zone: the first n_regions zones are put in each strip
    xy[:n_regions, 0] = (np.arange(n_regions) + 0.5) * SQUARE_KM / n_regions
    strip = np.minimum((xy[:, 0] / SQUARE_KM * n_regions).astype(int), n_regions - 1)
    zones, land = {}, {}
    # the first zone of every region is a business park, which every sector may occupy
    uses = ["park" if i < n_regions else LAND_USES[i % len(LAND_USES)] for i in range(n_zones)]
    for z in range(n_zones):
        name = f"z{z:04d}"
        zones[name] = Zone(
            name=name,
            region=region_names[strip[z]],
            x_km=float(xy[z, 0]),
            y_km=float(xy[z, 1]),
            radius_km=float(rng.uniform(1, 5)),
            congestion=float(rng.uniform(1.0, 1.5)),
            price_eur_m2=float(rng.uniform(40, 400)),
            access_road=float(rng.uniform()),
            access_rail=float(rng.uniform()),
            access_water=float(rng.uniform() < 0.2),
            labour_access=float(rng.uniform()),
        )
        land[name] = {uses[z]: LandPool(zone=name, land_use=uses[z], firm_share=1.0)}
    sectors = base.sectors
    cells = []
    per_cell = n_firms / (n_regions * len(sectors))
    for name in region_names:
        for sector in sectors:
            firms = int(round(per_cell))
            cells.append(
                PopulationCell(
                    region=name,
                    sector=sector,
                    firms=firms,
                    jobs=int(firms * MEAN_FIRM_SIZE),
                    size_sigma=1.2,
                )
            )
    scenario = Scenario(
        name=f"synthetic-{n_firms}-{n_zones}-{n_regions}-{seed}",
        start_year=base.start_year,
        years=base.years,
        regions=regions,
        sectors=sectors,
        zones=zones,
        land=land,
        population=cells,
        policies=base.policies,
        behaviour=base.behaviour,
        land_market=base.land_market,
        travel_speed_kmh=base.travel_speed_kmh,
        detour_factor=base.detour_factor,
        source_dir="synthetic",
    )
    _give_vacant_land(scenario, uses)
    validate(scenario)
    return scenario


def _give_vacant_land(scenario: Scenario, uses: list[str]) -> None:
    """Vacant land in each pool, proportional to the land its region's firms may occupy there."""
    land_per_job = np.mean([s.land_per_job_m2 for s in scenario.sectors.values()])
    jobs = sum(cell.jobs for cell in scenario.population)
    total_vacant_ha = VACANT_SHARE * jobs * land_per_job / 1e4
    n_pools = len(uses)
    for pools in scenario.land.values():
        for pool in pools.values():
            pool.vacant_ha = total_vacant_ha / n_pools
            pool.new_ha_per_year = 0.01 * pool.vacant_ha


def synthetic_from_spec(text: str) -> Scenario:
    """Parse ``synthetic:n_firms=...,n_zones=...,n_regions=...,seed=...`` and build it."""
    if not text.startswith(PREFIX):
        raise ScenarioError(f"scenario '{text}': a synthetic scenario starts with '{PREFIX}'")
    allowed = list(hints(SyntheticSpec))
    values: dict[str, int] = {}
    for item in filter(None, (a.strip() for a in text.removeprefix(PREFIX).split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in allowed:
            raise ScenarioError(
                f"scenario '{text}': '{item}' is not KEY=VALUE with KEY one of "
                + ", ".join(allowed)
                + did_you_mean(key, allowed)
            )
        if key in values:
            raise ScenarioError(f"scenario '{text}': {key} is given twice")
        values[key] = coerce(value, int, f"scenario '{text}': {key}")
    return synthetic(**values)
