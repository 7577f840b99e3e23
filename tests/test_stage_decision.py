"""The aid on offer in the group-by-pool utility, worked out by hand on two regions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from test_stage_public_accounts import _rules

from relocsim import decision as decisions

POOL_REGION = np.array([0, 1])


def _groups() -> decisions.ChoiceGroups:
    params = decisions.ChoiceParameters(
        **{name: np.array([1.0]) for name in decisions.ChoiceParameters.__dataclass_fields__}
    )
    # one incumbent of region 0 with 7 jobs (size class 1, typical 7), one newborn of region 0
    return decisions.ChoiceGroups.of(
        np.array([0, 0]), np.array([0, 0]), np.array([7, 7]), params, 0.0, 2, np.array([0, 1])
    )


def _offer(**rules) -> decisions.AidOnOffer:
    return decisions.AidOnOffer(
        rules=_rules(**rules),
        price=np.array([100.0, 50.0]),
        densification=np.array([1.0, 1.0]),
        development=np.array([True, False]),
        land_per_job=np.array([100.0]),
    )


def test_aid_on_offer_by_hand():
    """A 7-job firm: 700 m2 and 140,000 EUR of equipment. In pool 0 (region 0, development zone,
    100 EUR/m2): (70,000 + 140,000) x 30% = 63,000 EUR. In pool 1 (region 1, 50 EUR/m2):
    (35,000 + 140,000) x 30% = 52,500 EUR, but an incumbent leaving region 0 is barred by the GBER
    rule; a newborn is not."""
    groups = _groups()
    offer = groups.aid_on_offer(_offer(), POOL_REGION)
    incumbent, newborn = groups.group
    assert offer[incumbent].tolist() == pytest.approx([63_000.0, 0.0])
    assert offer[newborn].tolist() == pytest.approx([63_000.0, 52_500.0])
    open_border = groups.aid_on_offer(_offer(anti_relocation_years=np.array([2, 0])), POOL_REGION)
    assert open_border[incumbent].tolist() == pytest.approx([63_000.0, 52_500.0])


def test_aid_on_offer_enters_the_group_utility_at_the_weight_of_money():
    groups = _groups()
    sector_utility = np.zeros((1, 2))
    border = np.zeros((2, 2))
    without = groups.expand(sector_utility, border, POOL_REGION)
    with_aid = groups.expand(sector_utility, border, POOL_REGION, _offer(), 1e6)
    incumbent, newborn = groups.group
    # b_land = 1 per MEUR at the reference size (no size elasticity here)
    np.testing.assert_allclose(with_aid - without, groups.aid_on_offer(_offer(), POOL_REGION) / 1e6)
    assert with_aid[newborn, 1] > without[newborn, 1]


def test_growing_in_place_costs_the_stay_branch_its_land_at_the_weight_of_money(
    default_scenario, monkeypatch
):
    """Through a model year: a grower's stay utility is -nest_scale x b_land(size) x K / money,
    K its extra land at the pool's cost per m2 (decision.py's docstring), 0 for other firms; a
    dearer stay makes growers (and only them) move more, with the same random draws."""
    from relocsim import RelocationModel
    from relocsim.choice import STAY

    seen = {}
    decide = decisions.decide

    def spy(**kwargs):
        answer = decide(**kwargs)
        dearer = decide(**{**kwargs, "stay_cost_eur": kwargs["stay_cost_eur"] * 20})
        # the deciders' sectors and sizes now: the firm table may be compacted later in the year
        firms, rows = kwargs["firms"], kwargs["rows"]
        deciders = (firms.sector[rows].copy(), firms.employees[rows].copy())
        seen.update(kwargs=kwargs, answer=answer, dearer=dearer, deciders=deciders)
        return answer

    monkeypatch.setattr(decisions, "decide", spy)
    model = RelocationModel(default_scenario, seed=1)
    model.step()
    kwargs, answer, dearer = seen["kwargs"], seen["answer"], seen["dearer"]
    cost = kwargs["stay_cost_eur"]
    growing = cost > 0
    assert growing.sum() > 100
    rows = kwargs["rows"]
    sector, employees = seen["deciders"]
    size_class = np.searchsorted(decisions.SIZE_BOUNDS, employees, side="right")
    b = default_scenario.behaviour
    weight = (decisions.REFERENCE_SIZE / decisions.TYPICAL_SIZE[size_class]) ** (
        b.money_size_elasticity
    )
    params = model.choice_parameters
    money = params.nest_scale[sector] * params.b_land[sector] * weight / b.money_scale_eur
    expected = -money * cost
    np.testing.assert_allclose(answer.stay_utility, expected, rtol=1e-12, atol=0)
    n = len(rows)
    stays = answer.result.choice[:n] == STAY
    stays_dearer = dearer.result.choice[:n] == STAY
    assert (stays_dearer[~growing] == stays[~growing]).mean() > 0.999
    assert stays_dearer[growing].sum() < stays[growing].sum()


def test_growers_that_stay_pay_for_their_land_and_movers_do_not(default_scenario):
    """What growers in place paid (yearly ``land_paid_eur``) is the sum of their ``grew`` events,
    each its extra land at the price net of the subsidy; no firm both grew in place and moved in
    the same year."""
    from relocsim import RelocationModel

    results = RelocationModel(default_scenario, seed=2).run(3)
    events, yearly = results.events, results.yearly
    grew = events[events["event"] == "grew"]
    assert (grew["amount_eur"] > 0).all()
    by_year = grew.groupby("year")["amount_eur"].sum()
    np.testing.assert_allclose(
        yearly.groupby("year")["land_paid_eur"].sum().to_numpy(), by_year.to_numpy(), atol=30
    )
    moved = events[events["event"].isin(["moved", "delocalised"])]
    both = grew.merge(moved, on=["year", "firm_id"])
    assert len(both) == 0


def test_larger_firms_that_move_leave_their_region_more_often_with_b_size_deloc(
    default_scenario, monkeypatch
):
    """Through a model year: b_size_deloc adds b_size_deloc x log(employees) to an incumbent's
    other-regions nest only (decision.py's docstring); with the same random draws, the firms of
    100+ jobs choose the other-regions nest more often relative to firms of 1-4 jobs."""
    from dataclasses import replace

    from relocsim import RelocationModel

    seen = {}
    decide = decisions.decide

    def spy(**kwargs):
        behaviour = replace(kwargs["behaviour"], b_size_deloc=0.0)
        flat = decide(**{**kwargs, "behaviour": behaviour})
        steep = decide(**{**kwargs, "behaviour": replace(behaviour, b_size_deloc=0.6)})
        firms, rows = kwargs["firms"], kwargs["rows"]
        seen.update(flat=flat, steep=steep, employees=firms.employees[rows].copy())
        return flat

    monkeypatch.setattr(decisions, "decide", spy)
    RelocationModel(default_scenario, seed=1).step()
    flat, steep, employees = seen["flat"], seen["steep"], seen["employees"]
    np.testing.assert_allclose(
        steep.other_utility - flat.other_utility, 0.6 * np.log(employees), rtol=1e-12
    )
    np.testing.assert_array_equal(steep.own_utility, flat.own_utility)
    np.testing.assert_array_equal(steep.stay_utility, flat.stay_utility)
    n = len(employees)
    small, large = employees < 5, employees >= 100
    assert large.sum() > 200

    def ratio(answer) -> float:
        leaves = answer.result.nest[:n] == 2
        return leaves[large].mean() / leaves[small].mean()

    assert ratio(steep) > 1.5 * ratio(flat)


def test_choice_travel_time_scales_moves_inside_the_region_only():
    """Zones 0 and 1 in region 0, zone 2 in region 1: the own-region scale multiplies the
    minutes of the region-0 block and of zone 2's own diagonal, nothing across regions."""
    from relocsim.geography import choice_travel_time

    minutes = np.array([[5.0, 10.0, 40.0], [10.0, 6.0, 35.0], [40.0, 35.0, 8.0]])
    geo = SimpleNamespace(zone_region=np.array([0, 0, 1]), travel_time=minutes)
    expected = np.array([[15.0, 30.0, 40.0], [30.0, 18.0, 35.0], [40.0, 35.0, 24.0]])
    np.testing.assert_array_equal(choice_travel_time(geo, 3.0), expected)
    np.testing.assert_array_equal(choice_travel_time(geo, 1.0), minutes)


def test_a_steeper_own_region_distance_decay_shortens_moves_inside_the_region(
    default_scenario, monkeypatch
):
    """Through a model year, with the same random draws: at three times the distance coefficient
    inside the region, firms moving inside their region move less far on average, fewer firms
    move inside their region, and the firms that leave their region under both settings still
    choose the same destinations (the other-regions nest's own choice is untouched)."""
    from dataclasses import replace

    from relocsim import RelocationModel

    seen = {}
    decide = decisions.decide

    def spy(**kwargs):
        behaviour = kwargs["behaviour"]
        flat = decide(**{**kwargs, "behaviour": replace(behaviour, own_region_distance_scale=1.0)})
        steep = decide(**{**kwargs, "behaviour": replace(behaviour, own_region_distance_scale=3.0)})
        geo, firms, rows = kwargs["geo"], kwargs["firms"], kwargs["rows"]
        seen.update(flat=flat, steep=steep, geo=geo, origin=geo.pool_zone[firms.pool[rows]])
        return flat

    monkeypatch.setattr(decisions, "decide", spy)
    RelocationModel(default_scenario, seed=1).step()
    flat, steep, geo, origin = (seen[k] for k in ("flat", "steep", "geo", "origin"))
    n = len(origin)

    def inside(answer) -> tuple[np.ndarray, np.ndarray]:
        moved = answer.result.nest[:n] == 1
        km = geo.distance_km[origin[moved], geo.pool_zone[answer.result.choice[:n][moved]]]
        return moved, km

    (flat_moved, flat_km), (steep_moved, steep_km) = inside(flat), inside(steep)
    assert flat_moved.sum() > 1000
    assert steep_km.mean() < 0.8 * flat_km.mean()
    assert steep_moved.sum() < flat_moved.sum()

    def leaving_km(answer) -> np.ndarray:
        left = answer.result.nest[:n] == 2
        return geo.distance_km[origin[left], geo.pool_zone[answer.result.choice[:n][left]]]

    flat_leaving, steep_leaving = leaving_km(flat), leaving_km(steep)
    assert len(flat_leaving) > 50
    assert abs(steep_leaving.mean() / flat_leaving.mean() - 1) < 0.1
