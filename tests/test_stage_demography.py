"""Demography on a hand-built table: growth, exits and births whose outcome is certain."""

from __future__ import annotations

import numpy as np
import pytest

from relocsim import demography
from relocsim._rng import Streams
from relocsim.firms import FirmTable
from relocsim.scenarios import Behaviour

STREAMS = Streams(seed=0, year=2030)


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
    demography.grow(firms, rows, _params(), behaviour, STREAMS)
    assert firms.employees[rows].tolist() == [2, 20, 200, 20_000]
    np.testing.assert_allclose(firms.growth[:3], np.log(2.0))


def test_expected_growth_is_the_drift_whatever_the_volatility():
    n = 20_000
    firms = FirmTable()
    firms.append(np.arange(n), sector=np.zeros(n, np.int32), employees=np.full(n, 100))
    rows = firms.live_rows()
    params = _params(drift=0.05, volatility=0.3)
    demography.grow(firms, rows, params, Behaviour(), STREAMS)
    mean = firms.employees[rows].mean()
    assert abs(mean / (100 * np.exp(0.05)) - 1) < 0.01


def test_exit_hazard_of_one_takes_every_newborn_of_one_job_and_zero_none():
    firms = _firms(1)
    rows = firms.live_rows()
    behaviour = Behaviour(exit_age_decay=0.05, exit_size_elasticity=0.2)
    certain, _ = demography.exits(firms, rows, 2030, _params(exit_hazard=1.0), behaviour, STREAMS)
    assert certain.tolist() == [0]
    assert len(demography.exits(firms, rows, 2030, _params(), behaviour, STREAMS)[0]) == 0


def test_no_births_at_a_zero_rate_and_plants_close_on_schedule():
    firms = _firms()
    rows = firms.live_rows()
    born = demography.births(firms, rows, np.array([0, 1]), 2, _params(), STREAMS)
    assert len(born) == 0
    firms.close_year[1] = 2031
    assert demography.closing_plants(firms, rows, 2031).tolist() == [1]


def test_draws_belong_to_firms_not_to_table_rows():
    """The same firms in another row order (and among other firms) get the same growth and exits."""
    n = 1_000
    rng = np.random.default_rng(6)
    ids, size = rng.permutation(10 * n)[:n], rng.integers(1, 200, n)
    params = _params(drift=0.02, volatility=0.4, exit_hazard=0.2)
    outcome = []
    for order in (np.arange(n), rng.permutation(n)):
        firms = FirmTable()
        firms.append(
            ids[order], sector=np.zeros(n, np.int32), employees=size[order], birth_year=2030
        )
        firms.append(
            np.arange(10 * n, 11 * n), sector=np.zeros(n, np.int32), employees=size, birth_year=2030
        )
        rows = firms.live_rows()
        gone = firms.firm_id[demography.exits(firms, rows, 2030, params, Behaviour(), STREAMS)[0]]
        demography.grow(firms, rows, params, Behaviour(), STREAMS)
        grown = dict(zip(firms.firm_id[rows].tolist(), firms.employees[rows].tolist(), strict=True))
        outcome.append((set(gone.tolist()) & set(ids.tolist()), [grown[i] for i in ids]))
    assert outcome[0] == outcome[1]
    assert 0 < len(outcome[0][0]) < n


def test_births_follow_incumbents_by_zone_and_sector():
    """Two zones (pools 0-1 in zone 0, pool 2 in zone 1); sector 0 only in pool 1 and pool 2.
    Newborns of sector 0 in zone 0 all start in pool 1; counts are Poisson with mean rate x
    incumbents, and ids are unique."""
    firms = FirmTable()
    pools = np.array([0] * 300 + [1] * 400 + [2] * 300)
    sector = np.array([1] * 300 + [0] * 700)
    firms.append(np.arange(1_000), sector=sector, pool=pools, employees=np.full(1_000, 5))
    params = demography.SectorDemography(
        drift=np.zeros(2),
        volatility=np.zeros(2),
        volatility_elasticity=np.zeros(2),
        exit_hazard=np.zeros(2),
        birth_rate=np.array([0.1, 0.2]),
    )
    totals = []
    for year in range(2030, 2060):
        born = demography.births(
            firms, firms.live_rows(), np.array([0, 0, 1]), 2, params, Streams(1, year)
        )
        zone0_sector0 = born.cell == 0 * 2 + 0
        assert (born.home_pool[zone0_sector0] == 1).all()
        assert (born.home_pool[born.sector == 1] == 0).all()
        assert (born.employees >= 1).all()
        ids = demography.newborn_ids(year - 2029, born.cell, born.index)
        assert len(np.unique(ids)) == len(ids)
        totals.append([(born.sector == 0).sum(), (born.sector == 1).sum()])
    mean = np.mean(totals, axis=0)
    expected = np.array([0.1 * 700, 0.2 * 300])
    assert np.all(np.abs(mean - expected) < 4 * np.sqrt(expected / len(totals)))


def test_aid_raises_small_aided_firms_employment_as_in_the_rsa_evaluation():
    """Criscuolo, Martin, Overman & Van Reenen (2019): 10 points more investment subsidy, about
    10% more employment, and nothing for firms above ~150 employees. Over its five-year
    commitment an aid of intensity 0.30 lifts a small firm's employment by exp(1.0 x 0.30), that
    is by 10% per 10 points of intensity in log terms, against the same firm without aid."""
    behaviour = Behaviour(aid_growth_semi_elasticity=1.0, aid_growth_max_employees=150)
    params = _params(drift=0.0)
    sizes = {}
    for intensity in (0.0, 0.15, 0.30):
        firms = FirmTable()
        firms.append(np.arange(2), sector=np.zeros(2, np.int32), employees=np.array([1000, 400]))
        rows = firms.live_rows()
        created = 0
        for year in range(2030, 2035):
            boost = demography.aid_boost(
                np.full(2, intensity),
                np.full(2, 5),
                np.array([20.0, 400.0]),
                np.ones(2, bool),
                behaviour,
            )
            created += demography.grow(firms, rows, params, behaviour, Streams(0, year), boost)
        sizes[intensity] = firms.employees[rows].copy()
        assert created[1] == 0
    assert np.log(sizes[0.30][0] / sizes[0.0][0]) == pytest.approx(0.30, abs=0.01)
    assert np.log(sizes[0.15][0] / sizes[0.0][0]) == pytest.approx(0.15, abs=0.01)
    assert sizes[0.30][1] == sizes[0.0][1]  # a large firm gains nothing


def test_stress_slows_growth_and_incentives_save_firms_from_exit():
    firms = _firms(2)
    firms.employees[:2] = 100
    firms.stress[:2] = [0.0, 1.0]
    behaviour = Behaviour(growth_stress_penalty=np.log(2.0), exit_incentive_semi_elasticity=1.0)
    demography.grow(firms, firms.live_rows(), _params(), behaviour, STREAMS)
    assert firms.employees[:2].tolist() == [200, 100]
    n = 10_000
    many = FirmTable()
    many.append(
        np.arange(n),
        sector=np.zeros(n, np.int32),
        employees=np.ones(n, np.int64),
        birth_year=np.full(n, 2030),
    )
    rows = many.live_rows()
    incentive = np.where(rows % 2 == 0, 1.0, 0.0)  # kEUR per job-year, for even rows
    gone, saved = demography.exits(
        many, rows, 2030, _params(exit_hazard=0.2), behaviour, STREAMS, incentive_keur=incentive
    )
    assert np.isin(saved, rows[incentive > 0]).all()
    with_rate = np.isin(gone, rows[incentive > 0]).sum() / (n / 2)
    without_rate = np.isin(gone, rows[incentive == 0]).sum() / (n / 2)
    assert with_rate == pytest.approx(0.2 * np.exp(-1.0), abs=0.015)
    assert without_rate == pytest.approx(0.2, abs=0.015)
    # saved: the draws that fall between the two hazards, about 0.2 (1 - e^-1) of the aided half
    assert len(saved) / (n / 2) == pytest.approx(0.2 * (1 - np.exp(-1.0)), abs=0.015)
