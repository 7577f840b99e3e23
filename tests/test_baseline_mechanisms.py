"""The baseline's mechanisms on hand-built inputs: conversion to housing as a yearly flow,
entry that follows jobs, region x sector drifts, and the re-anchored steady start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relocsim import (
    RelocationModel,
    apply_overrides,
    conversion,
    entry,
    land_market,
    regional_trends,
    space_need,
    steady_start,
)
from relocsim.firms import FirmTable
from relocsim.land_market import HA, LandState
from relocsim.provenance import scenario_hash
from relocsim.scenarios import LAND_USES
from relocsim.steady_start import standing_overrides


def _land(**changes) -> LandState:
    """Three open pools of 10 ha: a mixed and an OGSO pool of region 0, a GSI pool."""
    values = dict(
        developable_m2=np.full(3, 10 * HA),
        occupied_m2=np.array([8 * HA, 7 * HA, 5 * HA]),
        price=np.full(3, 100.0),
        open_year=np.zeros(3, np.int32),
        subsidy=np.zeros(3),
        densification=np.ones(3),
        planned_densification=np.ones(3),
        preempted=np.zeros(3, bool),
        tax_eur_m2_year=np.zeros(3),
        converted_m2=np.zeros(3),
        conversion_due_m2=np.zeros(3),
        housing_year=np.zeros(3, np.int32),
        land_use=np.array([LAND_USES.index(u) for u in ("mixed", "ogso", "gsi")]),
        new_m2_per_year=np.zeros(3),
        reference_occupancy=np.full(3, 0.8),
        reference_price=np.full(3, 100.0),
    )
    values.update(changes)
    return LandState(**values)


REGION = np.array([0, 0, 0])


def _flow(ha: float, industrial_share: float = 0.0) -> conversion.ConversionFlow:
    return conversion.ConversionFlow(np.array([ha * HA]), np.array([industrial_share]))


def test_the_yearly_flow_is_owed_by_convertible_premises_in_proportion():
    """4 ha a year from 8 + 7 ha of occupied mixed/OGSO premises: owed 32/15 and 28/15 ha,
    nothing converted yet, vacant land untouched; the GSI premises owe nothing."""
    land = _land()
    conversion.owe_yearly_flow(land, REGION, _flow(4.0), year=2030)
    np.testing.assert_allclose(land.conversion_due_m2, [4 * HA * 8 / 15, 4 * HA * 7 / 15, 0.0])
    assert land.converted_m2.sum() == 0
    np.testing.assert_allclose(land.vacant_m2, [2 * HA, 3 * HA, 5 * HA])


def test_urban_industry_premises_owe_their_share_of_the_flow():
    """With 10% owed by urban industry, the GSI premises owe 0.4 ha and the mixed/OGSO ones
    share 3.6 ha; where only urban-industry premises are left open they owe the whole flow;
    the flow owed always adds up to the region's."""
    land = _land()
    conversion.owe_yearly_flow(land, REGION, _flow(4.0, 0.1), year=2030)
    np.testing.assert_allclose(
        land.conversion_due_m2, [3.6 * HA * 8 / 15, 3.6 * HA * 7 / 15, 0.4 * HA]
    )
    only_industry = _land(open_year=np.array([2040, 2040, 0]))
    conversion.owe_yearly_flow(only_industry, REGION, _flow(4.0, 0.1), year=2030)
    np.testing.assert_allclose(only_industry.conversion_due_m2, [0.0, 0.0, 4 * HA])


def test_pre_empted_or_closed_premises_owe_nothing():
    spared = _land(preempted=np.array([True, False, True]), open_year=np.array([0, 2040, 0]))
    conversion.owe_yearly_flow(spared, REGION, _flow(4.0, 0.1), 2030)
    assert spared.conversion_due_m2.sum() == 0


def test_owed_premises_are_converted_when_released_and_the_rest_stays_productive():
    """A pool owing 3 ha: of 2 + 2 ha released there, 3 ha are converted, 1 ha joins its
    vacant 2 ha; land released in a pool that owes nothing stays productive; pre-emption stops
    the conversion."""
    land = _land(conversion_due_m2=np.array([3 * HA, 0.0, 0.0]))
    released = np.array([2 * HA, 2 * HA, 1 * HA])
    land_market.release(land, np.array([0, 0, 1]), released, conversion_rate=0.0)
    np.testing.assert_allclose(land.converted_m2, [3 * HA, 0.0, 0.0])
    np.testing.assert_allclose(land.conversion_due_m2, 0.0)
    np.testing.assert_allclose(land.vacant_m2, [3 * HA, 4 * HA, 5 * HA])
    kept = _land(
        conversion_due_m2=np.array([3 * HA, 0.0, 0.0]), preempted=np.array([1, 0, 0], bool)
    )
    land_market.release(kept, np.array([0]), np.array([2 * HA]), conversion_rate=0.0)
    assert kept.converted_m2.sum() == 0 and kept.vacant_m2[0] == pytest.approx(4 * HA)


def _firms(sector, employees) -> FirmTable:
    firms = FirmTable()
    n = len(sector)
    firms.append(
        np.arange(n),
        sector=np.array(sector, np.int32),
        pool=np.zeros(n, np.int32),
        employees=np.array(employees, np.int64),
        land_m2=np.ones(n),
        birth_year=np.full(n, 2020, np.int32),
    )
    return firms


def test_entry_weights_count_firms_or_jobs_relative_to_the_sector_mean():
    firms = _firms([0, 0, 1], [1, 9, 4])
    rows = np.arange(3)
    per_firm = np.array([5.0, 4.0])
    assert entry.incumbent_weight(firms, rows, 0.0, per_firm) is None
    np.testing.assert_allclose(entry.incumbent_weight(firms, rows, 1.0, per_firm), [0.2, 1.8, 1])
    np.testing.assert_allclose(entry.incumbent_weight(firms, rows, 0.5, per_firm), [0.6, 1.4, 1])


def test_density_response_falls_as_a_zone_fills_its_start():
    counts = np.array([100.0, 200.0, 50.0, 30.0, 5_000.0])
    start = np.array([100.0, 100.0, 100.0, 0.0, 100.0])
    np.testing.assert_array_equal(entry.density_response(counts, start, 0.0), np.ones(5))
    # at its start 1, twice as full 2 ** -0.5, half as full 2 ** 0.5; a zone that had no firms
    # at the start (a site opening later) keeps 1; the ratio stops at 10
    np.testing.assert_allclose(
        entry.density_response(counts, start, 0.5),
        [1.0, 2**-0.5, 2**0.5, 1.0, 10**-0.5],
    )
    zones = entry.zone_firms(_firms([0, 0, 1], [1, 9, 4]), np.array([0, 2]), np.zeros(1, int), 2)
    np.testing.assert_array_equal(zones, [2.0, 0.0])


def test_a_zone_twice_as_full_as_at_its_start_breeds_half_as_many_firms(default_scenario):
    """Same seed and state: with the elasticity at 1, halving a zone's start count (so that it
    holds twice its start) about halves its births and changes no other zone's; with the
    elasticity at 0 the start count does nothing."""
    from relocsim.model import YearFlow
    from relocsim.public_accounts import Ledger

    def births_by_zone(elasticity: float, halve: bool) -> np.ndarray:
        model = RelocationModel(
            default_scenario, seed=0, overrides={"behaviour.birth_density_elasticity": elasticity}
        )
        zone = model.geo.zone_names.index("fl_east")
        if halve:
            model.start_zone_firms[zone] /= 2
        flow = YearFlow(ledger=Ledger(len(model.geo.region_names)))
        model._demography(flow)
        n_sectors = len(model.geo.sector_names)
        zones = flow.newborns.cell // n_sectors
        return np.bincount(zones, minlength=len(model.geo.zone_names)), zone

    plain, zone = births_by_zone(0.0, halve=False)
    np.testing.assert_array_equal(births_by_zone(0.0, halve=True)[0], plain)
    dense, _ = births_by_zone(1.0, halve=False)
    crowded, _ = births_by_zone(1.0, halve=True)
    assert dense[zone] > 500
    assert crowded[zone] == pytest.approx(dense[zone] / 2, rel=0.1)
    others = np.arange(len(plain)) != zone
    np.testing.assert_array_equal(crowded[others], dense[others])


def test_jobs_per_firm_of_the_default(default_scenario):
    names = list(default_scenario.sectors)
    per_firm = entry.jobs_per_firm(default_scenario, names)
    heavy = [c for c in default_scenario.population if c.sector == "heavy_industry"]
    expected = sum(c.jobs for c in heavy) / sum(c.firms for c in heavy)
    assert per_firm[names.index("heavy_industry")] == pytest.approx(expected)


def test_a_regional_drift_shift_acts_on_its_cell_only(default_scenario):
    """A Brussels heavy-industry shift of -0.2 a year shrinks that cell within three years and
    leaves the sector elsewhere as it was (same seed, cold start)."""
    cold = {"burn_in_years": 0}
    shifted = {**cold, "population.Brussels.heavy_industry.growth_drift_shift": -0.2}
    model = RelocationModel(default_scenario, seed=1, overrides=shifted)
    table = regional_trends.drift_shift_table(model.scenario, model.geo)
    geo = model.geo
    brussels, heavy = geo.region_id("Brussels"), geo.sector_names.index("heavy_industry")
    assert table[brussels, heavy] == -0.2
    jobs = {}
    for name, overrides in (("base", cold), ("shifted", shifted)):
        yearly = RelocationModel(default_scenario, seed=1, overrides=overrides).run(3).yearly
        heavy_jobs = yearly[(yearly["year"] == 2027) & (yearly["sector"] == "heavy_industry")]
        jobs[name] = heavy_jobs.set_index("region")["jobs"]
    assert jobs["shifted"]["Brussels"] < 0.8 * jobs["base"]["Brussels"]
    assert jobs["shifted"]["Wallonia"] == pytest.approx(jobs["base"]["Wallonia"], rel=0.02)


def test_population_cells_are_addressable_by_dotted_path(default_scenario):
    path = "population.Wallonia.logistics.jobs"
    changed = apply_overrides(default_scenario, {path: 40_000})
    cell = next(c for c in changed.population if (c.region, c.sector) == ("Wallonia", "logistics"))
    assert cell.jobs == 40_000
    original = next(
        c for c in default_scenario.population if (c.region, c.sector) == ("Wallonia", "logistics")
    )
    assert original.jobs == 38_000


def test_the_burn_in_ignores_policy_levers_only():
    overrides = {
        "policies.aid_portability.mode": "none",
        "regions.Brussels.aid.take_up": 0.5,
        "regions.Brussels.incentive_eur_per_job_year": 500.0,
        "zones.bxl_canal_port.land_subsidy": 0.3,
        "zones.bxl_canal_port.densification": 0.8,
        "sectors.logistics.birth_rate": 0.1,
        "behaviour.b_size": 0.2,
    }
    assert standing_overrides(overrides) == {
        "sectors.logistics.birth_rate": 0.1,
        "behaviour.b_size": 0.2,
    }


SHORT = {"burn_in_years": 3}


def test_steady_start_is_re_anchored_to_the_sourced_jobs_and_land(default_scenario):
    """After a burn-in, each region x sector cell holds its population.csv jobs (within the
    largest firm the burn-in left in it: the draw stops at the firm closest to the target),
    every pool its land.csv vacant land, every firm its own id, and a policy lever changes none
    of it."""
    scenario = apply_overrides(default_scenario, SHORT)
    model = RelocationModel(scenario, seed=2)
    firms, geo = model.firms, model.geo
    burnt = steady_start._burnt[(scenario_hash(scenario), 2, SHORT["burn_in_years"])].firms

    def cell_rows(table: FirmTable, cell) -> np.ndarray:
        live = table.live_rows()
        live = live[table.close_year[live] == 0]
        return live[
            (geo.pool_region[table.pool[live]] == geo.region_id(cell.region))
            & (table.sector[live] == geo.sector_names.index(cell.sector))
        ]

    for cell in scenario.population:
        rows = cell_rows(firms, cell)
        largest = burnt.employees[cell_rows(burnt, cell)].max()
        assert abs(firms.employees[rows].sum() - cell.jobs) <= largest, cell
    live = firms.live_rows()
    vacant = [
        scenario.land[geo.zone_names[z]][LAND_USES[u]].vacant_ha
        for z, u in zip(geo.pool_zone, geo.pool_use, strict=True)
    ]
    np.testing.assert_allclose(model.land.vacant_m2 / HA, vacant, atol=1e-6)
    assert len(np.unique(firms.firm_id[live])) == len(live)
    assert firms.birth_year[live].min() < scenario.start_year - 3  # ages kept from the burn-in
    policy = RelocationModel(scenario, seed=2, overrides={"policies.aid_portability.mode": "none"})
    other = policy.firms.live_rows()
    np.testing.assert_array_equal(policy.firms.firm_id[other], firms.firm_id[live])
    np.testing.assert_array_equal(policy.firms.employees[other], firms.employees[live])


def test_re_anchored_premises_fit_the_need_at_the_sourced_prices(default_scenario):
    """The burn-in moves prices and land use per job with them; re-anchored to the sourced
    prices, firms hold premises that fit their need there (median within 5%), so the first year
    does not shed a wave of surplus land (firms above 1.3 x their need give back the rest): at
    most 2.5% of a region's occupied land. Without re-expressing the premises, the median
    Brussels firm of the session-7 default held 10% more than its need and 3.8% of Brussels'
    land was surplus (seed 0)."""
    model = RelocationModel(default_scenario, seed=0)
    firms, geo, land = model.firms, model.geo, model.land
    live = firms.live_rows()
    live = live[firms.close_year[live] == 0]
    need = space_need.standard_need_m2(firms, live, model.land_per_job)
    need *= land.densification[firms.pool[live]]
    held = firms.land_m2[live]
    region = geo.pool_region[firms.pool[live]]
    surplus = np.where(held > space_need.SURPLUS_TOLERANCE * need, held - need, 0.0)
    for r, name in enumerate(geo.region_names):
        mine = region == r
        assert abs(np.median(held[mine] / need[mine]) - 1.0) < 0.05, name
        assert surplus[mine].sum() < 0.025 * held[mine].sum(), name


def assert_firms_hold_the_occupied_land(model: RelocationModel) -> None:
    """Land is neither created nor lost by bookkeeping: what live firms hold adds up to the land
    occupied in every pool."""
    live = model.firms.live_rows()
    held = np.bincount(
        model.firms.pool[live],
        weights=model.firms.land_m2[live],
        minlength=len(model.land.occupied_m2),
    )
    np.testing.assert_allclose(held, model.land.occupied_m2, rtol=1e-9, atol=1e-3)


@pytest.mark.slow
def test_where_land_is_rationed_firms_bid_it_up_and_fit_more_jobs_on_it(default_scenario):
    """The default turns newborns away for lack of land in Flanders. Rationed firms bid the
    price up (shortfall_price_elasticity: Flemish land ends dearer), and with firms also using
    less land per job where it is dear (need_price_elasticity) fewer newborns go unplaced; the
    land firms hold still adds up to the land occupied in every pool. (With both, the price
    can end where it started: the land saved per job relieves the rationing that bids it up.)"""

    def run(need: float, shortfall: float) -> tuple[RelocationModel, pd.DataFrame]:
        changes = {
            **SHORT,
            "land_market.need_price_elasticity": need,
            "land_market.shortfall_price_elasticity": shortfall,
        }
        model = RelocationModel(apply_overrides(default_scenario, changes), seed=0)
        yearly = model.run(12).yearly
        return model, yearly[yearly["region"] == "Flanders"]

    fixed, fixed_years = run(0.0, 0.0)
    bid, _ = run(0.0, 0.3)
    priced, priced_years = run(0.6, 0.3)
    flemish = fixed.geo.pool_region == fixed.geo.region_id("Flanders")
    assert bid.land.price[flemish].mean() > 1.05 * fixed.land.price[flemish].mean()
    assert priced_years["births_unplaced"].sum() < 0.8 * fixed_years["births_unplaced"].sum()
    assert (priced.land.densification[flemish] < 1.0).any()
    np.testing.assert_array_equal(fixed.land.densification, fixed.land.planned_densification)
    assert_firms_hold_the_occupied_land(priced)


@pytest.mark.slow
def test_developers_buy_out_premises_that_owe_conversion(default_scenario):
    """With a Brussels flow four times the sourced one, firms do not release enough mixed and
    OGSO premises and the conversion falls behind. A developers' premium on the owed share of
    premises makes leaving pay: more of the flow is converted, less stays owed, and the land
    firms hold still adds up to the land occupied in every pool."""

    def run(premium: float) -> tuple[RelocationModel, float]:
        changes = {
            **SHORT,
            "regions.Brussels.conversion_ha_per_year": 20.0,
            "land_market.conversion_premium_eur_m2": premium,
        }
        model = RelocationModel(apply_overrides(default_scenario, changes), seed=0)
        zones = model.run(10).zones
        brussels = zones[(zones["region"] == "Brussels") & (zones["year"] == zones["year"].max())]
        return model, float(brussels["converted_ha"].sum())

    held_on, converted_without = run(0.0)
    bought_out, converted_with = run(4000.0)
    assert converted_without < 0.9 * 20.0 * 10
    assert converted_with > converted_without + 5.0
    assert bought_out.land.conversion_due_m2.sum() < held_on.land.conversion_due_m2.sum()
    assert_firms_hold_the_occupied_land(bought_out)


@pytest.mark.slow
def test_new_land_slows_where_land_stands_vacant(default_scenario):
    """Where more land stands vacant than at the start, developers equip less of the planned
    flow (supply_vacancy_elasticity): Wallonia, whose parks start with land to spare, ends with
    less developable and less vacant land than under the planned flow, and the land firms hold
    still adds up to the land occupied in every pool."""

    def run(elasticity: float) -> RelocationModel:
        changes = {**SHORT, "land_market.supply_vacancy_elasticity": elasticity}
        model = RelocationModel(apply_overrides(default_scenario, changes), seed=0)
        model.run(12)
        return model

    planned, responsive = run(0.0), run(4.0)
    wallonia = planned.geo.pool_region == planned.geo.region_id("Wallonia")
    assert responsive.land.developable_m2[wallonia].sum() < (
        planned.land.developable_m2[wallonia].sum() - 20 * HA
    )
    assert responsive.land.vacant_m2[wallonia].sum() < planned.land.vacant_m2[wallonia].sum()
    assert_firms_hold_the_occupied_land(responsive)


def test_burnt_in_states_are_kept_by_memory_so_seed_pairs_find_theirs(
    default_scenario, monkeypatch
):
    """The dashboard rebuilds its seed pairs after each lever change: with the burn-ins of the
    ten seeds kept, a rebuild burns none in again; past the memory bound the oldest goes, but
    the state just burnt in always stays."""
    scenario = apply_overrides(default_scenario, SHORT)
    monkeypatch.setattr(steady_start, "_burnt", type(steady_start._burnt)())
    burns = []
    real_burn = steady_start._burn

    def counted(*args):
        burns.append(args[2].seed)
        return real_burn(*args)

    monkeypatch.setattr(steady_start, "_burn", counted)
    lever = "zones.bxl_canal_port.land_subsidy"
    for subsidy in (0.0, 0.3):
        for seed in range(10):
            RelocationModel(scenario, seed=seed, overrides={lever: subsidy})
    assert burns == list(range(10)), "the second round found every seed's burn-in"
    monkeypatch.setattr(steady_start, "CACHE_BYTES", 1)
    RelocationModel(scenario, seed=10)
    assert [key[1] for key in steady_start._burnt] == [10]
