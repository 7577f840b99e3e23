"""Public accounts: aid and incentive contracts, clawback, interregional compensation, deadweight.

Each investment aid is a contract a firm carries (amount, region, year, commitment period); each
job-keeping incentive likewise (region, committed jobs, end year, amount received). When a firm
leaves the granting region during the commitment, the aid portability rule applies: nothing,
repayment by the firm of a share declining over the period (clawback), or payment by the
destination region to the origin (compensation). Incentive breaches are detected with the
monitoring probability and clawed back. The deadweight share is the share of the aid at stake
going to jobs that would have been in the region anyway, from the model's own counterfactuals of
location (the nested logit's retention probability with and without the money a firm would lose
by leaving), survival (firms alive only thanks to a policy) and growth (jobs the aid's extra
growth created): :func:`record_retention`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from relocsim._rng import Stage, Streams
from relocsim.firms import NO_REGION, FirmTable
from relocsim.scenarios import AidPortability, Scenario

SMALL_FIRM, MEDIUM_FIRM = 50, 250
"""Employees at which a firm stops being small / medium (EU SME definition)."""

MONEY_COLUMNS = (
    "aid_paid",
    "aid_recovered",
    "compensation_paid",
    "compensation_received",
    "incentives_paid",
    "incentives_recovered",
    "land_subsidy_paid",
)
"""The EUR flows of the ledger, reported as they are in the accounts table."""

JOB_CHANNELS = ("jobs_created_growth", "jobs_created_survival", "jobs_in_saved_firms")
"""Jobs the policies created (not moved), each against the firm's own counterfactual (same random
draws, without the policy): this year's extra growth of aided firms, the jobs of firms that
survived this year only thanks to their incentive, and the jobs at the end of the year of every
live firm that some year survived only thanks to a policy (a stock: without the policy they
would be gone)."""

LEDGER_COLUMNS = (
    *MONEY_COLUMNS,
    "jobs_retained",
    "aid_held",
    "aid_held_anyway",
    *JOB_CHANNELS,
)


@dataclass
class Ledger:
    """One year's public money by region (EUR arrays of length R; jobs for ``jobs_retained``)."""

    n_regions: int
    values: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = {name: np.zeros(self.n_regions) for name in LEDGER_COLUMNS}

    def add(self, column: str, region: np.ndarray, amount: np.ndarray) -> None:
        np.add.at(self.values[column], np.asarray(region, dtype=np.int64), amount)


@dataclass(frozen=True)
class RegionRules:
    """Aid and incentive rules of every region as arrays (R,), and sector eligibility (S,)."""

    aid_enabled: np.ndarray
    intensity: np.ndarray  # (R, 3): small, medium, large
    development_bonus: np.ndarray
    equipment_per_job: np.ndarray  # (S,)
    commitment_years: np.ndarray
    commitment_years_buildings: np.ndarray
    take_up: np.ndarray
    anti_relocation_years: np.ndarray
    jobs_commitment_share: np.ndarray
    incentive_rate: np.ndarray
    incentive_years: np.ndarray
    incentive_take_up: np.ndarray
    sector_eligible: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> RegionRules:
        regions = list(scenario.regions.values())
        return cls(
            aid_enabled=np.array([r.aid.enabled for r in regions]),
            intensity=np.array(
                [
                    [r.aid.intensity_small, r.aid.intensity_medium, r.aid.intensity_large]
                    for r in regions
                ]
            ),
            development_bonus=np.array([r.aid.development_zone_bonus for r in regions]),
            equipment_per_job=np.array(
                [s.equipment_per_job_eur for s in scenario.sectors.values()]
            ),
            commitment_years=np.array([r.aid.commitment_years for r in regions], np.int32),
            commitment_years_buildings=np.array(
                [r.aid.commitment_years_buildings for r in regions], np.int32
            ),
            take_up=np.array([r.aid.take_up for r in regions]),
            anti_relocation_years=np.array([r.aid.anti_relocation_years for r in regions]),
            jobs_commitment_share=np.array([r.aid.jobs_commitment_share for r in regions]),
            incentive_rate=np.array([r.incentive_eur_per_job_year for r in regions]),
            incentive_years=np.array([r.incentive_years for r in regions], np.int32),
            incentive_take_up=np.array([r.incentive_take_up for r in regions]),
            sector_eligible=np.array([s.aid_eligible for s in scenario.sectors.values()]),
        )


def aid_intensity(
    rules: RegionRules, region: np.ndarray, employees: np.ndarray, development: np.ndarray
) -> np.ndarray:
    """Share of the eligible investment a region's aid pays: by size class (small < 50, medium
    < 250, large), plus the region's bonus in development zones where the size class is aided."""
    size_class = np.searchsorted([SMALL_FIRM, MEDIUM_FIRM], employees, side="right")
    base = rules.intensity[region, size_class]
    bonus = rules.development_bonus[region] * development
    return np.where(base > 0, np.minimum(base + bonus, 1.0), 0.0)


def eligible_investment(
    rules: RegionRules, sector: np.ndarray, jobs: np.ndarray, premises_eur: np.ndarray
) -> np.ndarray:
    """Investment (EUR) aid can pay a share of: the premises at the land market's price plus the
    sector's equipment per job for the jobs invested."""
    return premises_eur + rules.equipment_per_job[sector] * jobs


def aid_expected_eur(
    rules: RegionRules,
    region: np.ndarray,
    development: np.ndarray,
    sector: np.ndarray,
    employees: np.ndarray,
    premises_eur: np.ndarray,
) -> np.ndarray:
    """Aid (EUR) an eligible firm can expect by investing where ``region`` grants it: take-up x
    intensity x eligible investment, 0 where the region or sector grants none (broadcasts)."""
    granting = rules.aid_enabled[region] & rules.sector_eligible[sector]
    amount = aid_intensity(rules, region, employees, development) * eligible_investment(
        rules, sector, employees, premises_eur
    )
    return np.where(granting, rules.take_up[region] * amount, 0.0)


def relocation_allows_aid(
    rules: RegionRules, region: np.ndarray, years_since: np.ndarray
) -> np.ndarray:
    """GBER anti-relocation rule: no aid from ``region`` to a firm that left another region
    ``years_since`` years ago (0: this year) unless more than ``anti_relocation_years`` have
    passed; 0 years switches the rule off."""
    anti = rules.anti_relocation_years[region]
    return (anti == 0) | (years_since > anti)


SLOT_INCENTIVE_CHECK, SLOT_AID_CHECK, SLOT_INCENTIVE_TAKE_UP, SLOT_AID_TAKE_UP = 0, 1, 2, 3
"""Slots of a firm's accounts stream: monitoring of its incentive and of its aid condition,
take-up of an incentive and of investment aid."""


def _chance(
    streams: Streams,
    firms: FirmTable,
    rows: np.ndarray,
    who: np.ndarray,
    slot: int,
    probability: np.ndarray | float,
) -> np.ndarray:
    """Whether each of ``rows`` flagged in ``who`` draws below ``probability`` (others: False).

    Draws are the firms' own, so only the flagged firms need them.
    """
    hit = np.zeros(len(rows), dtype=bool)
    p = np.broadcast_to(probability, len(rows))[who]
    hit[who] = streams.uniform(Stage.ACCOUNTS, firms.firm_id[rows[who]], slot) < p
    return hit


def remaining_commitment(
    firms: FirmTable, rows: np.ndarray, year: int, buildings: bool = False
) -> np.ndarray:
    """Share of each aid contract's commitment period still to run (0 when none or expired), for
    its equipment part or, with ``buildings``, its premises part.

    Aid is granted at the end of a year, so the first decision it can affect is the next year's:
    leaving then repays it whole, and the share falls by ``1 / commitment`` each year after.
    """
    active = firms.aid_region[rows] != NO_REGION
    elapsed = year - firms.aid_year[rows] - 1
    years = firms.aid_commitment_buildings if buildings else firms.aid_commitment
    commitment = np.maximum(years[rows], 1)
    return np.where(active, np.clip(1.0 - elapsed / commitment, 0.0, 1.0), 0.0)


def aid_due(firms: FirmTable, rows: np.ndarray, year: int) -> np.ndarray:
    """Aid (EUR) that leaving the granting region this year puts at stake: each part of the aid
    pro rata of its own commitment still to run (equipment, and premises with their longer one)."""
    due = np.zeros(len(rows))
    held = np.flatnonzero(firms.aid_region[rows] != NO_REGION)  # few firms hold aid: skip others
    aided = rows[held]
    buildings = firms.aid_buildings_eur[aided]
    equipment = firms.aid_amount[aided] - buildings
    due[held] = equipment * remaining_commitment(firms, aided, year) + buildings * (
        remaining_commitment(firms, aided, year, buildings=True)
    )
    return due


def _incentive_active(firms: FirmTable, rows: np.ndarray, year: int) -> np.ndarray:
    return (firms.incentive_region[rows] != NO_REGION) & (firms.incentive_until[rows] >= year)


def holds_aid_from(firms: FirmTable, rows: np.ndarray, year: int, region: np.ndarray) -> np.ndarray:
    """Whether each firm holds aid from ``region`` whose commitment period still runs: the
    "aided leaver" test when ``region`` is the one it leaves."""
    return (firms.aid_region[rows] == region) & (aid_due(firms, rows, year) > 0)


def unexpired_aid(firms: FirmTable, rows: np.ndarray, year: int, region: np.ndarray) -> np.ndarray:
    """Aid (EUR) each firm holds from ``region`` whose commitment period still runs."""
    return np.where(holds_aid_from(firms, rows, year, region), firms.aid_amount[rows], 0.0)


def incentive_rate_paid(
    firms: FirmTable, rows: np.ndarray, year: int, region: np.ndarray
) -> np.ndarray:
    """Incentive each firm is paid by ``region`` this year (EUR per committed job; 0: none)."""
    here = _incentive_active(firms, rows, year) & (firms.incentive_region[rows] == region)
    return np.where(here, firms.incentive_rate[rows], 0.0)


def incentive_at_stake(
    firms: FirmTable, rows: np.ndarray, year: int, region: np.ndarray
) -> np.ndarray:
    """Incentive money (EUR) a firm loses by leaving ``region``: what it received under its
    job-keeping contract (clawed back) plus the payments still to come."""
    cost = departure_cost(firms, rows, year, region, AidPortability(mode="none"))
    return cost.incentive_repaid + cost.incentive_forgone


@dataclass(frozen=True)
class DepartureCost:
    """What leaving its region this year means, per firm (EUR arrays).

    The one definition behind both the choice (the firm weighs :attr:`departure_cost_eur`) and
    the settlement (:func:`settle_departures` books these amounts), so the two agree exactly.

    Attributes:
        aided: the firm holds unexpired aid from the region it leaves.
        aid_repaid: aid the firm repays to the origin (portability ``clawback``).
        aid_compensated: aid the destination region pays the origin (``compensation``).
        incentive_repaid: job-keeping incentive received so far, clawed back.
        incentive_forgone: incentive payments still to come under the contract, lost.
    """

    aided: np.ndarray
    aid_repaid: np.ndarray
    aid_compensated: np.ndarray
    incentive_repaid: np.ndarray
    incentive_forgone: np.ndarray

    @property
    def departure_cost_eur(self) -> np.ndarray:
        """Money the firm itself owes or forgoes by leaving (compensation is not its money)."""
        return self.aid_repaid + (self.incentive_repaid + self.incentive_forgone)

    @property
    def repaid_eur(self) -> np.ndarray:
        """Money the firm pays back to the origin when it leaves."""
        return self.aid_repaid + self.incentive_repaid


def departure_cost(
    firms: FirmTable,
    rows: np.ndarray,
    year: int,
    origin: np.ndarray,
    portability: AidPortability,
) -> DepartureCost:
    """What each firm owes or forfeits if it leaves ``origin`` this year, under ``portability``.

    Unexpired aid from the origin is due pro rata of the commitment still to run, times the
    repayment share (clawback, paid by the firm) or the compensation share (compensation, paid
    by the destination); under ``none`` nothing is due. An active incentive from the origin is
    clawed back (what was received) and its future payments are lost, whatever the mode.
    """
    aided = holds_aid_from(firms, rows, year, origin)
    due = aid_due(firms, rows, year)
    nothing = np.zeros(len(rows))
    repaid = portability.repayment_share * due if portability.mode == "clawback" else nothing
    compensated = (
        portability.compensation_share * due if portability.mode == "compensation" else nothing
    )
    incentive = _incentive_active(firms, rows, year) & (firms.incentive_region[rows] == origin)
    years_left = np.maximum(firms.incentive_until[rows] - year + 1, 0)
    future = firms.incentive_rate[rows] * firms.incentive_jobs[rows] * years_left
    return DepartureCost(
        aided=aided,
        aid_repaid=np.where(aided, repaid, 0.0),
        aid_compensated=np.where(aided, compensated, 0.0),
        incentive_repaid=np.where(incentive, firms.incentive_paid[rows], 0.0),
        incentive_forgone=np.where(incentive, future, 0.0),
    )


def settle_departures(
    ledger: Ledger,
    firms: FirmTable,
    rows: np.ndarray,
    origin: np.ndarray,
    destination: np.ndarray,
    year: int,
    portability: AidPortability,
) -> np.ndarray:
    """Apply portability and incentive clawback to firms leaving their region; close contracts.

    Returns:
        EUR repaid by each firm (aid and incentives).
    """
    cost = departure_cost(firms, rows, year, origin, portability)
    aided = cost.aided
    if portability.mode == "clawback":
        ledger.add("aid_recovered", origin[aided], cost.aid_repaid[aided])
    elif portability.mode == "compensation":
        ledger.add("compensation_paid", destination[aided], cost.aid_compensated[aided])
        ledger.add("compensation_received", origin[aided], cost.aid_compensated[aided])
    _close_aid(firms, rows[aided])
    incentive = _incentive_active(firms, rows, year) & (firms.incentive_region[rows] == origin)
    ledger.add("incentives_recovered", origin[incentive], cost.incentive_repaid[incentive])
    _close_incentives(firms, rows[incentive])
    return cost.repaid_eur


def _close_aid(firms: FirmTable, rows: np.ndarray) -> None:
    firms.aid_region[rows] = NO_REGION
    firms.aid_amount[rows] = 0.0
    firms.aid_buildings_eur[rows] = 0.0


def _close_incentives(firms: FirmTable, rows: np.ndarray) -> None:
    firms.incentive_region[rows] = NO_REGION
    firms.incentive_paid[rows] = 0.0
    firms.incentive_jobs[rows] = 0


def close_contracts(firms: FirmTable, rows: np.ndarray) -> None:
    """Exiting firms' contracts end with nothing recovered."""
    _close_aid(firms, rows)
    _close_incentives(firms, rows)


def expire_contracts(firms: FirmTable, rows: np.ndarray, year: int) -> None:
    """Aid past its commitment period and incentives past their end year become unconditional."""
    aid_over = (firms.aid_region[rows] != NO_REGION) & (aid_due(firms, rows, year) <= 0)
    _close_aid(firms, rows[aid_over])
    over = (firms.incentive_region[rows] != NO_REGION) & (firms.incentive_until[rows] < year)
    _close_incentives(firms, rows[over])


def pay_incentives(
    ledger: Ledger,
    firms: FirmTable,
    rows: np.ndarray,
    region: np.ndarray,
    year: int,
    monitoring: float,
    streams: Streams,
) -> np.ndarray:
    """Pay job-keeping incentives; detected breaches (fewer jobs than committed) are clawed back.

    Returns:
        Rows whose breach was detected.
    """
    active = _incentive_active(firms, rows, year) & (firms.incentive_region[rows] == region)
    breach = active & (firms.employees[rows] < firms.incentive_jobs[rows])
    detected = breach & _chance(streams, firms, rows, breach, SLOT_INCENTIVE_CHECK, monitoring)
    ledger.add("incentives_recovered", region[detected], firms.incentive_paid[rows[detected]])
    _close_incentives(firms, rows[detected])
    paying = active & ~detected
    amount = firms.incentive_rate[rows[paying]] * firms.incentive_jobs[rows[paying]]
    ledger.add("incentives_paid", region[paying], amount)
    firms.incentive_paid[rows[paying]] += amount
    return rows[detected]


def enforce_aid_jobs(
    ledger: Ledger,
    firms: FirmTable,
    rows: np.ndarray,
    region: np.ndarray,
    year: int,
    rules: RegionRules,
    monitoring: float,
    streams: Streams,
) -> tuple[np.ndarray, np.ndarray]:
    """Claw back, pro rata, unexpired aid of firms found below their jobs condition.

    Returns:
        Rows whose breach was detected, and the EUR each repaid.
    """
    aid = unexpired_aid(firms, rows, year, region)
    required = rules.jobs_commitment_share[region] * firms.aid_jobs[rows]
    breach = (aid > 0) & (required > 0) & (firms.employees[rows] < required)
    detected = breach & _chance(streams, firms, rows, breach, SLOT_AID_CHECK, monitoring)
    repaid = np.where(aid > 0, aid_due(firms, rows, year), 0.0)[detected]
    ledger.add("aid_recovered", region[detected], repaid)
    caught = rows[detected]
    _close_aid(firms, caught)
    return caught, repaid


def sign_incentives(
    firms: FirmTable,
    rows: np.ndarray,
    region: np.ndarray,
    year: int,
    rules: RegionRules,
    streams: Streams,
) -> np.ndarray:
    """Firms without a contract sign a job-keeping incentive with their region's take-up rate."""
    free = firms.incentive_region[rows] == NO_REGION
    offered = rules.incentive_rate[region] > 0
    eligible = free & offered & rules.sector_eligible[firms.sector[rows]]
    take_up = rules.incentive_take_up[region]
    signing = eligible & _chance(streams, firms, rows, eligible, SLOT_INCENTIVE_TAKE_UP, take_up)
    chosen = rows[signing]
    firms.incentive_region[chosen] = region[signing]
    firms.incentive_jobs[chosen] = firms.employees[chosen]
    firms.incentive_until[chosen] = year + rules.incentive_years[region[signing]] - 1
    firms.incentive_rate[chosen] = rules.incentive_rate[region[signing]]
    firms.incentive_paid[chosen] = 0.0
    return chosen


def grant_aid(
    ledger: Ledger,
    firms: FirmTable,
    rows: np.ndarray,
    region: np.ndarray,
    development: np.ndarray,
    jobs_invested: np.ndarray,
    premises_eur: np.ndarray,
    year: int,
    rules: RegionRules,
    streams: Streams,
) -> np.ndarray:
    """Grant investment aid to investing firms (growth in place, arrival, birth).

    Eligible: the region grants aid, the sector is eligible, the firm holds no unexpired aid and
    did not leave another region in the last ``anti_relocation_years`` (GBER). The amount is
    :func:`aid_intensity` x :func:`eligible_investment`; its premises part is committed for the
    region's ``commitment_years_buildings``, the rest for ``commitment_years``. Returns the aided
    rows.
    """
    sector = firms.sector[rows]
    intensity = aid_intensity(rules, region, firms.employees[rows], development)
    eligible = (
        rules.aid_enabled[region]
        & rules.sector_eligible[sector]
        & (firms.aid_region[rows] == NO_REGION)
        & (intensity > 0)
        & relocation_allows_aid(rules, region, year - firms.last_deloc_year[rows])
    )
    granted = eligible & _chance(
        streams, firms, rows, eligible, SLOT_AID_TAKE_UP, rules.take_up[region]
    )
    aided = rows[granted]
    investment = eligible_investment(rules, sector, jobs_invested, premises_eur)
    amount = intensity[granted] * investment[granted]
    firms.aid_amount[aided] = amount
    firms.aid_buildings_eur[aided] = intensity[granted] * premises_eur[granted]
    firms.aid_year[aided] = year
    firms.aid_region[aided] = region[granted]
    firms.aid_commitment[aided] = rules.commitment_years[region[granted]]
    firms.aid_commitment_buildings[aided] = rules.commitment_years_buildings[region[granted]]
    firms.aid_jobs[aided] = firms.employees[aided]
    firms.aid_intensity[aided] = intensity[granted]
    ledger.add("aid_paid", region[granted], amount)
    return aided


def record_retention(
    ledger: Ledger,
    region: np.ndarray,
    held: np.ndarray,
    employees: np.ndarray,
    keep_with: np.ndarray,
    keep_without: np.ndarray,
    saved: np.ndarray | bool = False,
    policy_jobs: np.ndarray | float = 0.0,
) -> None:
    """Book the deadweight counterfactual of firms holding unexpired aid or incentives.

    ``held`` is the conditional money each firm holds (EUR); ``keep_with`` / ``keep_without`` its
    probability of staying in the region with and without the money it would lose by leaving;
    ``saved`` whether it is alive only thanks to a policy (its survival counterfactual: gone);
    ``policy_jobs`` the jobs the aid's extra growth gave it (its growth counterfactual). Money
    held is "anyway" (deadweight) in the share of the firm's jobs that would exist and stay in
    the region without the policy:

        anyway[i] = held[i] * keep_without[i] * (1 - saved[i])
                    * (1 - min(1, policy_jobs[i] / employees[i]))

    The deadweight share is ``sum(anyway) / sum(held)`` by region: the share of the money that
    went to jobs that would have been there anyway.
    """
    holding = held > 0
    survives = 1.0 - np.asarray(saved, np.float64)
    grown = np.minimum(1.0, np.asarray(policy_jobs, np.float64) / np.maximum(employees, 1))
    anyway = held * keep_without * survives * (1.0 - grown)
    ledger.add("aid_held", region[holding], held[holding])
    ledger.add("aid_held_anyway", region[holding], anyway[holding])
    ledger.add("jobs_retained", region[holding], ((keep_with - keep_without) * employees)[holding])
