"""Space need: the land each firm wants, growth in place where its pool has room, space stress.

A firm needs ``employees x land per job`` (times its pool's densification factor). If it holds
less and its pool offers vacant land, it grows in place (served in a random order while the
requests fit the pool's offer; the order is the firms' own draws, so it does not depend on
table rows), paying its pool's price for the extra land if it then stays;
otherwise it is under space stress, the missing share of its need,
which pushes it to move in the decision stage.
"""

from __future__ import annotations

import numpy as np

from relocsim._rng import Stage, Streams
from relocsim.firms import FirmTable
from relocsim.land_market import LandState, occupy, release

SLOT_PRIORITY = 0
"""Slot of a firm's space stream: its place in the queue for its pool's vacant land."""

NEED_TOLERANCE = 1e-9
"""A firm wants more land when its need exceeds its holding by more than this share of its need.

The holding was its need when it was taken, recomputed since from prices: a firm whose jobs and
pool have not changed holds its need up to rounding, and the last bit of a price (which differs
between CPUs' ``exp``) must not decide whether it grows in place."""

SURPLUS_TOLERANCE = 1.3
"""A firm holding more than this multiple of its need sells or lets the surplus."""


def standard_need_m2(firms: FirmTable, rows: np.ndarray, land_per_job: np.ndarray) -> np.ndarray:
    """Land the firms need at standard density (m2)."""
    return firms.employees[rows] * land_per_job[firms.sector[rows]]


def fit_in_order(
    pool: np.ndarray, demand: np.ndarray, room: np.ndarray, priority: np.ndarray
) -> np.ndarray:
    """Which requests a pool grants: in priority order, the longest prefix that fits its room.

    The grant is a threshold on each firm's own draw (granted if its priority is below the
    pool's first refused one), so a request added or removed elsewhere in the queue moves the
    threshold a little and changes the fate of few firms: paired runs stay paired. Serving every
    later request that still fits (first fit) would make each grant depend on the sizes of all
    requests ahead: over 6 seeds x 15 years it doubled the spread of the paired clawback - none
    difference in Brussels jobs (SD 464 against 233).

    Args:
        pool: pool of each request.
        demand: m2 asked by each request.
        room: m2 each pool offers.
        priority: random keys; lower goes first.

    Returns:
        Boolean mask of granted requests.
    """
    order = np.lexsort((priority, pool))
    sorted_pool = pool[order]
    cumulative = np.cumsum(demand[order])
    first = np.searchsorted(sorted_pool, sorted_pool, side="left")
    before = np.where(first > 0, cumulative[first - 1], 0.0)
    within = cumulative - before
    granted = np.zeros(len(pool), dtype=bool)
    granted[order] = within <= room[sorted_pool]
    return granted


def release_surplus(
    firms: FirmTable,
    rows: np.ndarray,
    land: LandState,
    land_per_job: np.ndarray,
    conversion_rate: float,
) -> np.ndarray:
    """Firms that shrank well below their premises give up the surplus (back to their need).

    Returns:
        m2 released by each of ``rows`` (0 for most).
    """
    need = standard_need_m2(firms, rows, land_per_job) * land.densification[firms.pool[rows]]
    surplus = np.where(
        firms.land_m2[rows] > SURPLUS_TOLERANCE * need, firms.land_m2[rows] - need, 0.0
    )
    shedding = surplus > 0
    release(land, firms.pool[rows[shedding]], surplus[shedding], conversion_rate)
    firms.land_m2[rows[shedding]] -= surplus[shedding]
    return surplus


def grow_in_place(
    firms: FirmTable,
    rows: np.ndarray,
    land: LandState,
    offered: np.ndarray,
    land_per_job: np.ndarray,
    streams: Streams,
) -> np.ndarray:
    """Let firms that need more land take it in their own pool; set everyone's space stress.

    ``offered`` (m2 per pool) is reduced by what growth in place takes.

    Returns:
        Rows of firms that grew in place.
    """
    pool = firms.pool[rows]
    need = standard_need_m2(firms, rows, land_per_job) * land.densification[pool]
    extra = need - firms.land_m2[rows]
    wanting = extra > NEED_TOLERANCE * need
    candidates = rows[wanting]
    priority = streams.uniform(Stage.SPACE, firms.firm_id[candidates], SLOT_PRIORITY)
    granted = fit_in_order(pool[wanting], extra[wanting], offered, priority)
    growers = candidates[granted]
    taken = extra[wanting][granted]
    occupy(land, firms.pool[growers], taken)
    np.subtract.at(offered, firms.pool[growers], taken)
    np.maximum(offered, 0.0, out=offered)  # a pool taken whole may end a rounding error below 0
    firms.land_m2[growers] += taken
    missing = np.where(wanting, extra, 0.0)
    missing[np.flatnonzero(wanting)[granted]] = 0.0
    firms.stress[rows] = np.clip(missing / need, 0.0, 1.0)
    return growers


def jobs_hosted(taken_m2: np.ndarray, m2_per_job: np.ndarray) -> np.ndarray:
    """Jobs that land newly taken hosts (at least one): the base of a grower's aid.

    Land taken for whole jobs divides back to an integer up to rounding; the last bit of a
    price must not add a job to it (:data:`NEED_TOLERANCE`)."""
    return np.maximum(1.0, np.ceil(taken_m2 / m2_per_job * (1.0 - NEED_TOLERANCE)))
