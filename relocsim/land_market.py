"""Land market: supply, occupation and prices of every land pool, year by year.

Owns :class:`LandState` (per pool: developable and occupied area, price) and the yearly rules:
what is offered to firms (open sites, minus land owners hold back, which a speculation tax
releases), what a firm weighs as the cost of a m2 (price net of subsidy plus capitalised local
tax, scaled by densification), how land released by firms is partly lost to housing unless the
region pre-empts it, how a large site converted to housing leaves the productive stock, how
prices respond to scarcity (occupancy above its reference, and firms turned away for lack of
land), and how land use per job responds to prices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.geography import Geography
from relocsim.scenarios import LAND_USES, LandMarket, Scenario

HA = 10_000.0
"""m2 per hectare."""

NEVER = 1_000_000
"""Opening year of land that never opens to firms (a site converted to housing)."""

_CONVERTIBLE = np.array([LAND_USES.index("mixed"), LAND_USES.index("ogso")])


@dataclass
class LandState:
    """Land of every pool (arrays of length M, areas in m2, prices in EUR/m2).

    Attributes:
        developable_m2: land usable by firms (occupied + vacant).
        occupied_m2: land held by firms; always the sum of their ``land_m2``.
        price: land price.
        open_year: year the pool's vacant land opens to firms.
        subsidy: share of the price paid by the region.
        densification: land-per-job multiplier of firms in the pool: the zone's planned
            densification times the response of land use to the price (:func:`update_prices`).
        planned_densification: the zone's densification (a policy lever).
        preempted: whether the region pre-empts land released here.
        tax_eur_m2_year: local taxes on premises.
        converted_m2: land lost to housing/offices so far.
        conversion_due_m2: premises owed to conversion: the part of a region's yearly flow
            that found no vacant land, converted as firms release premises here
            (:mod:`relocsim.conversion`).
        housing_year: year a large site is converted to housing (0: never).
        land_use: land-use class index of each pool.
        new_m2_per_year: land newly zoned for firms each year.
        reference_occupancy: occupancy at which the pool's price is stable: its occupancy at
            the start, when its price was observed (the target occupancy for large sites).
    """

    developable_m2: np.ndarray
    occupied_m2: np.ndarray
    price: np.ndarray
    open_year: np.ndarray
    subsidy: np.ndarray
    densification: np.ndarray
    planned_densification: np.ndarray
    preempted: np.ndarray
    tax_eur_m2_year: np.ndarray
    converted_m2: np.ndarray
    conversion_due_m2: np.ndarray
    housing_year: np.ndarray
    land_use: np.ndarray
    new_m2_per_year: np.ndarray
    reference_occupancy: np.ndarray
    reference_price: np.ndarray

    @property
    def vacant_m2(self) -> np.ndarray:
        return np.maximum(self.developable_m2 - self.occupied_m2, 0.0)


def initial_land(
    scenario: Scenario, geo: Geography, occupied_m2: np.ndarray, site_pools: np.ndarray
) -> LandState:
    """Land at the start: pools hold the firms placed on them plus their sourced vacant area.

    ``site_pools`` marks pools of large sites (plants, later openings): their price is stable at
    the target occupancy, other pools' at their starting occupancy.
    """
    zones = [scenario.zones[name] for name in geo.zone_names]
    pools = [
        scenario.land[geo.zone_names[z]][LAND_USES[u]]
        for z, u in zip(geo.pool_zone, geo.pool_use, strict=True)
    ]
    zone_of = [zones[z] for z in geo.pool_zone]
    mixed = geo.pool_use == LAND_USES.index("mixed")
    price = np.array([z.price_eur_m2 for z in zone_of])
    price = np.where(mixed, price * scenario.land_market.mixed_price_premium, price)
    tax = np.array([scenario.regions[z.region].local_tax_eur_m2_year for z in zone_of])
    housing = np.array(
        [
            max(z.open_year, scenario.start_year) if z.site_option == "housing" else 0
            for z in zone_of
        ]
    )
    open_year = np.array([z.open_year for z in zone_of])
    developable = occupied_m2 + np.array([p.vacant_ha for p in pools]) * HA
    occupancy = np.divide(occupied_m2, developable, out=np.zeros(len(pools)), where=developable > 0)
    sites = site_pools | (open_year > scenario.start_year) | (developable <= 0)
    reference = np.where(sites, scenario.land_market.target_occupancy, occupancy)
    return LandState(
        developable_m2=developable,
        occupied_m2=occupied_m2.astype(np.float64).copy(),
        price=price.astype(np.float64),
        open_year=np.where(housing > 0, NEVER, open_year).astype(np.int32),
        subsidy=np.array([z.land_subsidy for z in zone_of]),
        densification=np.array([z.densification for z in zone_of]),
        planned_densification=np.array([z.densification for z in zone_of]),
        preempted=np.array([z.preemption for z in zone_of], dtype=bool),
        tax_eur_m2_year=tax.astype(np.float64),
        converted_m2=np.zeros(len(pools)),
        conversion_due_m2=np.zeros(len(pools)),
        housing_year=housing.astype(np.int32),
        land_use=geo.pool_use,
        new_m2_per_year=np.array([p.new_ha_per_year for p in pools]) * HA,
        reference_occupancy=reference,
        reference_price=price.astype(np.float64).copy(),
    )


def retained_share(market: LandMarket, speculation_tax: float) -> float:
    """Share of vacant land owners hold back; a speculation tax makes them release it."""
    return market.retained_share * max(0.0, 1.0 - market.speculation_response * speculation_tax)


def offered_m2(
    land: LandState, year: int, market: LandMarket, speculation_tax: float
) -> np.ndarray:
    """Vacant land on offer this year in each pool (m2): open pools, minus what owners retain."""
    offered = land.vacant_m2 * (1.0 - retained_share(market, speculation_tax))
    return np.where(land.open_year <= year, offered, 0.0)


def cost_per_m2(land: LandState, market: LandMarket) -> np.ndarray:
    """What a locating firm weighs per m2 of its standard need (EUR/m2).

    The price net of the regional subsidy plus the local taxes over the capitalisation horizon,
    times the pool's densification factor (a denser zone needs fewer m2 per job).
    """
    taxes = land.tax_eur_m2_year * market.tax_capitalisation_years
    return (land.price * (1.0 - land.subsidy) + taxes) * land.densification


def premises_value(
    land: LandState, market: LandMarket, pools: np.ndarray, m2: np.ndarray
) -> np.ndarray:
    """What firms' current land is worth to them (EUR): its market price, plus the local taxes
    they would keep paying over the capitalisation horizon if they stayed, plus the developers'
    premium on their share of the pool's premises owed to conversion (:func:`owed_share`)."""
    taxes = land.tax_eur_m2_year[pools] * market.tax_capitalisation_years
    buy_out = market.conversion_premium_eur_m2 * owed_share(land)[pools]
    return m2 * (land.price[pools] + taxes + buy_out)


def owed_share(land: LandState) -> np.ndarray:
    """Share of each pool's occupied land owed to conversion (0 where pre-empted: pre-emption
    stops conversion). The flow is owed by premises in proportion to their land, so every firm
    of a pool owes this share of its premises; conversion it could not collect accumulates, and
    the developers' offer for the premises rises with it."""
    due = np.where(land.preempted, 0.0, land.conversion_due_m2)
    share = np.divide(due, land.occupied_m2, out=np.zeros(len(due)), where=land.occupied_m2 > 0)
    return np.minimum(share, 1.0)


def occupy(land: LandState, pools: np.ndarray, m2: np.ndarray) -> None:
    """Firms take ``m2`` in ``pools`` (repeated pools add up)."""
    np.add.at(land.occupied_m2, pools, m2)


def release(land: LandState, pools: np.ndarray, m2: np.ndarray, conversion_rate: float) -> None:
    """Firms leave ``m2`` in ``pools``; in mixed and OGSO pools not pre-empted a share of it is
    lost to housing and offices, as Brussels lost productive premises mostly in mixed zones, and
    premises owed to the yearly conversion flow are converted before anyone else takes them."""
    np.subtract.at(land.occupied_m2, pools, m2)
    convertible = np.isin(land.land_use[pools], _CONVERTIBLE) & ~land.preempted[pools]
    lost = np.where(convertible, conversion_rate * m2, 0.0)
    released = np.bincount(pools, weights=m2 - lost, minlength=len(land.occupied_m2))
    owed = np.minimum(released, np.where(land.preempted, 0.0, land.conversion_due_m2))
    land.conversion_due_m2 -= owed
    lost_by_pool = np.bincount(pools, weights=lost, minlength=len(owed)) + owed
    land.developable_m2 -= lost_by_pool
    land.converted_m2 += lost_by_pool


def convert_sites_to_housing(land: LandState, year: int) -> None:
    """A large site whose option is ``housing`` leaves the productive stock in its opening year."""
    due = (land.housing_year == year) & (land.housing_year > 0)
    lost = np.where(due, land.vacant_m2, 0.0)
    land.developable_m2 -= lost
    land.converted_m2 += lost


def zone_new_land(land: LandState, market: LandMarket, year: int) -> None:
    """Open pools gain the land newly zoned and equipped for firms this year.

    The planned flow is a ceiling: where more land stands vacant than at the reference
    occupancy, developers equip less, ``(reference vacancy / vacancy) **
    supply_vacancy_elasticity`` of it: parks are equipped as the last ones fill (InBW sold 19
    ha in 2021 against 8 a year, its parks 76% occupied). Without it new land outruns what
    firms take where land is plentiful, and births follow the vacant land it leaves.
    """
    vacancy = 1.0 - land.occupied_m2 / np.maximum(land.developable_m2, HA)
    reference = 1.0 - land.reference_occupancy
    ratio = np.divide(reference, vacancy, out=np.ones_like(vacancy), where=vacancy > reference)
    share = ratio**market.supply_vacancy_elasticity
    land.developable_m2 += np.where(land.open_year <= year, share * land.new_m2_per_year, 0.0)


def update_prices(
    land: LandState, market: LandMarket, year: int, shortfall: np.ndarray | None = None
) -> None:
    """Prices rise where occupancy is above its reference or firms found no land, fall where
    occupancy is below it, and revert towards their starting level (partial adjustment; the
    yearly change is capped); land use per job follows the new prices.

    ``shortfall`` (per pool): the unmet land demand of the pool's region this year relative to
    the land it offered. Occupancy alone misses rationing: when owners hold back part of the
    vacant land and the rest is taken every year, occupancy stays at its reference while firms
    are turned away.
    """
    open_pool = land.open_year <= year
    occupancy = np.divide(
        land.occupied_m2,
        land.developable_m2,
        out=np.ones_like(land.occupied_m2),
        where=land.developable_m2 > 0,
    )
    pressure = 0.0 if shortfall is None else market.shortfall_price_elasticity * shortfall
    change = np.clip(
        market.price_elasticity * (occupancy - land.reference_occupancy)
        + pressure
        - market.price_reversion * np.log(land.price / land.reference_price),
        -market.max_price_change,
        market.max_price_change,
    )
    land.price = np.where(open_pool, land.price * np.exp(change), land.price)
    land.densification = land.planned_densification * land_use_response(land, market)


def shortfall(
    pool_region: np.ndarray,
    offered: np.ndarray,
    unmet_pools: np.ndarray,
    unmet_m2: np.ndarray,
) -> np.ndarray:
    """Each pool's region's unmet land demand relative to the land it offered this year.

    ``unmet_pools`` and ``unmet_m2``: the pool (home or present) and standard need of each firm
    that found no land. A region that offered less than a hectare counts one.
    """
    n_regions = int(pool_region.max()) + 1
    unmet = np.bincount(pool_region[unmet_pools], weights=unmet_m2, minlength=n_regions)
    supply = np.bincount(pool_region, weights=offered, minlength=n_regions)
    return (unmet / np.maximum(supply, HA))[pool_region]


def land_use_response(land: LandState, market: LandMarket) -> np.ndarray:
    """Land per job relative to the standard at each pool's price: ``(price / starting price)
    ** -need_price_elasticity`` (firms substitute building and capital for land where it is
    dear), kept in [0.5, 2]."""
    ratio = land.price / land.reference_price
    return np.clip(ratio ** (-market.need_price_elasticity), 0.5, 2.0)


def birth_attraction(
    land: LandState,
    pool_zone: np.ndarray,
    n_zones: int,
    year: int,
    vacancy_elasticity: float,
    price_elasticity: float,
) -> np.ndarray:
    """How much more (or less) a zone breeds new firms than at its reference land conditions (Z,).

    ``(vacant share / reference vacant share) ** vacancy_elasticity x (price / reference price)
    ** (-price_elasticity)`` over the zone's open pools, areas weighting shares and prices; both
    ratios are kept in [0.1, 10] so that a full zone still sees some births (they locate
    elsewhere).
    Zones without open land keep 1.
    """
    open_pool = (land.open_year <= year) & (land.developable_m2 > 0)
    weight = np.where(open_pool, land.developable_m2, 0.0)

    def by_zone(values: np.ndarray) -> np.ndarray:
        return np.bincount(pool_zone, weights=values * weight, minlength=n_zones)

    area = by_zone(np.ones_like(weight))
    has_land = area > 0
    safe = np.where(has_land, area, 1.0)
    vacant = by_zone(land.vacant_m2 / np.maximum(land.developable_m2, 1.0)) / safe
    reference_vacant = by_zone(1.0 - land.reference_occupancy) / safe
    price = by_zone(land.price / land.reference_price) / safe
    vacancy_ratio = np.clip(vacant / np.maximum(reference_vacant, 1e-6), 0.1, 10.0)
    price_ratio = np.clip(price, 0.1, 10.0)
    attraction = vacancy_ratio**vacancy_elasticity * price_ratio ** (-price_elasticity)
    return np.where(has_land, attraction, 1.0)
