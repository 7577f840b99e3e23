"""Steady start: a burn-in under the scenario's own rules before the first reported year.

The starting population (``population.csv``: log-normal sizes, geometric ages) is not the
distribution the model's own demography and location choice keep: left alone, the first years
carry a transient (jobs dip, small firms and ages drift). With ``burn_in_years = B`` the model
starts its clock B years before ``start_year`` (firms B years younger at birth), simulates those
years with every standing rule (demography, space need, decisions, land market, aid contracts)
and no scheduled event (a plant closing or a site opening inside the window is refused), then
clears its records and step counter: the run reported from ``start_year`` starts from the
population, land and contracts the model's rules produced, and carries no transient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from relocsim.records import Recorder
from relocsim.scenarios import Scenario, ScenarioError

if TYPE_CHECKING:
    from relocsim.model import RelocationModel


def check_window(scenario: Scenario) -> None:
    """Refuse a scheduled event (plant closure, site opening) inside the burn-in window."""
    years = scenario.burn_in_years
    first, start = scenario.start_year - years, scenario.start_year
    where = f"{scenario.source_dir or scenario.name}: field 'burn_in_years'"
    for plant in scenario.plants:
        if first <= plant.close_year < start:
            raise ScenarioError(
                f"{where}: value {years} is invalid; expected a burn-in window ({first}-"
                f"{start - 1}) free of scheduled events, but plant '{plant.name}' closes in "
                f"{plant.close_year}"
            )
    for name, zone in scenario.zones.items():
        if first <= zone.open_year < start:
            raise ScenarioError(
                f"{where}: value {years} is invalid; expected a burn-in window ({first}-"
                f"{start - 1}) free of scheduled events, but zone '{name}' opens in "
                f"{zone.open_year}"
            )


def burn_in(model: RelocationModel) -> None:
    """Simulate the scenario's ``burn_in_years`` before ``start_year`` and forget them.

    A no-op when ``burn_in_years`` is 0. Called at the end of ``RelocationModel.__init__``.
    """
    scenario = model.scenario
    years = scenario.burn_in_years
    if years <= 0:
        return
    check_window(scenario)
    firms = model.firms
    live = firms.live_rows()
    firms.birth_year[live] -= years
    model.year = scenario.start_year - years
    for _ in range(years):
        model.step()
    _forget_history(model)


def _forget_history(model: RelocationModel) -> None:
    """Clear the records of the burn-in; the state (firms, land, contracts) is kept."""
    firms, geo = model.firms, model.geo
    live = firms.live_rows()
    recorder = Recorder(geo, model.recorder.low_skilled_share)
    recorder.record_start(
        geo.pool_region[firms.pool[live]],
        firms.sector[live],
        firms.employees[live].astype(np.float64),
    )
    model.recorder = recorder
    model.datacollector = mesa.DataCollector(
        model_reporters=dict(model.datacollector.model_reporters)
    )
    # Mesa >= 3.5 also keeps a clock whose scheduled step events lie ahead of it: it keeps
    # running (resetting it would leave the next step event years away)
    model.steps = 0
    model.running = True
