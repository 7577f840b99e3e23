"""A zone reserved for some sectors (the advice's reservation of urban-industry zones for
material production): the barred sectors no longer move or are born there, the firms already
there stay, and the burn-in ignores the lever so paired runs start from the same firms."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import RelocationModel
from relocsim.scenarios import ScenarioError

ZONE = "bxl_canal_south"
MATERIAL = ("heavy_industry", "material_production", "green_circular", "logistics")
BARRED = ("immaterial_production", "high_tech")
RESERVED = {f"zones.{ZONE}.reserved_for": ";".join(MATERIAL)}
ENTRIES = ("born", "moved", "delocalised")


def _in_zone(model: RelocationModel, sectors: tuple[str, ...]) -> np.ndarray:
    firms, geo = model.firms, model.geo
    live = firms.live_rows()
    here = geo.pool_zone[firms.pool[live]] == geo.zone_id(ZONE)
    of = np.isin(np.asarray(geo.sector_names)[firms.sector[live]], sectors)
    return live[here & of]


@pytest.fixture(scope="module")
def runs(default_scenario):
    out = {}
    for seed in (0, 1):
        for name, overrides in (("open", {}), ("reserved", RESERVED)):
            model = RelocationModel(default_scenario, seed=seed, overrides=overrides)
            start_ids = set(model.firms.firm_id[_in_zone(model, BARRED)].tolist())
            results = model.run(6)
            out[seed, name] = (model, results, start_ids)
    return out


def test_the_geography_bars_exactly_the_sectors_a_reservation_leaves_out(default_scenario):
    model = RelocationModel(default_scenario, seed=0, overrides=RESERVED)
    geo = model.geo
    pools = geo.pool_zone == geo.zone_id(ZONE)
    barred = [geo.sector_names.index(s) for s in BARRED]
    assert geo.reserved_out[np.ix_(barred, np.flatnonzero(pools))].all()
    assert geo.reserved_out.sum() == len(BARRED) * pools.sum()


@pytest.mark.slow
def test_barred_sectors_no_longer_enter_but_the_firms_already_there_stay(runs):
    for seed in (0, 1):
        open_model, open_results, _ = runs[seed, "open"]
        model, results, start_ids = runs[seed, "reserved"]
        events = results.events
        entering = events["event"].isin(ENTRIES) & (events["to_zone"] == ZONE)
        assert not (entering & events["sector"].isin(BARRED)).any()
        assert (entering & events["sector"].isin(MATERIAL)).any()
        open_events = open_results.events
        assert (
            open_events["event"].isin(ENTRIES)
            & (open_events["to_zone"] == ZONE)
            & open_events["sector"].isin(BARRED)
        ).any()
        stayed = model.firms.firm_id[_in_zone(model, BARRED)]
        assert len(stayed) > 0 and set(stayed.tolist()) <= start_ids
        barred_jobs = [m.firms.employees[_in_zone(m, BARRED)].sum() for m in (model, open_model)]
        assert barred_jobs[0] < barred_jobs[1]


def test_the_burn_in_ignores_the_reservation(default_scenario):
    """A policy acts from the start year: both runs start from the same firms."""
    plain = RelocationModel(default_scenario, seed=3)
    reserved = RelocationModel(default_scenario, seed=3, overrides=RESERVED)
    for column in ("firm_id", "pool", "employees", "birth_year"):
        np.testing.assert_array_equal(getattr(plain.firms, column), getattr(reserved.firms, column))


@pytest.mark.parametrize("value", ["logistic", "logistics;nope", "logistics;logistics"])
def test_an_unknown_sector_in_a_reservation_is_named(default_scenario, value):
    with pytest.raises(ScenarioError, match="reserved_for.*distinct sectors: heavy_industry"):
        RelocationModel(default_scenario, seed=0, overrides={f"zones.{ZONE}.reserved_for": value})
