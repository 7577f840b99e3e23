"""The yearly decision: stay (or grow in place), relocate in the region, or delocalise, and where.

One nested logit for every incumbent firm and every newborn, computed by the compiled kernel
(:func:`relocsim.choice.choose_locations`): the upper level weighs staying against the two move
nests (own region, other regions), fed by the logsums of the location choice over land pools;
the lower level picks the pool, with capacity respected by the kernel's iterative lottery.

This module builds the kernel's inputs (the sector-by-pool utility, the firm-level propensity to
move) and turns its answer into moves and births. It also gives the retention probabilities the
public accounts need for the deadweight counterfactual.

The kernel's "sectors" are choice groups g = (newborn?, region of origin r, sector s, size class
c), numbered ``((n * R + r) * S + s) * C + c``. Their utility of pool a (before the kernel's own
land-cost and distance terms) is

    V[g, a] = V_s[s, a] - border[r, region(a)] + b_land[g] * A[g, a] / money_scale_eur

with ``V_s`` from :func:`sector_utility`, ``b_land[g] = b_land[s] * (REFERENCE_SIZE /
TYPICAL_SIZE[c]) ** money_size_elasticity`` and ``A`` the aid on offer (EUR): for a firm of
``E = TYPICAL_SIZE[c]`` jobs investing in new premises at a,

    A[g, a] = allowed[g, a] * enabled[q] * eligible[s] * take_up[q] * intensity_q(E, dev[a])
              * (E * land_per_job[s] * densification[a] * price[a] + E * equipment_per_job[s])

where q = region(a), ``intensity_q`` is :func:`relocsim.public_accounts.aid_intensity` (by size
class, plus the development-zone bonus), and ``allowed`` is 1 for newborns and moves inside the
region and, for moves from another region, 1 only where the GBER anti-relocation rule is off
(``anti_relocation_years == 0``; :func:`relocsim.public_accounts.relocation_allows_aid`). The
offer is what an eligible firm of the group can expect; a firm already holding unexpired aid
(which cannot get more) is not told apart inside its group.

The upper level of incumbent i (group g, sector s, nest scale lambda_s, money scale m =
``behaviour.money_scale_eur``) weighs

    U_stay[i]  = - lambda_s * b_land[g] * K[i] / m
    U_own[i]   = W[i] + lambda_s * b_land[g] * P[i] / m + lambda_s * logsum_own[i]
    U_other[i] = W[i] + lambda_s * b_land[g] * P[i] / m + asc_deloc[s] + b_size_deloc * log(E_i)
                 + lambda_s * logsum_other[i]

(E_i the firm's employees: a larger firm that moves leaves its region more often, the IBSA
size gradient of Brussels leavers; the kernel's logsums include the destination's land cost
and, in the other-region nest, the departure cost; the upper level is a multinomial logit over
the three), with W the firm's move propensity (:func:`move_propensity`), P the resale value of
the premises it held before growing in place (:func:`relocsim.land_market.premises_value`:
price, capitalised taxes and, where conversion to housing is owed, the developers' premium)
and K the cost of growing in place,
``K[i] = extra_m2[i] / densification[pool] * cost_per_m2[pool]``: the extra land its pool
granted it this year (0 if none) at the same cost per m2 of standard need
(:func:`relocsim.land_market.cost_per_m2`) that a move branch charges for the destination's
land. So one money coefficient, ``lambda_s * b_land[g]`` per EUR at the upper level, prices land
in every branch: staying means paying for the extra land in place, moving means selling the
premises and buying the need elsewhere. A grower that moves gives its extra land back unpaid.
Where the pool's land subsidy is 0, K[i] equals the resale value of the extra land, so the
choice is the same as weighing the sale of the whole premises against a stay utility of 0;
with a subsidy, staying costs the firm only its share of the price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from relocsim.choice import STAY, UNPLACED, ChoiceResult, choose_locations
from relocsim.demography import Newborns
from relocsim.firms import FirmTable
from relocsim.geography import Geography, choice_travel_time
from relocsim.public_accounts import RegionRules, aid_expected_eur, relocation_allows_aid
from relocsim.scenarios import Behaviour, Scenario

AGGLOMERATION_JOBS = 100.0
"""Same-sector jobs that make one unit of log(1 + jobs / unit) in the agglomeration term."""

SIZE_BOUNDS = np.array([5, 10, 50, 100, 250, 1000])
"""Lower bounds (employees) of the size classes after the first, for the weight of money."""
TYPICAL_SIZE = np.array([2.0, 7.0, 22.0, 70.0, 160.0, 500.0, 2000.0])
"""A typical firm size of each class."""
REFERENCE_SIZE = 10.0
"""Firm size at which money counts at the sector's sensitivity."""


@dataclass(frozen=True)
class ChoiceParameters:
    """Per-sector choice sensitivities as arrays (S,); see :class:`relocsim.scenarios.Sector`."""

    b_land: np.ndarray
    b_dist: np.ndarray
    b_claw: np.ndarray
    b_access: np.ndarray
    b_water: np.ndarray
    b_agglo: np.ndarray
    b_incentive: np.ndarray
    nest_scale: np.ndarray
    asc_move: np.ndarray
    asc_deloc: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ChoiceParameters:
        sectors = list(scenario.sectors.values())
        return cls(
            **{
                name: np.array([getattr(s, name) for s in sectors], dtype=np.float64)
                for name in cls.__dataclass_fields__
            }
        )


SECTOR_CHOICE_COEFFICIENTS: tuple[str, ...] = tuple(ChoiceParameters.__dataclass_fields__)
"""Names of the per-sector choice coefficients (scenario fields ``sectors.<name>.<coef>``)."""
SCALAR_CHOICE_COEFFICIENTS = (
    "b_stress",
    "b_growth",
    "b_age",
    "b_size",
    "b_size_deloc",
    "language_border",
)
"""Choice coefficients the scenario sets once (``behaviour.<coef>``)."""


@dataclass(frozen=True)
class ZoneQualities:
    """Zone attributes that enter the sector-by-pool utility (arrays over zones)."""

    access: np.ndarray
    water: np.ndarray
    amenity: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario, geo: Geography) -> ZoneQualities:
        zones = [scenario.zones[name] for name in geo.zone_names]
        access = np.array([(z.access_road + z.access_rail + z.labour_access) / 3 for z in zones])
        return cls(
            access=access,
            water=np.array([z.access_water for z in zones]),
            amenity=np.array([z.amenity for z in zones]),
        )


@dataclass
class Decision:
    """The answer of the yearly decision.

    Attributes:
        rows: incumbent rows that chose (the first ``len(rows)`` entries of ``result``).
        result: the kernel's answer for incumbents followed by newborns.
        stay_utility, own_utility, other_utility: upper-level inputs of the incumbents.
        nest_scale: nest scale of each incumbent.
        utility_per_eur: utility of one EUR of departure cost (owed or forfeited on leaving
            the region), for each incumbent.
    """

    rows: np.ndarray
    result: ChoiceResult
    stay_utility: np.ndarray
    own_utility: np.ndarray
    other_utility: np.ndarray
    nest_scale: np.ndarray
    utility_per_eur: np.ndarray


def sector_utility(
    params: ChoiceParameters,
    geo: Geography,
    qualities: ZoneQualities,
    sector_jobs: np.ndarray,
    incentive_keur: np.ndarray,
    available: np.ndarray,
) -> np.ndarray:
    """V[s, a]: zone constant, accessibility, waterway, agglomeration and incentives (S, M);
    -inf where the sector may not locate (land-use rules, a zone's reservation, closed pools).

    Args:
        sector_jobs: jobs by sector and zone (S, Z).
        incentive_keur: fiscal incentive per job-year by region (kEUR).
        available: pools open to firms this year (M,).
    """
    zone = geo.pool_zone
    value = (
        qualities.amenity[zone][None, :]
        + params.b_access[:, None] * qualities.access[zone][None, :]
        + params.b_water[:, None] * qualities.water[zone][None, :]
        + params.b_agglo[:, None] * np.log1p(sector_jobs[:, zone] / AGGLOMERATION_JOBS)
        + params.b_incentive[:, None] * incentive_keur[geo.pool_region][None, :]
    )
    return np.where(geo.allowed & ~geo.reserved_out & available[None, :], value, -np.inf)


def move_propensity(
    firms: FirmTable, rows: np.ndarray, year: int, params: ChoiceParameters, behaviour: Behaviour
) -> np.ndarray:
    """Firm-level utility of moving: rises with space stress and growth, falls with age and size."""
    sector = firms.sector[rows]
    age = np.maximum(year - firms.birth_year[rows], 0)
    return (
        params.asc_move[sector]
        + behaviour.b_stress * firms.stress[rows]
        + behaviour.b_growth * np.maximum(firms.growth[rows], 0.0)
        - behaviour.b_age * np.log1p(age)
        - behaviour.b_size * np.log(firms.employees[rows])
    )


@dataclass(frozen=True)
class AidOnOffer:
    """What the aid on offer in each pool depends on (pools M, sectors S)."""

    rules: RegionRules
    price: np.ndarray
    densification: np.ndarray
    development: np.ndarray
    land_per_job: np.ndarray


@dataclass(frozen=True)
class ChoiceGroups:
    """Origin-region x sector x size-class groups: the kernel's "sectors".

    Three things vary by group rather than by sector. Money weighs less for big firms: a group's
    land and clawback sensitivities are its sector's times ``(REFERENCE_SIZE / typical size) **
    money_size_elasticity``. Crossing the language border costs utility: a group's
    sector-by-pool utility is its sector's plus the border friction from its region of origin to
    the pool's region. And the aid on offer depends on size, and on whether the firm is a newborn
    (no anti-relocation rule applies to it). The kernel takes per-"sector" coefficients, so each
    group is one for it (see the module docstring for the utility).
    """

    group: np.ndarray
    n_sectors: int
    n_regions: int
    b_land: np.ndarray
    b_dist: np.ndarray
    b_claw: np.ndarray
    nest_scale: np.ndarray

    @classmethod
    def of(
        cls,
        region: np.ndarray,
        sector: np.ndarray,
        employees: np.ndarray,
        params: ChoiceParameters,
        elasticity: float,
        n_regions: int,
        newborn: np.ndarray,
    ) -> ChoiceGroups:
        n_classes, n_sectors = len(TYPICAL_SIZE), len(params.b_land)
        n_origins = 2 * n_regions  # incumbents of each region, then newborns of each region
        weight = np.tile((REFERENCE_SIZE / TYPICAL_SIZE) ** elasticity, n_sectors * n_origins)
        size_class = np.searchsorted(SIZE_BOUNDS, employees, side="right")
        origin = newborn.astype(np.int64) * n_regions + region

        def per_group(values: np.ndarray) -> np.ndarray:
            return np.tile(np.repeat(values, n_classes), n_origins)

        return cls(
            group=((origin * n_sectors + sector) * n_classes + size_class).astype(np.int32),
            n_sectors=n_sectors,
            n_regions=n_regions,
            b_land=per_group(params.b_land) * weight,
            b_dist=per_group(params.b_dist),
            b_claw=per_group(params.b_claw) * weight,
            nest_scale=per_group(params.nest_scale),
        )

    def expand(
        self,
        sector_utility: np.ndarray,
        border: np.ndarray,
        pool_region: np.ndarray,
        aid: AidOnOffer | None = None,
        money_scale_eur: float = 1e6,
    ) -> np.ndarray:
        """Group-by-pool utility: the sector's utility minus the border friction of the move,
        plus the utility of the aid on offer (module docstring).

        Args:
            sector_utility: (S, M).
            border: friction from region r to region q (R, R).
            pool_region: region of each pool (M,).
            aid: what the aid on offer depends on (None: no aid term).
            money_scale_eur: EUR per unit of money in the utilities.
        """
        by_sector = np.repeat(sector_utility, len(TYPICAL_SIZE), axis=0)
        friction = border[:, pool_region]
        moved = (by_sector[None, :, :] - friction[:, None, :]).reshape(-1, len(pool_region))
        value = np.concatenate([moved, moved])  # incumbents, then newborns
        if aid is not None:
            value = value + self.b_land[:, None] * self.aid_on_offer(aid, pool_region) / (
                money_scale_eur
            )
        return value

    def aid_on_offer(self, aid: AidOnOffer, pool_region: np.ndarray) -> np.ndarray:
        """A[g, a]: aid (EUR) a firm of group g can expect by investing in pool a (G, M)."""
        n_classes, n_sectors = len(TYPICAL_SIZE), self.n_sectors
        groups = np.arange(len(self.b_land))
        size_class = groups % n_classes
        sector = (groups // n_classes) % n_sectors
        origin = groups // (n_classes * n_sectors)
        newborn, region = origin >= self.n_regions, origin % self.n_regions
        jobs = TYPICAL_SIZE[size_class][:, None]
        land = jobs * aid.land_per_job[sector][:, None] * (aid.densification * aid.price)[None, :]
        expected = aid_expected_eur(
            aid.rules,
            pool_region[None, :],
            aid.development[None, :],
            sector[:, None],
            jobs,
            land,
        )
        inside = region[:, None] == pool_region[None, :]
        open_to_movers = relocation_allows_aid(aid.rules, pool_region, np.zeros_like(pool_region))
        allowed = newborn[:, None] | inside | open_to_movers[None, :]
        return np.where(allowed, expected, 0.0)


def decide(
    *,
    firms: FirmTable,
    rows: np.ndarray,
    newborns: Newborns,
    newborn_ids: np.ndarray,
    geo: Geography,
    params: ChoiceParameters,
    behaviour: Behaviour,
    utility: np.ndarray,
    border_friction: np.ndarray,
    cost_per_m2: np.ndarray,
    capacity_m2: np.ndarray,
    need_m2: np.ndarray,
    newborn_need_m2: np.ndarray,
    departure_cost_eur: np.ndarray,
    premises_value_eur: np.ndarray,
    aid_on_offer: AidOnOffer | None,
    stay_cost_eur: np.ndarray | float = 0.0,
    year: int,
    seed: int,
    n_sampled: int,
    threads: int | None,
    implementation: str = "kernel",
) -> Decision:
    """Run the nested stay / relocate / delocalise choice for incumbents and newborns.

    Args:
        utility: sector-by-pool utility (S, M), see :func:`sector_utility`.
        border_friction: utility lost moving from region r to region q (R, R).
        need_m2, newborn_need_m2: land needed at standard density (m2).
        cost_per_m2: what a m2 of standard need costs in each pool (EUR).
        capacity_m2: vacant land on offer per pool, in standard m2.
        departure_cost_eur: money each incumbent owes or forfeits if it leaves its region
            (:func:`relocsim.public_accounts.departure_cost`); the kernel calls it
            ``firm_clawback``.
        premises_value_eur: what each incumbent's current land is worth at its pool's cost per m2;
            a mover sells it, so every alternative weighs the cost difference. Being constant
            within a nest it shifts the nest's logsum by exactly ``b_land * value``, added here to
            the nest utilities times the nest scale.
        aid_on_offer: what the investment aid on offer in each pool depends on (None: no aid
            term in the utility).
        stay_cost_eur: what staying costs each incumbent: the land it grows into in place, at
            its pool's cost per m2 (``K`` in the module docstring; 0 for firms not growing).
    """
    money = behaviour.money_scale_eur
    sector = firms.sector[rows]
    n_new = len(newborns)
    all_sector = np.concatenate([sector, newborns.sector]).astype(np.int32)
    pool = np.concatenate([firms.pool[rows], newborns.home_pool]).astype(np.int32)
    groups = ChoiceGroups.of(
        geo.pool_region[pool],
        all_sector,
        np.concatenate([firms.employees[rows], newborns.employees]),
        params,
        behaviour.money_size_elasticity,
        len(geo.region_names),
        newborn=np.arange(len(all_sector)) >= len(rows),
    )
    own_group = groups.group[: len(rows)]
    money_weight = groups.nest_scale[own_group] * groups.b_land[own_group] / money
    propensity = move_propensity(firms, rows, year, params, behaviour) + (
        money_weight * premises_value_eur
    )
    stay = np.concatenate([-money_weight * stay_cost_eur, np.full(n_new, -np.inf)])
    own = np.concatenate([propensity, np.zeros(n_new)])
    other = own + params.asc_deloc[all_sector]
    other[: len(rows)] += behaviour.b_size_deloc * np.log(firms.employees[rows])
    result = choose_locations(
        sector_utility=groups.expand(
            utility, border_friction, geo.pool_region, aid_on_offer, money
        ),
        alt_zone=geo.pool_zone,
        alt_region=geo.pool_region,
        alt_price=cost_per_m2 / money,
        travel_time=choice_travel_time(geo, behaviour.own_region_distance_scale),
        firm_id=np.concatenate([firms.firm_id[rows], newborn_ids]).astype(np.int64),
        firm_sector=groups.group,
        firm_zone=geo.pool_zone[pool],
        firm_region=geo.pool_region[pool],
        firm_alt=np.full(len(pool), -1, np.int32),
        firm_area=np.concatenate([need_m2, newborn_need_m2]).astype(np.float64),
        firm_clawback=np.concatenate([departure_cost_eur / money, np.zeros(n_new)]),
        stay_utility=stay,
        own_nest_utility=own,
        other_nest_utility=other,
        b_land=groups.b_land,
        b_dist=groups.b_dist,
        b_claw=groups.b_claw,
        nest_scale=groups.nest_scale,
        capacity=capacity_m2,
        n_sampled=n_sampled,
        seed=seed,
        year=year,
        threads=threads,
        implementation=implementation,
    )
    n = len(rows)
    return Decision(
        rows=rows,
        result=result,
        stay_utility=stay[:n],
        own_utility=own[:n],
        other_utility=other[:n],
        nest_scale=groups.nest_scale[own_group],
        utility_per_eur=groups.b_claw[own_group] / money,
    )


def retention_probability(
    decision: Decision, which: np.ndarray, departure_cost_eur: np.ndarray | float = 0.0
) -> np.ndarray:
    """Probability that incumbents ``which`` (positions in ``decision.rows``) stay in their region
    (stay or move inside it).

    ``departure_cost_eur`` is given back to every alternative of the other-region nest (a constant
    shift inside the nest moves its logsum by exactly that amount): pass each firm's departure
    cost to get the counterfactual without it; 0 gives the probability the firm faced.
    """
    result = decision.result
    other_logsum = result.logsum_other[which] + decision.utility_per_eur[which] * departure_cost_eur
    scale = decision.nest_scale[which]
    upper = np.stack(
        [
            decision.stay_utility[which],
            decision.own_utility[which] + scale * result.logsum_own[which],
            decision.other_utility[which] + scale * other_logsum,
        ],
        axis=1,
    )
    upper = np.where(np.isfinite(upper), upper, -1e300)
    return 1.0 - softmax(upper, axis=1)[:, 2]


__all__ = ["UNPLACED", "Decision", "decide", "is_move", "retention_probability"]


def is_move(choice: np.ndarray) -> np.ndarray:
    """Whether a kernel answer is a move to a pool (not a stay or an unplaced firm)."""
    return choice > STAY
