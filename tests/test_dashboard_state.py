"""Dashboard logic without a browser: levers, sessions, indicators, figures, downloads, CLI."""

from __future__ import annotations

import io
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from relocsim import load_scenario
from relocsim.dashboard import figures
from relocsim.dashboard.cli import main as dashboard_main
from relocsim.dashboard.cli import server_command, server_environment
from relocsim.dashboard.state import (
    BRUSSELS_PRODUCTIVE_ZONES,
    INDICATOR_NAMES,
    LEVERS,
    MATERIAL_SECTORS,
    URBAN_INDUSTRY_ZONES,
    Indicators,
    Session,
    available_levers,
    default_policy,
    policy_overrides,
    scenario_value,
)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("brussels-metro")


def test_the_compare_command_measures_the_same_comparison(scenario, tmp_path, capsys):
    """A (aid mode none, Brussels land subsidised) against B (the clawback, the same subsidy and
    an incentive): the command's baseline is A, its policy B, and it runs as it reads."""
    import shlex
    import zipfile

    from relocsim.cli import main, parse_set
    from relocsim.scenarios import apply_overrides

    base = default_policy(scenario)
    a = {**base, "aid_mode": "none", "land_subsidy": 0.5}
    b = {**base, "land_subsidy": 0.5, "incentive": 1250.0}
    session = Session(scenario, [a, b], seed=4, horizon=3, pairs=1)
    words = shlex.split(session.compare_command())
    assert words[:4] == ["relocsim", "compare", "--scenario", "brussels-metro"]
    assert words[-4:] == ["--seed", "4", "--years", "3"]
    flags = list(zip(words[4:-4:2], words[5:-4:2], strict=True))
    base_set = parse_set([v for flag, v in flags if flag == "--base-set"])
    policy = parse_set([v for flag, v in flags if flag == "--set"])
    assert "policies.aid_portability.mode" in policy  # B goes back to the scenario's mode
    for run, changes in zip(session.runs, (base_set, {**base_set, **policy}), strict=True):
        rebuilt = apply_overrides(scenario, changes)
        expected = apply_overrides(scenario, policy_overrides(scenario, run.policy))
        for lever in LEVERS:
            for path in lever.paths:
                assert scenario_value(rebuilt, path) == scenario_value(expected, path), path
    assert main([*words[1:], "--seeds", "2", "--out", str(tmp_path), "--dry-run"]) == 0
    assert "4 runs" in capsys.readouterr().out
    session.step()
    with zipfile.ZipFile(io.BytesIO(session.tables_zip())) as archive:
        assert archive.read("compare_command.txt").decode().strip() == shlex.join(words)
    assert Session(scenario, [a, dict(a)], horizon=1, pairs=1).compare_command() is None
    assert Session(scenario, [a], horizon=1).compare_command() is None


@pytest.fixture(scope="module")
def compared(scenario):
    """The default policy and one subsidising Brussels land by half, on three seeds, two years
    each."""
    base = default_policy(scenario)
    session = Session(scenario, [base, {**base, "land_subsidy": 0.5}], seed=3, horizon=2, pairs=3)
    while session.step():
        pass
    return session


def test_every_lever_path_exists_and_defaults_come_from_the_scenario(scenario):
    assert available_levers(scenario) == LEVERS
    policy = default_policy(scenario)
    assert policy["aid_mode"] == scenario.policies.aid_portability.mode
    assert policy["audi_site"] == scenario.zones["bxl_audi_vorst"].site_option
    assert policy_overrides(scenario, policy) == {}


def test_a_lever_sets_all_its_paths(scenario):
    policy = {**default_policy(scenario), "land_subsidy": 0.5, "preemption": True}
    overrides = policy_overrides(scenario, policy)
    for zone in BRUSSELS_PRODUCTIVE_ZONES:
        assert overrides[f"zones.{zone}.land_subsidy"] == 0.5
        assert overrides[f"zones.{zone}.preemption"] is True
    session = Session(scenario, [policy], seed=0, horizon=1)
    model = session.runs[0].model
    assert scenario_value(model.scenario, "zones.bxl_canal_port.land_subsidy") == 0.5


def test_the_reservation_switch_sets_the_sector_lists(scenario):
    """A switch whose scenario values are sector lists: off is the scenario's (no reservation),
    on reserves both urban-industry zones for material production in the run."""
    policy = default_policy(scenario)
    assert policy["reserved"] is False
    overrides = policy_overrides(scenario, {**policy, "reserved": True})
    assert overrides == {
        f"zones.{zone}.reserved_for": MATERIAL_SECTORS for zone in URBAN_INDUSTRY_ZONES
    }
    model = Session(scenario, [{**policy, "reserved": True}], seed=0, horizon=1).runs[0].model
    zone = model.geo.zone_id("bxl_canal_south")
    barred = model.geo.reserved_out[:, model.geo.pool_zone == zone].any(axis=1)
    assert [n for n, b in zip(model.geo.sector_names, barred, strict=True) if b] == [
        "immaterial_production",
        "high_tech",
    ]


def test_session_steps_to_the_horizon_and_stops(compared, scenario):
    assert compared.finished
    assert compared.years_done == 2
    assert compared.next_year == scenario.start_year + 2
    assert compared.step() is False
    yearly = compared.runs[0].tables["yearly"]
    assert sorted(yearly["year"].unique()) == [scenario.start_year, scenario.start_year + 1]
    assert set(compared.runs[0].tables) == {"yearly", "flows", "zones", "accounts"}


def test_live_tables_equal_the_model_results(compared):
    run = compared.runs[0]
    results = run.results()
    for name, table in run.tables.items():
        pd.testing.assert_frame_equal(
            table.reset_index(drop=True), getattr(results, name).reset_index(drop=True)
        )


def test_indicators_and_difference(compared):
    """Compare mode: each policy's mean over the seed pairs, and B - A paired by seed with the
    t-interval of the paired differences (one pair cannot tell an effect from the seed)."""
    assert compared.pairs == 3
    pairs = [compared.runs, *compared.other_pairs]
    assert [[run.model.seed for run in pair] for pair in pairs] == [[3, 3], [4, 4], [5, 5]]
    a, b = compared.indicators()
    assert a.year == compared.next_year - 1
    assert a.jobs > 0 and a.low_skilled_jobs > 0 and a.delocalisations >= 0
    assert 0 <= a.deadweight_share <= 1 or math.isnan(a.deadweight_share)
    by_pair = [[run.indicators() for run in pair] for pair in pairs]
    assert a.jobs == pytest.approx(np.mean([pa.jobs for pa, _ in by_pair]))
    diffs = compared.difference()
    for name in INDICATOR_NAMES:
        d = np.array([getattr(pb, name) - getattr(pa, name) for pa, pb in by_pair])
        d = d[~np.isnan(d)]
        diff = diffs[name]
        assert diff.pairs == len(d)
        if len(d) == 0:
            assert math.isnan(diff.mean)
            continue
        assert diff.mean == pytest.approx(d.mean())
        if len(d) > 1:
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            assert (diff.low, diff.high) == pytest.approx((d.mean() - half, d.mean() + half))
    jobs = diffs["jobs"]
    assert jobs.low < jobs.mean < jobs.high and jobs.mde > 0, "the seeds differ"


def test_the_effect_by_year_ends_on_the_cards_difference(compared, scenario):
    """The Jobs view's B - A by year: one row per simulated year, its last the card's."""
    effect = compared.effect_by_year("Brussels", "jobs")
    assert effect["year"].tolist() == [scenario.start_year, scenario.start_year + 1]
    card = compared.difference()["jobs"]
    last = effect.iloc[-1]
    assert (last["mean"], last["low"], last["high"]) == pytest.approx(
        (card.mean, card.low, card.high)
    )
    assert last["pairs"] == 3
    low_skilled = compared.effect_by_year("Brussels", "low_skilled_jobs").iloc[-1]
    assert low_skilled["mean"] == pytest.approx(compared.difference()["low_skilled_jobs"].mean)
    assert figures.effect_figure({"Brussels jobs": effect}).axes
    assert figures.effect_figure({}).axes  # before a year: a note, not an error


def test_the_effect_read_mid_year_keeps_the_years_every_run_has_done(scenario):
    """The page draws while the worker steps the pairs one run after the other."""
    base = default_policy(scenario)
    session = Session(scenario, [base, {**base, "land_subsidy": 0.5}], horizon=3, pairs=2)
    session.step()
    session.other_pairs[0][0].step()  # the worker is half-way through the second year
    effect = session.effect_by_year()
    assert effect["year"].tolist() == [scenario.start_year]
    assert effect["pairs"].tolist() == [2]


def test_one_pair_gives_no_interval_and_one_policy_runs_once(scenario):
    base = default_policy(scenario)
    one_pair = Session(scenario, [base, {**base, "land_subsidy": 0.5}], horizon=1, pairs=1)
    one_pair.step()
    jobs = one_pair.difference()["jobs"]
    assert jobs.pairs == 1 and math.isnan(jobs.low) and not jobs.told_from_zero
    assert Session(scenario, [base], horizon=1, pairs=5).pairs == 1
    with pytest.raises(ValueError, match="pairs 0"):
        Session(scenario, [base, base], pairs=0)


def test_same_policy_same_seed_gives_the_same_run(scenario):
    base = default_policy(scenario)
    session = Session(scenario, [base, dict(base)], seed=5, horizon=1, pairs=2)
    session.step()
    a, b = session.indicators()
    assert a.year == b.year
    for name in INDICATOR_NAMES:
        assert getattr(a, name) == pytest.approx(getattr(b, name), nan_ok=True)
    jobs = session.difference()["jobs"]
    assert (jobs.mean, jobs.low, jobs.high, jobs.pairs) == (0, 0, 0, 2)
    assert not jobs.told_from_zero


def test_indicators_before_any_year_are_empty(scenario):
    session = Session(scenario, [default_policy(scenario)], seed=0, horizon=1)
    assert session.indicators() == [Indicators()]
    assert session.difference() is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_zip(compared, fmt):
    with zipfile.ZipFile(io.BytesIO(compared.tables_zip(fmt))) as archive:
        names = set(archive.namelist())
        assert {f"A_yearly.{fmt}", f"B_accounts.{fmt}", "policies.csv"} <= names
        with archive.open(f"A_yearly.{fmt}") as handle:
            data = io.BytesIO(handle.read())
        table = pd.read_csv(data) if fmt == "csv" else pd.read_parquet(data)
        assert len(table) == len(compared.runs[0].tables["yearly"])
        with archive.open("difference.csv") as handle:
            difference = pd.read_csv(handle).set_index("indicator")
        with archive.open("difference_by_year.csv") as handle:
            by_year = pd.read_csv(handle)
    card = compared.difference()["jobs"]
    assert difference.loc["jobs", ["mean", "low", "high", "mde"]].tolist() == pytest.approx(
        [card.mean, card.low, card.high, card.mde]
    )
    assert difference.loc["jobs", "seeds"] == "3-5" and difference.loc["jobs", "pairs"] == 3
    last = by_year[(by_year["region"] == "Brussels") & (by_year["measure"] == "jobs")].iloc[-1]
    assert last["mean"] == pytest.approx(card.mean)
    assert set(by_year["region"]) == {"Brussels", "Flanders", "Wallonia"}


def test_figures_draw_with_and_without_data(compared, scenario):
    regions = list(scenario.regions)
    tables = compared.runs[0].tables
    assert figures.jobs_figure(tables["yearly"]).axes
    assert figures.flows_figure(tables["flows"], regions, last_year_only=True).axes
    assert figures.zones_figure(tables["zones"], "price").axes
    assert figures.accounts_figure(tables["accounts"]).axes
    for make in (figures.jobs_figure, figures.zones_figure, figures.accounts_figure):
        assert make(None).axes
    with zipfile.ZipFile(io.BytesIO(figures.figures_zip({"A": tables}, regions))) as archive:
        assert "A_zones_occupancy.png" in archive.namelist()


def test_cli_command_and_errors(capsys):
    command = server_command(8123, "127.0.0.1")
    # the page by module name, without the working directory on sys.path: started in a source
    # checkout, the server must import the installed relocsim, not the checkout's folder
    assert command[1:6] == ["-P", "-m", "solara", "run", "relocsim.dashboard.app"]
    assert "--production" in command and "8123" in command
    env = server_environment("brussels-metro")
    assert env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"
    assert env["RELOCSIM_DASHBOARD_SCENARIO"] == "brussels-metro"
    assert dashboard_main(["--scenario", "no-such-scenario"]) == 2
    assert "error" in capsys.readouterr().err
