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
    # the burn-in ran before the first reported year: firms were born in it (ids past the drawn
    # population) and the live population differs from a cold start's. (The mean age is not a
    # test of it: under the calibrated demography the drawn ages are close to stationary.)
    warm_start = RelocationModel(scenario, seed=3).firms
    cold_start = RelocationModel(default_scenario, seed=3).firms
    warm_live, cold_live = warm_start.live_rows(), cold_start.live_rows()
    assert warm_start.firm_id[warm_live].max() > cold_start.firm_id[cold_live].max()
    assert len(warm_live) != len(cold_live)
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


# ---- issue 9's definition of done for the recalibrated default. After the recalibration
# (docs/calibration.md, "Recalibration of brussels-metro") 13 of the 20 targets are in range in
# every decade; births, the share of interregional moves involving Brussels, the growth of the
# firm stock, the size gradient of leavers in 2045-54 and three land/industry facts still miss.
# Strict xfail makes the test fail loudly once they all hold, so that the mark is removed then.

RECALIBRATION = (
    "7 of 20 targets miss a decade after the recalibration of brussels-metro (docs/calibration.md)"
)
REGION_TRENDS = {
    "Brussels": "brussels_jobs_growth",
    "Flanders": "flanders_jobs_growth",
    "Wallonia": "wallonia_jobs_growth",
}


@pytest.fixture(scope="module")
def baseline_30_years(default_scenario):
    """The default over 30 years, seeds 0-2: measured facts per decade, mean jobs by region."""
    measured, jobs = [], []
    for seed in (0, 1, 2):
        results = RelocationModel(default_scenario, seed=seed).run(30)
        table = measure_facts(results, radius_km=radius_of(default_scenario))
        measured.append(table.assign(seed=seed))
        jobs.append(results.yearly.groupby(["year", "region"])["jobs"].sum().unstack())
    return pd.concat(measured, ignore_index=True), sum(jobs) / len(jobs)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=RECALIBRATION)
def test_every_targeted_fact_in_range_in_every_decade(baseline_30_years):
    from relocsim.validate import summarise

    measured, _ = baseline_30_years
    summary = summarise(measured, load_facts())
    targets = summary[summary["role"] == "target"]
    missed = targets[targets["in_range"] != True]  # noqa: E712 (None: not measurable)
    assert missed.empty, missed[["fact", "window", "low", "high", "mean"]].to_string()


@pytest.mark.slow
def test_region_jobs_stay_within_their_sourced_trend(baseline_30_years):
    """Every year, jobs relative to the first year stay within the sourced yearly trend's range
    compounded, +- 3%."""
    _, jobs = baseline_30_years
    facts = {f.id: f for f in load_facts()}
    years = jobs.index - jobs.index[0]
    for region, fact_id in REGION_TRENDS.items():
        fact = facts[fact_id]
        path = jobs[region] / jobs[region].iloc[0]
        low = (1 + fact.low) ** years * 0.97
        high = (1 + fact.high) ** years * 1.03
        outside = path[(path < low) | (path > high)]
        assert outside.empty, (region, outside.round(3).to_dict())
