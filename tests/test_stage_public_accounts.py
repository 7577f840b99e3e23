"""Public accounts on a hand-built table: departure cost and its settlement under each mode."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import decision as decisions
from relocsim import public_accounts as pa
from relocsim._rng import Streams
from relocsim.firms import NO_REGION, FirmTable
from relocsim.scenarios import AidPortability

YEAR = 2030
MODES = ("none", "clawback", "compensation")


def _table() -> FirmTable:
    """Four firms in region 0 about to leave for region 1.

    A: 100,000 EUR of aid from region 0, granted 2028, 5-year commitment: 0.8 still runs.
    B: aid from region 1 (not the region it leaves). C: region-0 aid whose commitment is over.
    D: a region-0 incentive of 1,000 EUR per job-year for 10 jobs until 2031, 20,000 EUR paid.
    """
    firms = FirmTable()
    firms.append(
        np.arange(4),
        sector=np.zeros(4, np.int32),
        pool=np.zeros(4, np.int32),
        employees=np.full(4, 10),
        aid_amount=np.array([100_000.0, 50_000.0, 70_000.0, 0.0]),
        aid_year=np.array([2028, 2029, 2020, 0]),
        aid_region=np.array([0, 1, 0, NO_REGION]),
        aid_commitment=np.array([5, 5, 5, 0]),
        incentive_region=np.array([NO_REGION, NO_REGION, NO_REGION, 0]),
        incentive_jobs=np.array([0, 0, 0, 10]),
        incentive_until=np.array([0, 0, 0, 2031]),
        incentive_rate=np.array([0.0, 0.0, 0.0, 1000.0]),
        incentive_paid=np.array([0.0, 0.0, 0.0, 20_000.0]),
    )
    return firms


def _portability(mode: str) -> AidPortability:
    return AidPortability(mode=mode, repayment_share=0.5, compensation_share=0.75)


ROWS = np.arange(4)
ORIGIN = np.zeros(4, np.int64)
DESTINATION = np.ones(4, np.int64)


@pytest.mark.parametrize(
    ("mode", "cost", "returned", "ledger"),
    [
        ("none", [0, 0, 0, 40_000], [0, 0, 0, 20_000], {"incentives_recovered": [20_000, 0]}),
        (
            "clawback",
            [40_000, 0, 0, 40_000],
            [40_000, 0, 0, 20_000],
            {"aid_recovered": [40_000, 0], "incentives_recovered": [20_000, 0]},
        ),
        (
            "compensation",
            [0, 0, 0, 40_000],
            [0, 0, 0, 20_000],
            {
                "compensation_paid": [0, 60_000],
                "compensation_received": [60_000, 0],
                "incentives_recovered": [20_000, 0],
            },
        ),
    ],
)
def test_settle_departures_by_hand(mode, cost, returned, ledger):
    firms = _table()
    portability = _portability(mode)
    shown = pa.departure_cost(firms, ROWS, YEAR, ORIGIN, portability).departure_cost_eur
    np.testing.assert_allclose(shown, cost)
    book = pa.Ledger(2)
    repaid = pa.settle_departures(book, firms, ROWS, ORIGIN, DESTINATION, YEAR, portability)
    np.testing.assert_allclose(repaid, returned)
    for column in pa.MONEY_COLUMNS:
        np.testing.assert_allclose(book.values[column], ledger.get(column, [0, 0]), err_msg=column)
    # contracts with the origin are closed, others kept
    assert firms.aid_region.tolist()[:4] == [NO_REGION, 1, 0, NO_REGION]
    assert firms.incentive_region[3] == NO_REGION and firms.incentive_paid[3] == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_choice_and_settlement_agree_to_the_cent(mode):
    """What a firm weighs in its choice is what it pays on leaving plus the incentive it forgoes,
    and the money the regions book is the cost's components, in every mode."""
    rng = np.random.default_rng(5)
    n = 500
    firms = FirmTable()
    firms.append(
        np.arange(n),
        sector=np.zeros(n, np.int32),
        pool=np.zeros(n, np.int32),
        employees=rng.integers(1, 50, n),
        aid_amount=rng.uniform(0, 1e6, n).round(2),
        aid_year=rng.integers(YEAR - 12, YEAR, n),
        aid_region=rng.integers(-1, 3, n),
        aid_commitment=rng.integers(1, 11, n),
        incentive_region=rng.integers(-1, 3, n),
        incentive_jobs=rng.integers(0, 40, n),
        incentive_until=rng.integers(YEAR - 2, YEAR + 6, n),
        incentive_rate=rng.uniform(0, 3000, n).round(2),
        incentive_paid=rng.uniform(0, 1e5, n).round(2),
    )
    rows, origin = np.arange(n), rng.integers(0, 3, n)
    destination = (origin + 1) % 3
    portability = _portability(mode)
    cost = pa.departure_cost(firms, rows, YEAR, origin, portability)
    book = pa.Ledger(3)
    repaid = pa.settle_departures(book, firms, rows, origin, destination, YEAR, portability)
    cents = 0.005
    np.testing.assert_allclose(cost.departure_cost_eur, repaid + cost.incentive_forgone, atol=cents)
    v = book.values
    assert abs(v["aid_recovered"].sum() - cost.aid_repaid.sum()) < cents
    assert abs(v["incentives_recovered"].sum() - cost.incentive_repaid.sum()) < cents
    assert abs(v["compensation_paid"].sum() - cost.aid_compensated.sum()) < cents
    assert abs(v["compensation_received"].sum() - v["compensation_paid"].sum()) < cents
    assert (cost.aid_repaid > 0).any() == (mode == "clawback")
    assert (cost.aid_compensated > 0).any() == (mode == "compensation")


@pytest.mark.parametrize("mode", MODES)
def test_model_charges_leavers_what_their_choice_weighed(default_scenario, monkeypatch, mode):
    """Through a whole run: every delocalising firm repays exactly the departure cost the choice
    stage gave it (incentives are off by default, so nothing is forgone)."""
    from relocsim import RelocationModel

    shown: dict[int, float] = {}
    decide = decisions.decide

    def spy(**kwargs):
        ids = kwargs["firms"].firm_id[kwargs["rows"]]
        shown.update(zip(ids.tolist(), kwargs["departure_cost_eur"].tolist(), strict=True))
        return decide(**kwargs)

    monkeypatch.setattr(decisions, "decide", spy)
    overrides = {
        "policies.aid_portability.mode": mode,
        "regions.Brussels.aid.take_up": 0.6,
        **{f"sectors.{s}.equipment_per_job_eur": 100_000 for s in default_scenario.sectors},
    }
    model = RelocationModel(default_scenario, seed=3, overrides=overrides)
    events = model.run(3).events
    last = events[events["year"] == events["year"].max()]
    leavers = last.loc[last["event"] == "delocalised", "firm_id"]
    repaid = last[(last["event"] == "repaid") & last["firm_id"].isin(leavers)]
    charged = dict(zip(repaid["firm_id"], repaid["amount_eur"], strict=True))
    assert len(leavers) > 0
    for firm in leavers:
        assert abs(shown[firm] - charged.get(firm, 0.0)) < 0.005
    assert (len(charged) > 0) == (mode == "clawback")


def test_remaining_commitment_declines_linearly():
    firms = _table()
    share = pa.remaining_commitment(firms, ROWS, YEAR)
    np.testing.assert_allclose(share, [0.8, 1.0, 0.0, 0.0])


def _rules(**changes) -> pa.RegionRules:
    """Two regions: 0 grants aid (small 15%, medium 10%, large none; +15 points in development
    zones; 5-year commitment, 10 for premises; GBER 2 years); 1 grants small 30%, large 10%."""
    values = dict(
        aid_enabled=np.array([True, True]),
        intensity=np.array([[0.15, 0.10, 0.0], [0.30, 0.20, 0.10]]),
        development_bonus=np.array([0.15, 0.0]),
        equipment_per_job=np.array([20_000.0]),
        commitment_years=np.array([5, 5], np.int32),
        commitment_years_buildings=np.array([10, 5], np.int32),
        take_up=np.array([1.0, 1.0]),
        anti_relocation_years=np.array([2, 2]),
        jobs_commitment_share=np.zeros(2),
        incentive_rate=np.zeros(2),
        incentive_years=np.array([5, 5], np.int32),
        incentive_take_up=np.zeros(2),
        sector_eligible=np.array([True]),
    )
    values.update(changes)
    return pa.RegionRules(**values)


def test_aid_is_the_eligible_investment_times_the_intensity_and_premises_stay_longer():
    """A 5-job firm takes 1,000 m2 at 100 EUR/m2 in a development zone of region 0: eligible
    investment 100,000 (premises) + 5 x 20,000 (equipment) = 200,000 EUR, intensity 15 + 15 = 30%:
    60,000 EUR of aid, 30,000 for the premises. Six years later (five decisions) the equipment
    part is free and half the premises part is still at stake."""
    firms = FirmTable()
    firms.append(np.arange(2), sector=np.zeros(2, np.int32), employees=np.array([5, 300]))
    rows = np.arange(2)
    book = pa.Ledger(2)
    aided = pa.grant_aid(
        book,
        firms,
        rows,
        np.array([0, 0]),
        np.array([True, True]),
        np.array([5.0, 300.0]),
        np.array([100_000.0, 100_000.0]),
        YEAR,
        _rules(),
        Streams(0, YEAR),
    )
    assert aided.tolist() == [0]  # Brussels-style: no aid for large firms
    assert firms.aid_amount[0] == pytest.approx(60_000.0)
    assert firms.aid_buildings_eur[0] == pytest.approx(30_000.0)
    assert book.values["aid_paid"].tolist() == pytest.approx([60_000.0, 0.0])
    np.testing.assert_allclose(pa.aid_due(firms, rows[:1], YEAR + 1), [60_000.0])
    np.testing.assert_allclose(pa.aid_due(firms, rows[:1], YEAR + 6), [15_000.0])
    cost = pa.departure_cost(firms, rows[:1], YEAR + 6, np.array([0]), _portability("clawback"))
    np.testing.assert_allclose(cost.departure_cost_eur, [0.5 * 15_000.0])
    pa.expire_contracts(firms, rows, YEAR + 6)
    assert firms.aid_region[0] == 0  # the premises commitment still runs
    pa.expire_contracts(firms, rows, YEAR + 11)
    assert firms.aid_region[0] == NO_REGION


def test_gber_rule_blocks_aid_to_recent_delocalisers_unless_switched_off():
    firms = FirmTable()
    firms.append(np.arange(1), sector=np.zeros(1, np.int32), employees=np.array([5]))
    firms.last_deloc_year[0] = YEAR

    def grant(rules):
        args = (np.array([1]), np.array([False]), np.array([5.0]), np.array([0.0]))
        return pa.grant_aid(pa.Ledger(2), firms, np.arange(1), *args, YEAR, rules, STREAMS)

    assert len(grant(_rules())) == 0
    assert len(grant(_rules(anti_relocation_years=np.array([2, 0])))) == 1


STREAMS = Streams(0, YEAR)


def test_deadweight_counts_only_jobs_that_would_be_there_anyway():
    """By hand on three holders of 100 kEUR in region 0: a firm that would have stayed with
    probability 0.9 without the money (deadweight 90 kEUR), one alive only thanks to a policy
    (none: without it, it would be gone), and one of 10 jobs of which the aid's growth made 4
    and that would stay with probability 0.5 (0.5 x 6/10 x 100 = 30 kEUR)."""
    book = pa.Ledger(2)
    held = np.full(3, 100_000.0)
    keep_with, keep_without = np.array([0.95, 0.9, 0.8]), np.array([0.9, 0.9, 0.5])
    pa.record_retention(
        book,
        np.zeros(3, np.int64),
        held,
        np.array([20, 5, 10]),
        keep_with,
        keep_without,
        saved=np.array([False, True, False]),
        policy_jobs=np.array([0, 0, 4]),
    )
    v = book.values
    assert v["aid_held"][0] == pytest.approx(300_000.0)
    assert v["aid_held_anyway"][0] == pytest.approx(90_000.0 + 0.0 + 30_000.0)
    # jobs kept from moving away stay the location channel only: 0.05 x 20 + 0 + 0.3 x 10
    assert v["jobs_retained"][0] == pytest.approx(4.0)
    assert v["aid_held"][1] == 0.0
