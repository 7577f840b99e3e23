"""Demography on a hand-built table: growth, exits and births whose outcome is certain."""

from __future__ import annotations

import numpy as np

from relocsim import demography
from relocsim.firms import FirmTable
from relocsim.scenario import Behaviour


def _params(**changes) -> demography.SectorDemography:
    values = dict(
        drift=np.array([np.log(2.0)]),
        volatility=np.array([0.0]),
        volatility_elasticity=np.array([0.0]),
        exit_hazard=np.array([0.0]),
        birth_rate=np.array([0.0]),
    )
    values.update({k: np.array([v]) for k, v in changes.items()})
    return demography.SectorDemography(**values)


def _firms(n: int = 4) -> FirmTable:
    firms = FirmTable()
    firms.append(
        np.arange(n),
        sector=np.zeros(n, np.int32),
        pool=np.arange(n, dtype=np.int32) % 2,
        employees=np.array([1, 10, 100, 15_000])[:n],
        birth_year=np.full(n, 2030),
    )
    return firms


def test_growth_without_volatility_doubles_every_firm_up_to_the_cap():
    firms = _firms()
    rows = firms.live_rows()
    behaviour = Behaviour(max_employees=20_000)
    demography.grow(firms, rows, _params(), behaviour, np.random.default_rng(1))
    assert firms.employees[rows].tolist() == [2, 20, 200, 20_000]
    np.testing.assert_allclose(firms.growth[:3], np.log(2.0))


def test_expected_growth_is_the_drift_whatever_the_volatility():
    n = 20_000
    firms = FirmTable()
    firms.append(np.arange(n), sector=np.zeros(n, np.int32), employees=np.full(n, 100))
    rows = firms.live_rows()
    params = _params(drift=0.05, volatility=0.3)
    demography.grow(firms, rows, params, Behaviour(), np.random.default_rng(2))
    mean = firms.employees[rows].mean()
    assert abs(mean / (100 * np.exp(0.05)) - 1) < 0.01


def test_exit_hazard_of_one_takes_every_newborn_of_one_job_and_zero_none():
    firms = _firms(1)
    rows = firms.live_rows()
    behaviour = Behaviour(exit_age_decay=0.05, exit_size_elasticity=0.2)
    certain = demography.exits(
        firms, rows, 2030, _params(exit_hazard=1.0), behaviour, np.random.default_rng(3)
    )
    assert certain.tolist() == [0]
    assert (
        len(demography.exits(firms, rows, 2030, _params(), behaviour, np.random.default_rng(3)))
        == 0
    )


def test_no_births_at_a_zero_rate_and_plants_close_on_schedule():
    firms = _firms()
    rows = firms.live_rows()
    born = demography.births(firms, rows, np.array([0, 1]), 2, _params(), np.random.default_rng(4))
    assert len(born) == 0
    firms.close_year[1] = 2031
    assert demography.closing_plants(firms, rows, 2031).tolist() == [1]
