"""The default scenario reproduces the sourced stylised facts it was calibrated against."""

from __future__ import annotations

import pytest

from relocsim import RelocationModel
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
