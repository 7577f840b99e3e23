"""The default scenario reproduces the sourced stylised facts it was calibrated against."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from relocsim import RelocationModel, ScenarioError, apply_overrides
from relocsim.demography import YEAR_SPAN
from relocsim.facts import load_facts, measure_facts, radius_of

REQUIRED = (
    "relocation_rate",
    "short_move_share",
    "brussels_small_out_per_1000",
    "brussels_large_out_per_1000",
    "brussels_in_out_ratio",
)
"""The facts the default must reproduce: relocation rate, short moves, Brussels leavers per
1,000 small and large firms, Brussels in/out flows."""


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
    # the burn-in ran before the first reported year: firms were born in it (ids in the year
    # blocks of the burn-in, relocsim.steady_start) and the live population differs from a cold
    # start's.
    warm_start = RelocationModel(scenario, seed=3).firms
    cold_start = RelocationModel(default_scenario, seed=3, overrides={"burn_in_years": 0}).firms
    warm_live, cold_live = warm_start.live_rows(), cold_start.live_rows()
    burn_in_born = warm_start.firm_id[warm_live] // YEAR_SPAN > -scenario.burn_in_years
    assert burn_in_born.any() and (cold_start.firm_id[cold_live] >= 0).all()
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
    cold_scenario = apply_overrides(default_scenario, {"burn_in_years": 0})
    cold = _small_firm_share(RelocationModel(cold_scenario, seed=0).run(3))
    warm_scenario = apply_overrides(default_scenario, {"burn_in_years": 20})
    warm = _small_firm_share(RelocationModel(warm_scenario, seed=0).run(3))
    cold_drift = cold.iloc[-1] - cold.iloc[0]
    warm_drift = warm.iloc[-1] - warm.iloc[0]
    assert cold_drift > 0.02
    assert abs(warm_drift) < cold_drift / 3


# ---- issue 9's definition of done for the recalibrated default. With the session-20 estimates
# (docs/calibration.md, "Session 20": density-dependent founding) all 20 targets are in range in
# every decade (60 of 60 fact-decades, mean of seeds 0-2), three of them within 0.01 points a year
# of their range's end: the firm stock's growth in 2025-34 (0.996% a year, at most 1%), Brussels
# jobs over the first five years of 2025-34 (-0.90%, at least -1%) and Walloon jobs in 2045-54
# (1.36%, at most 1.5%). Other seed sets miss 2-3 of the 60 (seeds 0-11: 58 of 60).
REGION_TRENDS = {
    "Brussels": "brussels_jobs_growth",
    "Flanders": "flanders_jobs_growth",
    "Wallonia": "wallonia_jobs_growth",
}


@dataclass
class Baseline:
    """The default over 30 years, seeds 0-2.

    Attributes:
        measured: facts per decade and seed.
        jobs, firms: mean over seeds by year (rows) and region (columns).
        start_jobs, start_firms: the same at the start (jobs without the plants that close in
            the first year: a scheduled shock, not a transient).
        large_age_start, large_age_end: mean age of firms with 100+ jobs (plants left out) at
            the start and after 30 years, mean over seeds.
        brussels_price: Brussels' land price by year (EUR/m2, weighted by occupied land), mean
            over seeds.
    """

    measured: pd.DataFrame
    jobs: pd.DataFrame
    firms: pd.DataFrame
    start_jobs: pd.Series
    start_firms: pd.Series
    large_age_start: float
    large_age_end: float
    brussels_price: pd.Series


def _start_by_region(model: RelocationModel) -> tuple[pd.Series, pd.Series]:
    firms, geo = model.firms, model.geo
    live = firms.live_rows()
    live = live[firms.close_year[live] != model.scenario.start_year]
    region = pd.Series(np.asarray(geo.region_names)[geo.pool_region[firms.pool[live]]])
    jobs = pd.Series(firms.employees[live]).groupby(region).sum().astype(float)
    return jobs, region.value_counts().astype(float)


def _large_firm_age(model: RelocationModel) -> float:
    firms = model.firms
    live = firms.live_rows()
    large = live[(firms.employees[live] >= 100) & (firms.close_year[live] == 0)]
    return float(np.mean(model.year - firms.birth_year[large]))


def _brussels_price(zones: pd.DataFrame) -> pd.Series:
    brussels = zones[zones["region"] == "Brussels"]
    value = (brussels["price_eur_m2"] * brussels["occupied_ha"]).groupby(brussels["year"]).sum()
    return value / brussels.groupby("year")["occupied_ha"].sum()


@pytest.fixture(scope="module")
def baseline_30_years(default_scenario) -> Baseline:
    measured, jobs, firms, start_jobs, start_firms = [], [], [], [], []
    age_start, age_end, brussels_price = [], [], []
    for seed in (0, 1, 2):
        model = RelocationModel(default_scenario, seed=seed)
        first_jobs, first_firms = _start_by_region(model)
        start_jobs.append(first_jobs)
        start_firms.append(first_firms)
        age_start.append(_large_firm_age(model))
        results = model.run(30)
        age_end.append(_large_firm_age(model))
        brussels_price.append(_brussels_price(results.zones))
        table = measure_facts(results, radius_km=radius_of(default_scenario))
        measured.append(table.assign(seed=seed))
        by_region = results.yearly.groupby(["year", "region"])[["jobs", "firms"]].sum()
        jobs.append(by_region["jobs"].unstack())
        firms.append(by_region["firms"].unstack())
    return Baseline(
        pd.concat(measured, ignore_index=True),
        sum(jobs) / 3,
        sum(firms) / 3,
        sum(start_jobs) / 3,
        sum(start_firms) / 3,
        float(np.mean(age_start)),
        float(np.mean(age_end)),
        sum(brussels_price) / 3,
    )


@pytest.mark.slow
def test_every_targeted_fact_in_range_in_every_decade(baseline_30_years):
    from relocsim.validate import summarise

    measured = baseline_30_years.measured
    summary = summarise(measured, load_facts())
    targets = summary[summary["role"] == "target"]
    missed = targets[targets["in_range"] != True]  # noqa: E712 (None: not measurable)
    assert missed.empty, missed[["fact", "window", "low", "high", "mean"]].to_string()


@pytest.mark.slow
def test_no_targeted_fact_is_decidedly_out_of_range(baseline_30_years):
    """What three seeds can decide of issue 9's bar: no target's mean, in any decade, lies out of
    its range beyond the 95% confidence interval of the seeds (relocsim validate's ``decided``).
    Even a model centred in every range would miss some fact-decade on three seeds two times in
    three (docs/calibration.md, "Session 11"); a decided miss is the model's, not the seeds'."""
    decided_out = _decided_out(baseline_30_years)
    assert decided_out.empty, decided_out[["fact", "window", "low", "high", "mean"]].to_string()


def _decided_out(baseline: Baseline) -> pd.DataFrame:
    from relocsim.validate import summarise

    summary = summarise(baseline.measured, load_facts())
    targets = summary[summary["role"] == "target"]
    return targets[(targets["in_range"] == False) & targets["decided"]]  # noqa: E712


@pytest.mark.slow
def test_region_jobs_stay_within_their_sourced_trend(baseline_30_years):
    """Every year, jobs relative to the first year stay within the sourced yearly trend's range
    compounded, +- 3%."""
    jobs = baseline_30_years.jobs
    facts = {f.id: f for f in load_facts()}
    years = jobs.index - jobs.index[0]
    for region, fact_id in REGION_TRENDS.items():
        fact = facts[fact_id]
        path = jobs[region] / jobs[region].iloc[0]
        low = (1 + fact.low) ** years * 0.97
        high = (1 + fact.high) ** years * 1.03
        outside = path[(path < low) | (path > high)]
        assert outside.empty, (region, outside.round(3).to_dict())


FIRST_YEAR_TOLERANCE = 0.01
"""A region's jobs may move in the first year by its sourced yearly trend's range +- 1 point."""
FIRM_COUNT_TOLERANCE = 0.15
"""A region's firms may drift from the sourced growth of the employer stock compounded by 15%."""


@pytest.mark.slow
@pytest.mark.parametrize("region", ["Brussels", "Flanders", "Wallonia"])
def test_no_region_carries_a_transient_in_the_first_year(baseline_30_years, region):
    """Steady start (issue 9): jobs in the first year move no more than the region's sourced
    yearly trend + 1 point (mean of 3 seeds; the Audi closure, a scheduled shock, left out)."""
    base = baseline_30_years
    fact = next(f for f in load_facts() if f.id == REGION_TRENDS[region])
    first = base.jobs.iloc[0] / base.start_jobs - 1.0
    low, high = fact.low - FIRST_YEAR_TOLERANCE, fact.high + FIRST_YEAR_TOLERANCE
    assert low <= first[region] <= high, (region, round(first[region], 4), (low, high))


@pytest.mark.slow
@pytest.mark.parametrize("region", ["Brussels", "Flanders", "Wallonia"])
def test_firm_counts_stay_within_the_sourced_stock_growth(baseline_30_years, region):
    """Every year, each region's firms relative to the start stay within the sourced yearly
    growth of the employer stock (-0.5% to +1%, ONSS 2019-2023) compounded, +- 15% (a cold start
    leaves it: Walloon firms +61% in 30 years against at most +56%)."""
    base = baseline_30_years
    fact = next(f for f in load_facts() if f.id == "firm_stock_growth")
    path = base.firms[region] / base.start_firms[region]
    years = path.index - path.index[0] + 1
    low = (1 + fact.low) ** years * (1 - FIRM_COUNT_TOLERANCE)
    high = (1 + fact.high) ** years * (1 + FIRM_COUNT_TOLERANCE)
    outside = path[(path < low) | (path > high)]
    assert outside.empty, (region, outside.round(3).to_dict())


LARGE_AGE_TOLERANCE = 0.2
"""The mean age of firms with 100+ jobs may move by 20% over 30 years."""


@pytest.mark.slow
def test_large_firms_start_at_the_age_the_model_keeps(baseline_30_years):
    """Steady start (issue 9): the mean age of firms with 100+ jobs after 30 years is within 20%
    of its start. Drawn blind to size, they started at about 20 years and aged to about 48,
    and their leaving fell with their age."""
    base = baseline_30_years
    ratio = base.large_age_end / base.large_age_start
    assert abs(ratio - 1.0) <= LARGE_AGE_TOLERANCE, (base.large_age_start, base.large_age_end)


BRUSSELS_PRICE_TOLERANCE = 0.1
"""Brussels' land price may move by 10% over 30 years: no trend of it is sourced, and the sources
describe scarcity (stylised-facts.md: 485 ha of unbuilt land in 1997, 257 ha in 2013)."""
BRUSSELS_PRICE = (
    "Brussels' land price falls 20% in 12 years and 31% in 30 with the session-20 estimates "
    "(seeds 0-2; 23% and 33% with session 13's, 23% and 34% with session 11's) while its vacant "
    "land grows: at the sourced prices the model keeps Brussels' industrial land a third empty, as "
    "exits free land in pieces births take back a quarter of (docs/calibration.md, 'Session 10')"
)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=BRUSSELS_PRICE)
def test_brussels_land_price_holds_without_a_sourced_trend(baseline_30_years):
    """Steady start (issue 9): with no policy change, Brussels' land price stays within 10% of
    its first year's over 30 years."""
    price = baseline_30_years.brussels_price
    ratio = price / price.iloc[0]
    outside = ratio[(ratio - 1.0).abs() > BRUSSELS_PRICE_TOLERANCE]
    assert outside.empty, outside.round(3).to_dict()
