"""Direction of policy effects, averaged over seeds, on the default scenario."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import RelocationModel

SECTORS = (
    "heavy_industry",
    "material_production",
    "immaterial_production",
    "high_tech",
    "green_circular",
    "logistics",
)

SEEDS = (0, 1, 2, 3)
INDUSTRY = ("heavy_industry", "material_production", "green_circular")

AIDED = {
    "regions.Brussels.aid.take_up": 0.6,
    "regions.Brussels.aid.commitment_years": 8,
    "regions.Brussels.aid.intensity_small": 0.3,
    "regions.Brussels.aid.intensity_medium": 0.2,
    **{f"sectors.{s}.equipment_per_job_eur": 100_000 for s in SECTORS},
    "policies.aid_portability.repayment_share": 1.0,
}
"""Generous Brussels aid, so that enough aided firms face the choice to leave."""


def _runs(scenario, years, overrides, seeds=SEEDS):
    return [RelocationModel(scenario, seed=s, overrides=overrides).run(years) for s in seeds]


@pytest.fixture(scope="module")
def portability_runs(default_scenario):
    return {
        mode: _runs(default_scenario, 8, {**AIDED, "policies.aid_portability.mode": mode})
        for mode in ("none", "clawback", "compensation")
    }


def _brussels(results, column):
    yearly = results.yearly
    return yearly.loc[yearly["region"] == "Brussels", column].sum()


def test_clawback_lowers_delocalisations_of_aided_firms(portability_runs):
    none = np.mean([_brussels(r, "aided_delocalisations") for r in portability_runs["none"]])
    clawback = np.mean(
        [_brussels(r, "aided_delocalisations") for r in portability_runs["clawback"]]
    )
    assert none > 0
    assert clawback < 0.93 * none  # about 4 standard errors of the seed average


def test_money_flows_follow_the_portability_mode(portability_runs):
    def total(mode, column):
        return sum(r.accounts[column].sum() for r in portability_runs[mode])

    assert total("none", "aid_recovered") == 0
    assert total("clawback", "aid_recovered") > 0
    assert total("compensation", "aid_recovered") == 0
    paid = total("compensation", "compensation_paid")
    assert paid > 0
    assert paid == pytest.approx(total("compensation", "compensation_received"))
    net = sum(r.accounts["net_transfer"].sum() for r in portability_runs["compensation"])
    assert net == pytest.approx(0.0, abs=1e-6)


def test_deadweight_is_a_share_and_clawback_retains_jobs(portability_runs):
    for mode, runs in portability_runs.items():
        for results in runs:
            share = results.accounts["deadweight_share"].dropna()
            assert ((share >= 0) & (share <= 1)).all(), mode
    retained = np.mean([r.accounts["jobs_retained"].sum() for r in portability_runs["clawback"]])
    assert retained > 0
    assert all(
        r.accounts["jobs_retained"].sum() == pytest.approx(0.0, abs=1e-9)
        for r in portability_runs["none"]
    )


def _entrants(results, zone):
    """Firms born in or moving into ``zone`` from another zone."""
    events = results.events
    into = (
        events["event"].isin(["moved", "delocalised", "born"])
        & (events["to_zone"] == zone)
        & (events["from_zone"] != zone)
    )
    return into.sum()


def _final(results, zone, column):
    zones = results.zones
    return zones.loc[(zones["zone"] == zone) & (zones["year"] == zones["year"].max()), column].iloc[
        0
    ]


def test_cheaper_land_draws_firms(default_scenario):
    """A land price subsidy on a zone with room draws more entrants, jobs and land use there."""
    zone = "bxl_canal_south"
    room = {f"land.{zone}.gsi.vacant_ha": 200}
    base = _runs(default_scenario, 6, room, seeds=(0, 1, 2))
    cheap = _runs(default_scenario, 6, {**room, f"zones.{zone}.land_subsidy": 0.5}, seeds=(0, 1, 2))
    assert np.mean([_entrants(r, zone) for r in cheap]) > np.mean(
        [_entrants(r, zone) for r in base]
    )
    assert np.mean([_final(r, zone, "occupied_ha") for r in cheap]) > np.mean(
        [_final(r, zone, "occupied_ha") for r in base]
    )
    assert np.mean([r.accounts["land_subsidy_paid"].sum() for r in cheap]) > 0
    assert np.mean([r.accounts["land_subsidy_paid"].sum() for r in base]) == 0


def _industrial_jobs_brussels(results):
    yearly = results.yearly
    last = yearly[(yearly["year"] == yearly["year"].max()) & (yearly["region"] == "Brussels")]
    return last.loc[last["sector"].isin(INDUSTRY), "jobs"].sum()


def test_opening_the_audi_site_adds_industrial_jobs_in_brussels(default_scenario):
    housing = _runs(
        default_scenario, 10, {"zones.bxl_audi_vorst.site_option": "housing"}, seeds=(0, 1, 2)
    )
    park = _runs(
        default_scenario, 10, {"zones.bxl_audi_vorst.site_option": "subdivided"}, seeds=(0, 1, 2)
    )
    investor = _runs(
        default_scenario, 10, {"zones.bxl_audi_vorst.site_option": "single"}, seeds=(0, 1, 2)
    )
    closed = np.mean([_industrial_jobs_brussels(r) for r in housing])
    assert np.mean([_industrial_jobs_brussels(r) for r in park]) > closed
    assert np.mean([_industrial_jobs_brussels(r) for r in investor]) > closed
    converted = housing[0].zones
    audi = converted[(converted["zone"] == "bxl_audi_vorst")]
    assert audi["converted_ha"].max() > 40


def test_preemption_stops_conversion_to_housing(default_scenario):
    zone = "bxl_mixed_enterprise"
    plain = RelocationModel(default_scenario, seed=4).run(5).zones
    kept = (
        RelocationModel(default_scenario, seed=4, overrides={f"zones.{zone}.preemption": True})
        .run(5)
        .zones
    )
    assert plain.loc[plain["zone"] == zone, "converted_ha"].max() > 0
    assert kept.loc[kept["zone"] == zone, "converted_ha"].max() == 0


def test_job_keeping_incentive_is_paid_and_keeps_firms(default_scenario):
    incentive = {
        "regions.Brussels.incentive_eur_per_job_year": 3000,
        "regions.Brussels.incentive_take_up": 0.5,
    }
    base = _runs(default_scenario, 6, {}, seeds=(0, 1, 2))
    paid = _runs(default_scenario, 6, incentive, seeds=(0, 1, 2))
    accounts = paid[0].accounts
    assert accounts.loc[accounts["region"] == "Brussels", "incentives_paid"].sum() > 0
    # firms leave less often, and more of them are kept alive in Brussels: the count of leavers
    # can rise (seeds 0-2: 1,152 against 1,120) because more firms are there to leave, so the
    # rate per firm-year is what shows the incentive holding firms back (20.7 against 22.0)
    firm_years = [np.sum([_brussels(r, "firms") for r in runs]) for runs in (paid, base)]
    leavers = [np.sum([_brussels(r, "delocalisations") for r in runs]) for runs in (paid, base)]
    assert firm_years[0] > firm_years[1]
    assert leavers[0] / firm_years[0] < leavers[1] / firm_years[1]


def test_aid_with_a_jobs_condition_is_clawed_back_on_breach(default_scenario):
    conditional = {
        **AIDED,
        "policies.aid_portability.mode": "none",
        "regions.Brussels.aid.jobs_commitment_share": 1.0,
        "policies.monitoring": 1.0,
    }
    plain = {**AIDED, "policies.aid_portability.mode": "none"}

    def recovered(results):
        accounts = results.accounts
        return accounts.loc[accounts["region"] == "Brussels", "aid_recovered"].sum()

    with_condition = RelocationModel(default_scenario, seed=1, overrides=conditional).run(5)
    without = RelocationModel(default_scenario, seed=1, overrides=plain).run(5)
    assert recovered(without) == 0
    assert recovered(with_condition) > 0
    repaid = with_condition.events[with_condition.events["event"] == "repaid"]
    assert (repaid["amount_eur"] > 0).all() and len(repaid) > 0


SYMMETRIC_INCENTIVES = {
    f"regions.{region}.{name}": value
    for region in ("Brussels", "Flanders")
    for name, value in (("incentive_eur_per_job_year", 2000.0), ("incentive_take_up", 0.5))
}
"""The same job-keeping incentive in Brussels and Flanders."""
FLAT_REGIONAL_TRENDS = {
    f"population.Brussels.{sector}.growth_drift_shift": 0.0 for sector in SECTORS
}
"""No regional drift: a mover keeps its sector's trend wherever it goes."""
LAND_RESPONSES_OFF = {
    "behaviour.growth_stress_penalty": 0.0,
    "behaviour.birth_vacancy_elasticity": 0.0,
    "behaviour.birth_price_elasticity": 0.0,
}


def _paired(scenario, base, seeds=(0, 1), years=6):
    """(policy - base) total jobs at the end, and the policy run's own accounting of the jobs
    it created: the stock of jobs in saved firms, the extra growth, and the births lost."""
    out = []
    for seed in seeds:
        runs = [
            RelocationModel(scenario, seed=seed, overrides=o).run(years)
            for o in (base, {**base, **SYMMETRIC_INCENTIVES})
        ]
        end = [r.yearly[r.yearly["year"] == r.yearly["year"].max()] for r in runs]
        last = runs[1].accounts[runs[1].accounts["year"] == runs[1].accounts["year"].max()]
        out.append(
            {
                "diff": end[1]["jobs"].sum() - end[0]["jobs"].sum(),
                "total": end[0]["jobs"].sum(),
                "saved": last["jobs_in_saved_firms"].sum(),
                "growth": runs[1].accounts["jobs_created_growth"].sum()
                - runs[0].accounts["jobs_created_growth"].sum(),
                "born": runs[1].yearly["jobs_born"].sum() - runs[0].yearly["jobs_born"].sum(),
            }
        )
    return out


@pytest.mark.slow
def test_symmetric_incentives_move_jobs_but_create_none_without_the_survival_channel(
    default_scenario,
):
    # regional trends off: a firm that moves out of Brussels takes its new region's drift, a
    # channel that creates or destroys jobs by moving (about 250 jobs in 6 years here)
    base = {"behaviour.exit_incentive_semi_elasticity": 0.0, **FLAT_REGIONAL_TRENDS}
    for run in _paired(default_scenario, base):
        assert run["saved"] == 0
        # moving jobs between regions creates none: the total changes only by the newborns that
        # land taken by movers crowds out and the policy's extra growth (within 0.05%), and stays
        # within 0.4% (births near their sourced 10-11% a year since the recalibrations, so more
        # newborns compete for the land: 0.33% with the session-7 estimates, seed 0)
        assert abs(run["diff"] - run["born"] - run["growth"]) < 0.0005 * run["total"]
        assert abs(run["diff"]) < 0.004 * run["total"]


@pytest.mark.slow
def test_jobs_created_by_incentives_are_what_their_channels_account_for(default_scenario):
    """With the survival channel on, the paired change in total jobs is the jobs of firms alive
    only thanks to the incentive, plus the policy's extra growth, less the newborns the land
    those firms keep crowds out."""
    base = {"behaviour.exit_incentive_semi_elasticity": 0.5, **LAND_RESPONSES_OFF}
    for run in _paired(default_scenario, base):
        assert run["diff"] > 0.02 * run["total"]
        accounted = run["saved"] + run["growth"] + run["born"]
        assert run["diff"] == pytest.approx(accounted, rel=0.1)
        assert run["born"] < 0  # crowding out: the saved firms keep land newborns needed


@pytest.mark.slow
def test_aid_on_offer_draws_firms_when_the_anti_relocation_rule_is_off(default_scenario):
    """Generous Flemish aid attracts Brussels firms only once the GBER anti-relocation rule stops
    barring delocalisers from it: the aid on offer is in the location choice. Flemish vacant
    land x 10: in the calibrated default the Flemish land on offer is taken every year, so more
    applicants change who is placed, not how many (session 5, seeds 0-5: -13 to +27 extra
    leavers to Flanders in 4 years without slack; session 7, seeds 0-3: +21 to +78 with x 5,
    +56 to +89, 10-14%, with x 10)."""
    slack = {
        f"land.{zone}.{use}.vacant_ha": 10 * pool.vacant_ha
        for zone, pools in default_scenario.land.items()
        if default_scenario.zones[zone].region == "Flanders"
        for use, pool in pools.items()
    }
    generous = {
        "regions.Flanders.aid.take_up": 1.0,
        "regions.Flanders.aid.intensity_small": 0.6,
        "regions.Flanders.aid.intensity_medium": 0.5,
        **slack,
    }
    for seed in (0, 1):
        leavers = []
        for anti in (2, 0):
            overrides = {**generous, "regions.Flanders.aid.anti_relocation_years": anti}
            flows = RelocationModel(default_scenario, seed=seed, overrides=overrides).run(4).flows
            to_flanders = (flows["origin_region"] == "Brussels") & (
                flows["destination_region"] == "Flanders"
            )
            leavers.append(flows.loc[to_flanders, "firms"].sum())
        barred, open_to_them = leavers
        assert open_to_them > 1.05 * barred, (seed, leavers)


@pytest.mark.parametrize("commitment_years", [3, 5, 10])
def test_aid_growth_boost_totals_the_cited_effect_whatever_the_commitment(
    default_scenario, commitment_years
):
    """The boost is the intensity spread over the aid's commitment: it runs for those years only,
    not for the longer premises commitment (10 years in Brussels), so its sum over the years is
    the semi-elasticity times the intensity."""
    model = RelocationModel(default_scenario, seed=0)
    firms, behaviour = model.firms, model.scenario.behaviour
    small = firms.live_rows()[firms.employees[firms.live_rows()] < 20][:5]
    brussels = model.geo.region_names.index("Brussels")
    firms.aid_region[small] = brussels
    firms.aid_year[small] = model.year - 1
    firms.aid_amount[small] = 100_000.0
    firms.aid_buildings_eur[small] = 60_000.0
    firms.aid_commitment[small] = commitment_years
    firms.aid_commitment_buildings[small] = 10
    firms.aid_intensity[small] = 0.3
    total = np.zeros(len(small))
    for year in range(model.year, model.year + 12):
        model.year = year
        total += model._policy_terms(small).aid_boost
    np.testing.assert_allclose(total, behaviour.aid_growth_semi_elasticity * 0.3)
