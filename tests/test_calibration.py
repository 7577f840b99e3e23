"""The default scenario reproduces the sourced stylised facts it was calibrated against."""

from __future__ import annotations

import pandas as pd
import pytest

from relocsim import RelocationModel, ScenarioError, apply_overrides
from relocsim.facts import load_facts, measure_facts, radius_of

REQUIRED = ("relocation_rate", "short_move_share", "brussels_out_rate", "brussels_in_out_ratio")
"""The facts the default must reproduce: relocation rate, short moves, Brussels out/in flows."""


@pytest.fixture(scope="module")
def facts(default_scenario):
    tables = []
    for seed in (0, 1, 2):
        model = RelocationModel(default_scenario, seed=seed)
        results = model.run(10)
        tables.append(measure_facts(results, radius_km=radius_of(default_scenario)))
    first_decade = [
        t[t["window"] == t["window"].iloc[0]].set_index("fact")["value"] for t in tables
    ]
    return sum(first_decade) / len(first_decade)


@pytest.mark.parametrize("key", REQUIRED)
def test_default_reproduces_the_fact(facts, key):
    fact = next(f for f in load_facts() if f.id == key)
    assert fact.contains(facts[key]), (fact.label, facts[key])


def test_larger_firms_leave_brussels_more_often(facts):
    assert facts["large_small_out_ratio"] > 1.0


def _small_firm_share(results) -> pd.Series:
    sizes = results.sizes.groupby(["year", "size_class"])["firms"].sum().unstack()
    return sizes["1-4"] / sizes.sum(axis=1)


def test_burn_in_reports_from_the_start_year_only(default_scenario):
    scenario = apply_overrides(default_scenario, {"burn_in_years": 2})
    model = RelocationModel(scenario, seed=3)
    assert model.year == scenario.start_year and model.steps == 0
    results = model.run(2)
    assert results.yearly["year"].min() == scenario.start_year
    assert results.events["year"].min() >= scenario.start_year
    assert len(model.datacollector.get_model_vars_dataframe()) == 2
    # the burn-in ran: the population aged two years more and differs from a cold start
    cold = RelocationModel(default_scenario, seed=3)
    warm_age = (model.year - model.firms.birth_year[model.firms.live_rows()]).mean()
    cold.run(2)
    cold_age = (cold.year - cold.firms.birth_year[cold.firms.live_rows()]).mean()
    assert warm_age > cold_age + 1.0
    again = RelocationModel(scenario, seed=3).run(2)
    pd.testing.assert_frame_equal(results.yearly, again.yearly)


def test_burn_in_refuses_a_scheduled_event_in_its_window(default_scenario):
    scenario = apply_overrides(default_scenario, {"burn_in_years": 10})
    scenario.plants[0].close_year = 2020
    with pytest.raises(ScenarioError, match="burn_in_years.*audi_brussels.*closes in 2020"):
        RelocationModel(scenario, seed=0)


@pytest.mark.slow
def test_burn_in_removes_the_starting_transient(default_scenario):
    """Cold start: the share of firms with 1-4 jobs climbs ~3 points in three years as the drawn
    sizes relax to what the demography keeps; after a 20-year burn-in it holds still."""
    cold = _small_firm_share(RelocationModel(default_scenario, seed=0).run(3))
    warm_scenario = apply_overrides(default_scenario, {"burn_in_years": 20})
    warm = _small_firm_share(RelocationModel(warm_scenario, seed=0).run(3))
    cold_drift = cold.iloc[-1] - cold.iloc[0]
    warm_drift = warm.iloc[-1] - warm.iloc[0]
    assert cold_drift > 0.02
    assert abs(warm_drift) < cold_drift / 3
