"""Starting ages from the model's own stationary ages given size (relocsim.stationary_ages)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from relocsim.demography import SectorDemography
from relocsim.stationary_ages import (
    COHORT_LINEAGES,
    MAX_AGE_YEARS,
    cohort_table,
    draw_ages,
    size_band,
)


def _one_sector(drift: float, volatility: float, hazard: float) -> SectorDemography:
    return SectorDemography(
        drift=np.array([drift]),
        volatility=np.array([volatility]),
        volatility_elasticity=np.array([0.15]),
        exit_hazard=np.array([hazard]),
        birth_rate=np.array([0.1]),
    )


def _mean_age(table: np.ndarray, bands: slice) -> float:
    weights = table[:, bands].sum(axis=1)
    return float((np.arange(len(table)) * weights).sum() / weights.sum())


def test_survivors_follow_the_exit_hazard(default_scenario):
    """Without growth or a size effect on exits, a cohort's survivors at age a are (1 - h)^a."""
    behaviour = dataclasses.replace(default_scenario.behaviour, exit_size_elasticity=0.0)
    table = cohort_table(_one_sector(0.0, 0.0, 0.1), behaviour, 0, 0.0, np.random.default_rng(1))
    survivors = table.sum(axis=1)
    expected = COHORT_LINEAGES * 0.9 ** np.arange(MAX_AGE_YEARS + 1)
    np.testing.assert_allclose(survivors, expected, rtol=1e-9)


def test_larger_firms_are_older(default_scenario):
    """Under the default's growth law a firm of 64+ jobs has grown for decades: several times
    the mean age of a firm of 1-3 jobs."""
    sector = default_scenario.sectors["material_production"]
    params = _one_sector(sector.growth_drift, sector.growth_volatility, sector.exit_hazard)
    table = cohort_table(params, default_scenario.behaviour, 0, 0.0, np.random.default_rng(2))
    assert _mean_age(table, slice(6, None)) > 3 * _mean_age(table, slice(0, 2))


def test_draws_are_reproducible_and_cover_every_size(default_scenario):
    """The same generator gives the same ages, and a size the cohort never reaches (a shrinking
    sector's 5,000-job firm) still gets one."""
    params = _one_sector(-0.05, 0.2, 0.1)
    employees = np.array([1, 3, 40, 5000])
    sector = np.zeros(4, np.int32)
    shift = np.zeros(4)

    def draw(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return draw_ages(rng, employees, sector, shift, params, default_scenario.behaviour)

    table = cohort_table(params, default_scenario.behaviour, 0, 0.0, np.random.default_rng(3))
    assert table[:, 12].sum() == 0  # 4,096-8,191 jobs: never reached
    ages = draw(3)
    np.testing.assert_array_equal(ages, draw(3))
    assert ((ages >= 0) & (ages <= MAX_AGE_YEARS)).all()


@pytest.mark.parametrize("shift", [-0.03, 0.03])
def test_the_cell_drift_moves_the_ages_of_large_firms(default_scenario, shift):
    """A cell whose firms grow faster reaches a size sooner: its firms of 64-127 jobs are
    younger."""
    sector = default_scenario.sectors["logistics"]
    params = _one_sector(sector.growth_drift, sector.growth_volatility, sector.exit_hazard)
    behaviour = default_scenario.behaviour
    base = cohort_table(params, behaviour, 0, 0.0, np.random.default_rng(4))
    shifted = cohort_table(params, behaviour, 0, shift, np.random.default_rng(4))
    younger = _mean_age(shifted, slice(6, 7)) < _mean_age(base, slice(6, 7))
    assert younger == (shift > 0)


def test_size_bands_double_exactly_at_powers_of_two():
    """Band k holds 2**k to 2**(k+1) - 1 jobs, exactly at every power of two up to the largest
    firm (a band read off a log2 that is a bit short at 2**k would shift those firms' ages)."""
    powers = 2 ** np.arange(0, 20)
    assert (size_band(powers) == np.arange(0, 20)).all()
    assert (size_band(powers[1:] - 1) == np.arange(0, 19)).all()
    assert size_band(np.array([0]))[0] == 0  # no firm has no job; kept in the first band


def test_a_cap_below_the_newborns_keeps_every_firm(default_scenario):
    """`max_employees` caps growth, not newborns (mean 2 jobs, some over 10): a cap of 3 keeps
    every newborn of the cohort in the table and gives every starting firm an age (it failed
    with a shape error before session 16)."""
    behaviour = dataclasses.replace(default_scenario.behaviour, max_employees=3)
    params = _one_sector(0.0, 0.2, 0.1)
    table = cohort_table(params, behaviour, 0, 0.0, np.random.default_rng(4))
    assert table[0].sum() == COHORT_LINEAGES
    assert table[1:, size_band(np.array([4]))[0] :].sum() == 0  # grown firms respect the cap
    employees = np.array([1, 2, 3, 40])
    ages = draw_ages(
        np.random.default_rng(5), employees, np.zeros(4, np.int32), np.zeros(4), params, behaviour
    )
    assert len(ages) == 4 and (ages >= 0).all()
