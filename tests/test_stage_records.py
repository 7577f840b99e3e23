"""Records on a hand-built two-region geography: the recorder's bookkeeping methods."""

from __future__ import annotations

import numpy as np

from relocsim.firms import FirmTable
from relocsim.geography import Geography
from relocsim.public_accounts import Ledger
from relocsim.records import Recorder


def _geo() -> Geography:
    return Geography(
        region_names=("A", "B"),
        zone_names=("a", "b"),
        sector_names=("s", "t"),
        zone_region=np.array([0, 1]),
        zone_xy=np.zeros((2, 2)),
        travel_time=np.ones((2, 2)),
        distance_km=np.ones((2, 2)),
        pool_zone=np.array([0, 1]),
        pool_region=np.array([0, 1]),
        pool_use=np.array([0, 0]),
        pool_names=("a.gsi", "b.gsi"),
        allowed=np.ones((2, 2), bool),
        reserved_out=np.zeros((2, 2), bool),
    )


def test_a_year_of_events_balances_by_hand():
    """Start: three firms in A (10, 20, 30 jobs, sector s). In the year the 10-job firm exits,
    the 20-job firm moves to B repaying 500 EUR, the 30-job one grows by 5 jobs, and a 2-job
    firm of sector t is born in B."""
    geo = _geo()
    rec = Recorder(geo, low_skilled_share=np.array([0.5, 0.0]))
    firms = FirmTable()
    firms.append(
        np.arange(3),
        sector=np.zeros(3, np.int32),
        pool=np.zeros(3, np.int32),
        employees=np.array([10, 20, 30]),
    )
    rec.record_start(np.zeros(3, np.int64), np.zeros(3, np.int32), np.array([10.0, 20.0, 30.0]))
    rec.exits(2030, firms, np.array([0]))
    firms.alive[0] = False
    firms.employees[2] = 35
    rec.growth(firms, np.array([2]), np.array([5]))
    rec.moves(2030, firms, np.array([1]), np.array([0]), np.array([1]), np.array([500.0]))
    firms.pool[1] = 1
    born = firms.append(np.array([3]), sector=np.array([1]), pool=np.array([1]), employees=[2])
    rec.births(2030, firms, born)
    live = firms.live_rows()
    rec.close_year(
        2030,
        geo.pool_region[firms.pool[live]],
        firms.sector[live],
        geo.pool_zone[firms.pool[live]],
        firms.employees[live].astype(float),
        firms.land_m2[live],
        {k: np.zeros(2) for k in ("developable_m2", "occupied_m2", "price", "converted_m2")},
        Ledger(2),
    )
    results = rec.results()
    yearly = results.yearly.set_index(["region", "sector"])
    assert yearly.loc[("A", "s"), "jobs"] == 35
    assert yearly.loc[("A", "s"), "low_skilled_jobs"] == 18  # rint(17.5)
    assert yearly.loc[("B", "s"), "jobs"] == 20
    assert yearly.loc[("B", "t"), "jobs"] == 2
    assert yearly.loc[("A", "s"), "exits"] == 1 and yearly.loc[("A", "s"), "jobs_exited"] == 10
    assert yearly.loc[("A", "s"), "delocalisations"] == 1
    assert yearly.loc[("B", "s"), "arrivals"] == 1
    assert yearly.loc[("A", "s"), "jobs_out"] == 20 and yearly.loc[("B", "s"), "jobs_in"] == 20
    # net new jobs: change in jobs minus jobs that merely crossed the border
    assert yearly.loc[("A", "s"), "net_new_jobs"] == (35 - 60) + 20 == -5
    assert yearly.loc[("B", "t"), "net_new_jobs"] == 2
    assert yearly["net_new_jobs"].sum() == -10 + 5 + 2
    events = results.events
    assert events["event"].astype(str).tolist() == ["exited", "delocalised", "repaid", "born"]
    assert events.loc[events["event"] == "repaid", "amount_eur"].item() == 500.0
    flows = results.flows
    assert flows[["origin_region", "destination_region", "firms", "jobs"]].values.tolist() == [
        ["A", "B", 1, 20]
    ]
