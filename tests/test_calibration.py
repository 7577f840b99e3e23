"""The default scenario reproduces the sourced stylised facts it was calibrated against."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import RelocationModel
from relocsim.calibration import FACTS, compare, measure

REQUIRED = ("relocation_rate", "short_move_share", "brussels_out_rate", "brussels_in_out_ratio")
"""The facts the default must reproduce: relocation rate, short moves, Brussels out/in flows."""


@pytest.fixture(scope="module")
def facts(default_scenario):
    values = []
    for seed in (0, 1, 2):
        model = RelocationModel(default_scenario, seed=seed)
        values.append(measure(model.run(10), model.geo))
    return {key: float(np.mean([v[key] for v in values])) for key in values[0]}


@pytest.mark.parametrize("key", REQUIRED)
def test_default_reproduces_the_fact(facts, key):
    fact = next(f for f in FACTS if f.key == key)
    assert fact.low <= facts[key] <= fact.high, (fact.label, facts[key])


def test_larger_firms_leave_brussels_more_often(facts):
    assert facts["large_small_out_ratio"] > 1.0


def test_comparison_table_lists_every_fact(short_run):
    model, results = short_run
    table = compare(results, model.geo)
    assert len(table) == len(FACTS)
    assert {"target", "model", "ok", "source"} <= set(table.columns)
