"""Geography: the static arrays of regions, zones, land pools and travel times a run works on.

Built once from a :class:`~relocsim.scenarios.Scenario`. A *land pool* is one land-use class in one
zone; pools are the alternatives of the location choice. Everything here is fixed for a run;
what changes (occupied land, prices, openings) lives in :mod:`relocsim.land_market`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.scenarios import LAND_USES, Scenario


@dataclass(frozen=True)
class Geography:
    """Regions, zones and land pools as arrays.

    Attributes:
        region_names: region names, index = region id.
        zone_names: zone names, index = zone id.
        sector_names: sector names, index = sector id.
        zone_region: region id of each zone (Z,).
        zone_xy: zone coordinates in km (Z, 2).
        travel_time: door-to-door road travel time between zones in minutes (Z, Z).
        distance_km: straight-line distance between zones in km, zone radius on the diagonal (Z, Z).
        pool_zone: zone id of each land pool (M,).
        pool_region: region id of each land pool (M,).
        pool_use: land-use class index (into LAND_USES) of each pool (M,).
        pool_names: ``zone.class`` label of each pool.
        allowed: whether sector s may occupy pool a (S, M).
        reserved_out: whether a reservation of pool a's zone bars sector s from locating there
            anew (S, M; the zone's ``reserved_for``): moves and births only, firms already there
            stay.
    """

    region_names: tuple[str, ...]
    zone_names: tuple[str, ...]
    sector_names: tuple[str, ...]
    zone_region: np.ndarray
    zone_xy: np.ndarray
    travel_time: np.ndarray
    distance_km: np.ndarray
    pool_zone: np.ndarray
    pool_region: np.ndarray
    pool_use: np.ndarray
    pool_names: tuple[str, ...]
    allowed: np.ndarray
    reserved_out: np.ndarray

    @property
    def n_pools(self) -> int:
        return len(self.pool_zone)

    def region_id(self, name: str) -> int:
        return self.region_names.index(name)

    def zone_id(self, name: str) -> int:
        return self.zone_names.index(name)


def travel_times(scenario: Scenario, xy: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, ...]:
    """Road travel times (minutes) and straight-line distances (km) between zone centroids.

    A trip runs at free-flow speed, plus the congestion delay of getting out of the origin zone
    and into the destination zone: a zone of congestion c adds (c - 1) times the free-flow time
    across its radius at each end (TomTom's Brussels figures put the city at about 1.6). A move
    inside a zone covers its typical radius in its own traffic.
    """
    diff = xy[:, None, :] - xy[None, :, :]
    distance = np.sqrt((diff**2).sum(axis=2))
    np.fill_diagonal(distance, radius)
    congestion = np.array([z.congestion for z in scenario.zones.values()])
    minutes_per_km = scenario.detour_factor / scenario.travel_speed_kmh * 60.0
    free_flow = distance * minutes_per_km
    delay = (congestion - 1.0) * radius * minutes_per_km
    minutes = free_flow + delay[:, None] + delay[None, :]
    np.fill_diagonal(minutes, np.diag(free_flow) * congestion)
    return minutes, distance


def choice_travel_time(geo: Geography, own_region_scale: float) -> np.ndarray:
    """Travel times as the location choice weighs them (Z, Z): a move inside its region counts
    ``own_region_scale`` times its minutes, so the distance coefficient of the own-region nest
    is ``own_region_scale * b_dist`` (``behaviour.own_region_distance_scale``)."""
    same_region = geo.zone_region[:, None] == geo.zone_region[None, :]
    return np.where(same_region, own_region_scale * geo.travel_time, geo.travel_time)


def build_geography(scenario: Scenario) -> Geography:
    """Turn the scenario's regions, zones and land pools into arrays."""
    region_names = tuple(scenario.regions)
    zone_names = tuple(scenario.zones)
    sector_names = tuple(scenario.sectors)
    zones = list(scenario.zones.values())
    zone_region = np.array([region_names.index(z.region) for z in zones], dtype=np.int32)
    xy = np.array([[z.x_km, z.y_km] for z in zones], dtype=np.float64)
    radius = np.array([z.radius_km for z in zones], dtype=np.float64)
    minutes, distance = travel_times(scenario, xy, radius)
    pool_zone, pool_use, pool_names = [], [], []
    for zone_name, pools in scenario.land.items():
        for use in pools:
            pool_zone.append(zone_names.index(zone_name))
            pool_use.append(LAND_USES.index(use))
            pool_names.append(f"{zone_name}.{use}")
    pool_zone_arr = np.array(pool_zone, dtype=np.int32)
    pool_use_arr = np.array(pool_use, dtype=np.int32)
    allowed = np.zeros((len(sector_names), len(pool_zone)), dtype=bool)
    for s, sector in enumerate(scenario.sectors.values()):
        uses = [LAND_USES.index(u) for u in sector.land_uses]
        allowed[s] = np.isin(pool_use_arr, uses)
    return Geography(
        region_names=region_names,
        zone_names=zone_names,
        sector_names=sector_names,
        zone_region=zone_region,
        zone_xy=xy,
        travel_time=minutes,
        distance_km=distance,
        pool_zone=pool_zone_arr,
        pool_region=zone_region[pool_zone_arr],
        pool_use=pool_use_arr,
        pool_names=tuple(pool_names),
        allowed=allowed,
        reserved_out=reserved_out(scenario, sector_names, pool_zone_arr),
    )


def reserved_out(
    scenario: Scenario, sector_names: tuple[str, ...], pool_zone: np.ndarray
) -> np.ndarray:
    """Sectors barred from each pool by its zone's reservation (S, M): a zone whose
    ``reserved_for`` names sectors admits only those to new locations."""
    out = np.zeros((len(sector_names), len(pool_zone)), dtype=bool)
    for z, zone in enumerate(scenario.zones.values()):
        if zone.reserved_for:
            barred = [s for s, name in enumerate(sector_names) if name not in zone.reserved_for]
            out[np.ix_(barred, np.flatnonzero(pool_zone == z))] = True
    return out
