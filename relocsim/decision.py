"""The yearly decision: stay (or grow in place), relocate in the region, or delocalise, and where.

One nested logit for every incumbent firm and every newborn, computed by the compiled kernel
(:func:`relocsim.choice.choose_locations`): the upper level weighs staying against the two move
nests (own region, other regions), fed by the logsums of the location choice over land pools;
the lower level picks the pool, with capacity respected by the kernel's iterative lottery.

This module builds the kernel's inputs (the sector-by-pool utility, the firm-level propensity to
move) and turns its answer into moves and births. It also gives the retention probabilities the
public accounts need for the deadweight counterfactual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from relocsim.choice import STAY, UNPLACED, ChoiceResult, choose_locations
from relocsim.demography import Newborns
from relocsim.firms import FirmTable
from relocsim.geography import Geography
from relocsim.scenario import Behaviour, Scenario

AGGLOMERATION_JOBS = 100.0
"""Same-sector jobs that make one unit of log(1 + jobs / unit) in the agglomeration term."""


@dataclass(frozen=True)
class ChoiceParameters:
    """Per-sector choice sensitivities as arrays (S,); see :class:`relocsim.scenario.Sector`."""

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


@dataclass(frozen=True)
class ZoneQualities:
    """Zone attributes that enter the sector-by-pool utility (arrays over zones)."""

    access: np.ndarray
    water: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario, geo: Geography) -> ZoneQualities:
        zones = [scenario.zones[name] for name in geo.zone_names]
        access = np.array([(z.access_road + z.access_rail + z.labour_access) / 3 for z in zones])
        return cls(access=access, water=np.array([z.access_water for z in zones]))


@dataclass
class Decision:
    """The answer of the yearly decision.

    Attributes:
        rows: incumbent rows that chose (the first ``len(rows)`` entries of ``result``).
        result: the kernel's answer for incumbents followed by newborns.
        stay_utility, own_utility, other_utility: upper-level inputs of the incumbents.
    """

    rows: np.ndarray
    result: ChoiceResult
    stay_utility: np.ndarray
    own_utility: np.ndarray
    other_utility: np.ndarray


def sector_utility(
    params: ChoiceParameters,
    geo: Geography,
    qualities: ZoneQualities,
    sector_jobs: np.ndarray,
    incentive_keur: np.ndarray,
    available: np.ndarray,
) -> np.ndarray:
    """V[s, a]: accessibility, waterway, agglomeration and destination incentives (S, M).

    Args:
        sector_jobs: jobs by sector and zone (S, Z).
        incentive_keur: fiscal incentive per job-year by region (kEUR).
        available: pools open to firms this year (M,).
    """
    zone = geo.pool_zone
    value = (
        params.b_access[:, None] * qualities.access[zone][None, :]
        + params.b_water[:, None] * qualities.water[zone][None, :]
        + params.b_agglo[:, None] * np.log1p(sector_jobs[:, zone] / AGGLOMERATION_JOBS)
        + params.b_incentive[:, None] * incentive_keur[geo.pool_region][None, :]
    )
    return np.where(geo.allowed & available[None, :], value, -np.inf)


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
    cost_per_m2: np.ndarray,
    capacity_m2: np.ndarray,
    need_m2: np.ndarray,
    newborn_need_m2: np.ndarray,
    loss_on_leaving_eur: np.ndarray,
    year: int,
    seed: int,
    n_sampled: int,
    threads: int | None,
) -> Decision:
    """Run the nested stay / relocate / delocalise choice for incumbents and newborns.

    Args:
        need_m2, newborn_need_m2: land needed at standard density (m2).
        cost_per_m2: what a m2 of standard need costs in each pool (EUR).
        capacity_m2: vacant land on offer per pool, in standard m2.
        loss_on_leaving_eur: money each incumbent owes or forgoes if it leaves its region.
    """
    money = behaviour.money_scale_eur
    propensity = move_propensity(firms, rows, year, params, behaviour)
    sector = firms.sector[rows]
    n_new = len(newborns)
    stay = np.concatenate([np.zeros(len(rows)), np.full(n_new, -np.inf)])
    own = np.concatenate([propensity, np.zeros(n_new)])
    all_sector = np.concatenate([sector, newborns.sector]).astype(np.int32)
    other = own + params.asc_deloc[all_sector]
    pool = np.concatenate([firms.pool[rows], newborns.home_pool]).astype(np.int32)
    result = choose_locations(
        sector_utility=utility,
        alt_zone=geo.pool_zone,
        alt_region=geo.pool_region,
        alt_price=cost_per_m2 / money,
        travel_time=geo.travel_time,
        firm_id=np.concatenate([firms.firm_id[rows], newborn_ids]).astype(np.int64),
        firm_sector=all_sector,
        firm_zone=geo.pool_zone[pool],
        firm_region=geo.pool_region[pool],
        firm_alt=np.full(len(pool), -1, np.int32),
        firm_area=np.concatenate([need_m2, newborn_need_m2]).astype(np.float64),
        firm_clawback=np.concatenate([loss_on_leaving_eur / money, np.zeros(n_new)]),
        stay_utility=stay,
        own_nest_utility=own,
        other_nest_utility=other,
        b_land=params.b_land,
        b_dist=params.b_dist,
        b_claw=params.b_claw,
        nest_scale=params.nest_scale,
        capacity=capacity_m2,
        n_sampled=n_sampled,
        seed=seed,
        year=year,
        threads=threads,
    )
    n = len(rows)
    return Decision(
        rows=rows,
        result=result,
        stay_utility=stay[:n],
        own_utility=own[:n],
        other_utility=other[:n],
    )


def retention_probability(
    decision: Decision, params: ChoiceParameters, sector: np.ndarray, loss_shift: np.ndarray
) -> np.ndarray:
    """Probability that each incumbent stays in its region (stays or moves inside it).

    ``loss_shift`` adds utility to every alternative of the other-region nest (a constant shift
    inside the nest moves its logsum by exactly that amount): pass ``b_claw * loss`` to get the
    counterfactual without the money the firm would lose by leaving.
    """
    n = len(decision.rows)
    scale = params.nest_scale[sector]
    other_logsum = decision.result.logsum_other[:n] + loss_shift
    upper = np.stack(
        [
            decision.stay_utility,
            decision.own_utility + scale * decision.result.logsum_own[:n],
            decision.other_utility + scale * other_logsum,
        ],
        axis=1,
    )
    upper = np.where(np.isfinite(upper), upper, -1e300)
    return 1.0 - softmax(upper, axis=1)[:, 2]


__all__ = ["UNPLACED", "Decision", "decide", "is_move", "retention_probability"]


def is_move(choice: np.ndarray) -> np.ndarray:
    """Whether a kernel answer is a move to a pool (not a stay or an unplaced firm)."""
    return choice > STAY
