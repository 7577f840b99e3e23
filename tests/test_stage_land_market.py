"""Land market on a hand-built pair of pools: one price step, release and conversion, cost."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import land_market as lm
from relocsim.scenarios import LAND_USES, LandMarket


def _land(**changes) -> lm.LandState:
    """Two open pools of 10 ha at 100 EUR/m2: pool 0 industrial (GSI), pool 1 mixed."""
    values = dict(
        developable_m2=np.array([100_000.0, 100_000.0]),
        occupied_m2=np.array([90_000.0, 50_000.0]),
        price=np.array([100.0, 100.0]),
        open_year=np.array([0, 0], np.int32),
        subsidy=np.array([0.0, 0.25]),
        densification=np.array([1.0, 0.5]),
        planned_densification=np.array([1.0, 0.5]),
        preempted=np.array([False, False]),
        tax_eur_m2_year=np.array([2.0, 0.0]),
        converted_m2=np.zeros(2),
        conversion_due_m2=np.zeros(2),
        housing_year=np.zeros(2, np.int32),
        land_use=np.array([LAND_USES.index("gsi"), LAND_USES.index("mixed")]),
        new_m2_per_year=np.array([0.0, 1_000.0]),
        reference_occupancy=np.array([0.8, 0.5]),
        reference_price=np.array([100.0, 100.0]),
    )
    values.update(changes)
    return lm.LandState(**values)


def test_one_price_step_by_hand():
    """Pool 0 is 10 points above its reference occupancy: its price rises by exp(0.5 * 0.1);
    pool 1 sits at its reference and its price at the reference price: no change."""
    land = _land()
    market = LandMarket(price_elasticity=0.5, price_reversion=0.15, max_price_change=0.1)
    lm.update_prices(land, market, year=2030)
    assert land.price[0] == pytest.approx(100.0 * np.exp(0.05))
    assert land.price[1] == pytest.approx(100.0)


def test_price_change_is_capped_and_reverts():
    land = _land(occupied_m2=np.array([100_000.0, 50_000.0]), price=np.array([100.0, 200.0]))
    market = LandMarket(price_elasticity=5.0, price_reversion=0.1, max_price_change=0.1)
    lm.update_prices(land, market, year=2030)
    assert land.price[0] == pytest.approx(100.0 * np.exp(0.1))  # 5 * 0.2 = 1.0, capped
    assert land.price[1] == pytest.approx(200.0 * np.exp(-0.1 * np.log(2.0)))


def test_release_loses_a_share_of_mixed_land_to_housing_unless_preempted():
    land = _land()
    lm.release(land, np.array([0, 1]), np.array([10_000.0, 10_000.0]), conversion_rate=0.3)
    np.testing.assert_allclose(land.occupied_m2, [80_000.0, 40_000.0])
    np.testing.assert_allclose(land.developable_m2, [100_000.0, 97_000.0])
    np.testing.assert_allclose(land.converted_m2, [0.0, 3_000.0])
    kept = _land(preempted=np.array([False, True]))
    lm.release(kept, np.array([1]), np.array([10_000.0]), conversion_rate=0.3)
    assert kept.developable_m2[1] == 100_000.0


def test_cost_per_m2_and_offer_by_hand():
    land = _land()
    market = LandMarket(tax_capitalisation_years=10.0, retained_share=0.3, speculation_response=10)
    # (price net of subsidy + 10 years of tax) x densification
    np.testing.assert_allclose(lm.cost_per_m2(land, market), [120.0, 37.5])
    # 30% of the vacant land held back; a 5% speculation tax halves that
    np.testing.assert_allclose(lm.offered_m2(land, 2030, market, 0.0), [7_000.0, 35_000.0])
    np.testing.assert_allclose(lm.offered_m2(land, 2030, market, 0.05), [8_500.0, 42_500.0])
    lm.zone_new_land(land, market, 2030)
    np.testing.assert_allclose(land.developable_m2, [100_000.0, 101_000.0])


@pytest.mark.parametrize(
    "occupied, expected_new",
    [
        (50_000.0, 1_000.0),  # at its reference vacancy (50%): the planned flow
        (60_000.0, 1_000.0),  # scarcer than the reference: still the plan, never more
        (75_000.0, 1_000.0),
        (0.0, 1_000.0 * 0.5**2),  # all vacant (100% against 50%): (0.5 / 1) ** 2
        (37_500.0, 1_000.0 * 0.8**2),  # 62.5% vacant: (0.5 / 0.625) ** 2
    ],
)
def test_new_land_slows_where_land_stands_vacant(occupied: float, expected_new: float):
    land = _land(occupied_m2=np.array([90_000.0, occupied]))
    lm.zone_new_land(land, LandMarket(supply_vacancy_elasticity=2.0), 2030)
    np.testing.assert_allclose(land.developable_m2, [100_000.0, 100_000.0 + expected_new])


def test_new_land_ignores_vacancy_without_a_supply_response():
    land = _land(occupied_m2=np.array([90_000.0, 0.0]))
    lm.zone_new_land(land, LandMarket(supply_vacancy_elasticity=0.0), 2030)
    np.testing.assert_allclose(land.developable_m2, [100_000.0, 101_000.0])


def test_unmet_demand_bids_the_price_up_where_occupancy_alone_would_not():
    """Both pools sit at their reference occupancy and price: without a shortfall nothing moves;
    firms turned away for lack of land (here 2 ha against 5 ha offered in the region) raise
    the price by exp(0.5 x 0.4)."""
    land = _land(occupied_m2=np.array([80_000.0, 50_000.0]))
    market = LandMarket(
        price_elasticity=0.5,
        price_reversion=0.15,
        max_price_change=0.5,
        shortfall_price_elasticity=0.5,
    )
    lm.update_prices(land, market, 2030, np.zeros(2))
    np.testing.assert_allclose(land.price, [100.0, 100.0])
    shortfall = lm.shortfall(
        pool_region=np.array([0, 1]),
        offered=np.array([50_000.0, 0.0]),
        unmet_pools=np.array([0, 0]),
        unmet_m2=np.array([5_000.0, 15_000.0]),
    )
    np.testing.assert_allclose(shortfall, [0.4, 0.0])
    lm.update_prices(land, market, 2030, shortfall)
    np.testing.assert_allclose(land.price, [100.0 * np.exp(0.2), 100.0])


def test_a_region_offering_no_land_counts_one_hectare():
    shortfall = lm.shortfall(np.array([0, 1]), np.zeros(2), np.array([1]), np.array([5_000.0]))
    np.testing.assert_allclose(shortfall, [0.0, 0.5])


def test_firms_use_less_land_per_job_where_land_is_dear():
    """With elasticity 0.5 a price 44% above its start cuts land per job to 1/1.2 of the
    planned densification; at elasticity 0 land per job ignores the price."""
    for elasticity, expected in ((0.5, 1 / 1.2), (0.0, 1.0)):
        land = _land(occupied_m2=np.array([80_000.0, 50_000.0]), price=np.array([144.0, 100.0]))
        market = LandMarket(
            price_elasticity=0.0, price_reversion=0.0, need_price_elasticity=elasticity
        )
        lm.update_prices(land, market, 2030)
        np.testing.assert_allclose(land.densification, [expected, 0.5])
        np.testing.assert_allclose(land.planned_densification, [1.0, 0.5])


def test_premises_owed_to_conversion_sell_at_the_developers_premium():
    """Pool 1 (mixed, 5 ha occupied) owes 1 ha to conversion: a fifth of every premises there.
    A firm selling 1,000 m2 gets the price plus 10 years of tax (0 here) plus 1,500 EUR/m2 on
    its 200 m2 share; pre-emption, which stops conversion, takes the premium away."""
    land = _land(conversion_due_m2=np.array([0.0, 10_000.0]))
    market = LandMarket(conversion_premium_eur_m2=1_500.0, tax_capitalisation_years=10.0)
    pools, m2 = np.array([0, 1]), np.array([1_000.0, 1_000.0])
    value = lm.premises_value(land, market, pools, m2)
    assert value[0] == pytest.approx(1_000.0 * (100.0 + 2.0 * 10.0))
    assert value[1] == pytest.approx(1_000.0 * 100.0 + 200.0 * 1_500.0)
    assert lm.premises_value(_land(), market, pools, m2)[1] == pytest.approx(100_000.0)
    preempted = _land(
        conversion_due_m2=np.array([0.0, 10_000.0]), preempted=np.array([False, True])
    )
    assert lm.premises_value(preempted, market, pools, m2)[1] == pytest.approx(100_000.0)
