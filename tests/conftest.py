"""Shared fixtures: short runs of the default scenario, computed once per session."""

from __future__ import annotations

import pytest

from relocsim import RelocationModel, load_scenario


@pytest.fixture(scope="session")
def default_scenario():
    return load_scenario("brussels-metro")


@pytest.fixture(scope="session")
def short_run(default_scenario):
    """The default scenario over six years, seed 7: (model, results)."""
    model = RelocationModel(default_scenario, seed=7)
    results = model.run(6)
    return model, results
