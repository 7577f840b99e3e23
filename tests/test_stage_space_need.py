"""Space need on a hand-built table: growth in place that exactly fills a pool, stress, surplus."""

from __future__ import annotations

import numpy as np
from test_stage_land_market import _land

from relocsim import space_need
from relocsim._rng import Streams
from relocsim.firms import FirmTable

LAND_PER_JOB = np.array([100.0])

STREAMS = Streams(seed=0, year=2030)


def _firms(employees, land_m2, pool) -> FirmTable:
    firms = FirmTable()
    n = len(employees)
    firms.append(
        np.arange(n),
        sector=np.zeros(n, np.int32),
        pool=np.asarray(pool, np.int32),
        employees=np.asarray(employees),
        land_m2=np.asarray(land_m2, np.float64),
    )
    return firms


def test_grow_in_place_exactly_fills_the_pool():
    """Two firms in pool 0 each need 1,000 m2 more; the pool offers exactly 2,000 m2: both grow,
    the offer falls to 0, occupancy rises by 2,000 m2 and nobody is stressed."""
    land = _land()
    firms = _firms([30, 20], [2_000.0, 1_000.0], [0, 0])
    offered = np.array([2_000.0, 0.0])
    rows = firms.live_rows()
    grew = space_need.grow_in_place(firms, rows, land, offered, LAND_PER_JOB, STREAMS)
    assert sorted(grew.tolist()) == [0, 1]
    np.testing.assert_allclose(firms.land_m2[:2], [3_000.0, 2_000.0])
    np.testing.assert_allclose(offered, [0.0, 0.0])
    assert land.occupied_m2[0] == 92_000.0
    np.testing.assert_allclose(firms.stress[:2], [0.0, 0.0])


def test_one_m2_short_leaves_one_firm_stressed():
    land = _land()
    firms = _firms([30, 20], [2_000.0, 1_000.0], [0, 0])
    offered = np.array([1_999.0, 0.0])
    grew = space_need.grow_in_place(firms, firms.live_rows(), land, offered, LAND_PER_JOB, STREAMS)
    assert len(grew) == 1
    stressed = 1 - grew[0]
    # the firm left out lacks 1,000 m2 of its need of 3,000 or 2,000 m2
    assert firms.stress[stressed] == 1_000.0 / (100.0 * firms.employees[stressed])
    assert offered[0] == 999.0


def test_denser_pool_needs_less_land():
    """Pool 1 has densification 0.5: 20 jobs need 1,000 m2 there, which the firm holds."""
    land = _land()
    firms = _firms([20], [1_000.0], [1])
    offered = np.array([0.0, 0.0])
    grew = space_need.grow_in_place(firms, firms.live_rows(), land, offered, LAND_PER_JOB, STREAMS)
    assert len(grew) == 0 and firms.stress[0] == 0.0


def test_release_surplus_back_to_need():
    """A firm of 10 jobs (1,000 m2 needed) on 2,000 m2 sheds 1,000; on 1,200 m2 it keeps it."""
    land = _land()
    firms = _firms([10, 10], [2_000.0, 1_200.0], [0, 0])
    surplus = space_need.release_surplus(
        firms, firms.live_rows(), land, LAND_PER_JOB, conversion_rate=0.3
    )
    np.testing.assert_allclose(surplus, [1_000.0, 0.0])
    np.testing.assert_allclose(firms.land_m2[:2], [1_000.0, 1_200.0])
    assert land.occupied_m2[0] == 89_000.0


def test_grants_are_a_threshold_on_each_firms_own_draw():
    """In each pool the granted requests are those whose priority is below the first refused
    one, so a request added behind that threshold changes nothing and one added ahead of it
    can only refuse requests at the end of the granted run (paired runs stay paired)."""
    rng = np.random.default_rng(5)
    for _ in range(100):
        n, n_pools = int(rng.integers(2, 40)), int(rng.integers(1, 4))
        pool = rng.integers(0, n_pools, n)
        demand = rng.exponential(10.0, n)
        room = rng.uniform(0.0, 150.0, n_pools)
        priority = rng.random(n)
        granted = space_need.fit_in_order(pool, demand, room, priority)
        for p in range(n_pools):
            mine = pool == p
            refused = priority[mine & ~granted]
            threshold = refused.min() if len(refused) else np.inf
            np.testing.assert_array_equal(granted[mine], priority[mine] < threshold)
        # one more request in pool 0
        more = space_need.fit_in_order(
            np.append(pool, 0), np.append(demand, 5.0), room, np.append(priority, rng.random())
        )[:n]
        assert not (more & ~granted).any()  # nobody gains a grant from a rival's arrival
    # by hand: 60 m2 of room, queue 50, 20, 10: the 20 does not fit and the queue stops there
    granted = space_need.fit_in_order(
        np.zeros(3, np.int64), np.array([50.0, 20.0, 10.0]), np.array([60.0]), np.arange(3.0)
    )
    np.testing.assert_array_equal(granted, [True, False, False])


def test_land_taken_for_whole_jobs_hosts_those_jobs_whatever_the_last_bit():
    """3 x 0.1 m2 divides back to 3.0000000000000004 jobs: three jobs, not four. A part of a job
    counts whole, and any land at all hosts at least one job (the base of a grower's aid)."""
    per_job = np.full(4, 0.1)
    taken = np.array([3 * 0.1, 0.35, 1e-6, 0.7])
    np.testing.assert_array_equal(space_need.jobs_hosted(taken, per_job), [3.0, 4.0, 1.0, 7.0])
