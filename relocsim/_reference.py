"""Plain-NumPy reference implementation of the nested-logit location choice.

This module is the executable specification of :func:`relocsim.choice.choose_locations`:
the compiled kernel (``relocsim/_core.pyx``) must reproduce it draw for draw. It works on
chunks of firms (``chunk`` x M utility matrices), so its memory stays bounded, and it is
what the benchmark compares the kernel against.

Conventions shared with the kernel:

* Alternatives are put in *canonical order*: stably sorted by region (see
  :func:`alternative_layout`). Inside a nest, the cumulative sum that turns a uniform
  into an alternative runs in that order (own nest: the firm's region in index order;
  other nest: the other regions, region by region). With sampling, a firm's entries
  are split between the nests by :func:`allocate_sample` (own nest first); entry k is
  ``to_index(draw(round_key(key, 0), 3 + k), size)`` within its nest (uniform with
  replacement; a nest taken whole lists its members instead), and the running sum
  follows the order of the entries (see :func:`sample_alternatives`).
* Random numbers come from :mod:`relocsim._rng`, keyed by (seed, year, firm_id, round,
  slot).
* The inputs are assumed validated and converted by :mod:`relocsim.choice`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim import _rng
from relocsim._core import STAY, UNPLACED  # the choice codes are the kernel's own

CHUNK = 4096


@dataclass(frozen=True)
class AlternativeLayout:
    """Canonical (region-sorted) order of the alternatives.

    Attributes:
        perm: int64 (M,); ``perm[p]`` is the original index of canonical position p.
        pos: int64 (M,); inverse of ``perm``: canonical position of original index a.
        region_start: int64 (R,); first canonical position of each region.
        region_end: int64 (R,); one past the last canonical position of each region.
    """

    perm: np.ndarray
    pos: np.ndarray
    region_start: np.ndarray
    region_end: np.ndarray


def alternative_layout(alt_region: np.ndarray, n_regions: int) -> AlternativeLayout:
    """Sort alternatives stably by region and return the permutation and region ranges.

    Args:
        alt_region: Region of each alternative, int (M,), values in ``[0, n_regions)``.
        n_regions: Number of regions (at least one more than any region index used by
            alternatives or firms).

    Returns:
        The canonical layout.
    """
    perm = np.argsort(alt_region, kind="stable").astype(np.int64)
    pos = np.empty_like(perm)
    pos[perm] = np.arange(perm.size, dtype=np.int64)
    sorted_region = np.asarray(alt_region)[perm]
    regions = np.arange(n_regions)
    start = np.searchsorted(sorted_region, regions, side="left").astype(np.int64)
    end = np.searchsorted(sorted_region, regions, side="right").astype(np.int64)
    return AlternativeLayout(perm=perm, pos=pos, region_start=start, region_end=end)


def allocate_sample(
    n_sampled: int, size_own: np.ndarray, size_other: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``n_sampled`` draws between a firm's own-region nest and the other nest.

    Each non-empty nest is first allotted half of the draws (the own nest the smaller
    half when ``n_sampled`` is odd; an empty nest none). A nest no larger than its allotment is
    taken whole, and the draws it leaves go to the other nest.

    Args:
        n_sampled: Draws per firm (> 0).
        size_own: int64 (N,); alternatives in each firm's own-region nest.
        size_other: int64 (N,); alternatives in the other nest.

    Returns:
        ``(n_own, n_other)``, int64 (N,) each; a nest is taken whole exactly when its count
        equals its size.
    """
    size_own = np.asarray(size_own, dtype=np.int64)
    size_other = np.asarray(size_other, dtype=np.int64)
    want_own = np.where(size_other == 0, n_sampled, np.where(size_own == 0, 0, n_sampled // 2))
    n_other = np.minimum(n_sampled - want_own, size_other)
    n_own = np.minimum(size_own, n_sampled - n_other)
    n_other = np.minimum(size_other, n_sampled - n_own)
    return n_own, n_other


@dataclass(frozen=True)
class SampledAlternatives:
    """Stratified sample of alternatives of a chunk of firms (rows), in canonical positions.

    Entry k of a row is in the own nest for ``k < n_own``, in the other nest for
    ``n_own <= k < n_own + n_other`` and unused after that.

    Attributes:
        positions: int64 (rows, n_sampled); canonical position of each entry (0 if unused).
        own: bool (rows, n_sampled); the entry is in the firm's own-region nest.
        valid: bool (rows, n_sampled); the entry is used.
        log_factor_own: float64 (rows,); log of the own nest's expansion factor
            ``size_own / n_own`` (0 when taken whole or empty).
        log_factor_other: float64 (rows,); the same for the other nest.
    """

    positions: np.ndarray
    own: np.ndarray
    valid: np.ndarray
    log_factor_own: np.ndarray
    log_factor_other: np.ndarray


def _log_factor(size: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, np.log(size / np.maximum(count, 1)), 0.0)


def sample_alternatives(
    keys: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int, n_sampled: int
) -> SampledAlternatives:
    """Draw each firm's stratified sample of alternatives (the kernel's twin).

    The own nest is the canonical range ``[lo, hi)`` of the firm's region, the other nest
    the rest of ``[0, m)``. Draws are uniform with replacement within a nest; entry k uses
    stream slot ``SLOT_SAMPLE + k`` of round 0 (a nest taken whole uses no draws: entry k
    is then its k-th member).

    Args:
        keys: uint64 (rows,); the firms' stream keys.
        lo: int64 (rows,); first canonical position of each firm's region.
        hi: int64 (rows,); one past its last.
        m: Number of alternatives.
        n_sampled: Entries per firm (> 0).
    """
    size_own = np.asarray(hi, dtype=np.int64) - lo
    size_other = m - size_own
    n_own, n_other = allocate_sample(n_sampled, size_own, size_other)
    k = np.arange(n_sampled, dtype=np.int64)[None, :]
    h = _rng.draw(_rng.round_keys(keys, 0)[:, None], _rng.SLOT_SAMPLE + k.astype(np.uint64))
    own = k < n_own[:, None]
    other = ~own & (k < (n_own + n_other)[:, None])
    j = np.where(own, k, k - n_own[:, None])  # entry's index within its nest
    size = np.where(own, size_own[:, None], size_other[:, None])
    whole = np.where(own, (n_own == size_own)[:, None], (n_other == size_other)[:, None])
    # _rng.to_index with a per-entry range (multiply-shift of the top 32 bits)
    drawn = ((h >> np.uint64(32)) * size.astype(np.uint64)) >> np.uint64(32)
    idx = np.where(whole, j, drawn.astype(np.int64))
    lo2 = np.asarray(lo, dtype=np.int64)[:, None]
    pos_other = idx + np.where(idx >= lo2, size_own[:, None], 0)
    positions = np.where(own, lo2 + idx, np.where(other, pos_other, 0))
    return SampledAlternatives(
        positions=positions,
        own=own,
        valid=own | other,
        log_factor_own=_log_factor(size_own, n_own),
        log_factor_other=_log_factor(size_other, n_other),
    )


def _nest_logsum(u: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-subtracted log-sum-exp of ``u`` over ``mask`` per row.

    Returns:
        (logsum, weights, total): logsum (-inf for empty rows), the weights
        ``exp(u - max)`` (zero outside the mask) and their row sums.
    """
    masked = np.where(mask, u, -np.inf)
    mx = masked.max(axis=1) if masked.shape[1] else np.full(masked.shape[0], -np.inf)
    empty = mx == -np.inf
    shift = np.where(empty, 0.0, mx)
    with np.errstate(invalid="ignore", over="ignore"):
        w = np.where(mask, np.exp(masked - shift[:, None]), 0.0)
    total = w.sum(axis=1)
    with np.errstate(divide="ignore"):
        ls = np.where(empty, -np.inf, mx + np.log(np.where(empty, 1.0, total)))
    return ls, w, total


def _pick(w: np.ndarray, total: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Column of the first running sum of ``w`` exceeding ``u * total`` (per row).

    If rounding leaves the running sum short of the target, the last column with a
    positive weight is returned. Rows must have at least one positive weight.
    """
    cs = np.cumsum(w, axis=1)
    k = (cs <= (u * total)[:, None]).sum(axis=1)
    over = k >= w.shape[1]
    if over.any():
        last = w.shape[1] - 1 - np.argmax(w[over, ::-1] > 0, axis=1)
        k[over] = last
    return k


def _branch(stay: np.ndarray, own: np.ndarray, other: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Upper-level draw: 0 stay, 1 own nest, 2 other nest, -1 if nothing is available."""
    b = np.stack([stay, own, other], axis=1)
    mx = b.max(axis=1)
    none = mx == -np.inf
    with np.errstate(invalid="ignore"):
        e = np.exp(b - np.where(none, 0.0, mx)[:, None])
    c0 = e[:, 0]
    c1 = c0 + e[:, 1]
    t = u * (c1 + e[:, 2])
    out = np.where(t < c0, 0, np.where(t < c1, 1, 2))
    fix = (out == 2) & (e[:, 2] == 0.0)
    out[fix] = np.where(e[fix, 1] > 0.0, 1, 0)
    out[none] = -1
    return out.astype(np.int8)


def choose_locations(
    *,
    sector_utility,
    alt_zone,
    alt_region,
    alt_price,
    travel_time,
    firm_id,
    firm_sector,
    firm_zone,
    firm_region,
    firm_alt,
    firm_area,
    firm_clawback,
    stay_utility,
    own_nest_utility,
    other_nest_utility,
    b_land,
    b_dist,
    b_claw,
    nest_scale,
    capacity=None,
    n_sampled=0,
    seed=0,
    year=0,
    threads=None,
    max_rounds=50,
    chunk: int = CHUNK,
):
    """Nested-logit location choice with optional sampling and capacity lottery, in NumPy.

    Same keyword arguments as :func:`relocsim.choice.choose_locations` (``threads`` is
    accepted and ignored) plus ``chunk``, the number of firms per utility matrix.

    Returns:
        Tuple ``(choice, nest, logsum_own, logsum_other, free, rounds)`` with the meaning
        of the fields of :class:`relocsim.choice.ChoiceResult`.
    """
    del threads
    n_firms = int(np.asarray(firm_id).shape[0])
    m = int(np.asarray(alt_zone).shape[0])
    n_regions = int(max(np.max(alt_region, initial=0), np.max(firm_region, initial=0))) + 1
    lay = alternative_layout(alt_region, n_regions)
    v = np.asarray(sector_utility, dtype=np.float64)[:, lay.perm]
    price = np.asarray(alt_price, dtype=np.float64)[lay.perm]
    region = np.asarray(alt_region)[lay.perm]
    tt = np.asarray(travel_time, dtype=np.float64)[:, np.asarray(alt_zone)[lay.perm]]
    free = None if capacity is None else np.asarray(capacity, dtype=np.float64)[lay.perm].copy()
    firm_alt = np.asarray(firm_alt)
    cur = np.where(firm_alt >= 0, lay.pos[np.maximum(firm_alt, 0)], -1)
    area = np.asarray(firm_area, dtype=np.float64)
    keys = _rng.firm_keys(seed, year, firm_id)
    sector = np.asarray(firm_sector)
    b_land = np.asarray(b_land, dtype=np.float64)
    b_dist = np.asarray(b_dist, dtype=np.float64)
    b_claw = np.asarray(b_claw, dtype=np.float64)
    lam = np.asarray(nest_scale, dtype=np.float64)

    choice = np.full(n_firms, UNPLACED, dtype=np.int64)
    nest = np.zeros(n_firms, dtype=np.int8)
    ls_own = np.full(n_firms, -np.inf)
    ls_other = np.full(n_firms, -np.inf)

    def utilities(rows: np.ndarray) -> tuple[np.ndarray, ...]:
        """Utilities, availability, own-nest flags, canonical positions and log expansion
        factors (own, other) of a chunk."""
        s = sector[rows]
        cl = b_land[s] * area[rows]
        cc = b_claw[s] * np.asarray(firm_clawback, dtype=np.float64)[rows]
        fr = np.asarray(firm_region)[rows]
        z = np.asarray(firm_zone)[rows]
        if n_sampled:
            sample = sample_alternatives(
                keys[rows], lay.region_start[fr], lay.region_end[fr], m, n_sampled
            )
            cols, own, valid = sample.positions, sample.own, sample.valid
            corr_own, corr_other = sample.log_factor_own, sample.log_factor_other
            u = (
                v[s[:, None], cols]
                - cl[:, None] * price[cols]
                - b_dist[s][:, None] * tt[z[:, None], cols]
                - cc[:, None] * ~own
            )
        else:
            cols = np.broadcast_to(np.arange(m), (rows.size, m))
            own = region[None, :] == fr[:, None]
            valid = True
            corr_own = corr_other = np.zeros(rows.size)
            u = (
                v[s]
                - cl[:, None] * price[None, :]
                - b_dist[s][:, None] * tt[z]
                - cc[:, None] * ~own
            )
        avail = valid & (u > -np.inf) & (cols != cur[rows][:, None])
        if free is not None:
            avail &= free[cols] >= area[rows][:, None]
        return u, avail, own, cols, corr_own, corr_other

    def run_round(rows: np.ndarray, rnd: int) -> None:
        """Draw (round 0) or redraw (later rounds) the alternative of ``rows``."""
        for lo in range(0, rows.size, chunk):
            r = rows[lo : lo + chunk]
            u, avail, own, cols, corr_own, corr_other = utilities(r)
            rk = _rng.round_keys(keys[r], rnd)
            u_alt = _rng.to_uniform(_rng.draw(rk, _rng.SLOT_ALTERNATIVE))
            lo_own, w_own, t_own = _nest_logsum(u, avail & own)
            lo_oth, w_oth, t_oth = _nest_logsum(u, avail & ~own)
            if rnd == 0:
                lo_own = lo_own + corr_own
                lo_oth = lo_oth + corr_other
                ls_own[r] = lo_own
                ls_other[r] = lo_oth
                s = sector[r]
                u_branch = _rng.to_uniform(_rng.draw(rk, _rng.SLOT_BRANCH))
                with np.errstate(invalid="ignore"):
                    b_own = np.where(
                        lo_own == -np.inf, -np.inf, own_nest_utility[r] + lam[s] * lo_own
                    )
                    b_oth = np.where(
                        lo_oth == -np.inf, -np.inf, other_nest_utility[r] + lam[s] * lo_oth
                    )
                br = _branch(stay_utility[r], b_own, b_oth, u_branch)
                nest[r] = np.maximum(br, 0)
                choice[r] = np.where(br == 0, STAY, UNPLACED)
            else:
                br = nest[r]
            for b, w, t in ((1, w_own, t_own), (2, w_oth, t_oth)):
                sel = (br == b) & (t > 0.0)
                if sel.any():
                    k = _pick(w[sel], t[sel], u_alt[sel])
                    choice[r[sel]] = cols[sel, k]
            # a nest left empty by capacity in a later round: the firm is unplaced
            gone = (br > 0) & (np.where(br == 1, t_own, t_oth) <= 0.0)
            choice[r[gone]] = UNPLACED

    rows = np.arange(n_firms, dtype=np.int64)
    rounds = 0
    for rnd in range(max_rounds):
        rounds = rnd + 1
        run_round(rows, rnd)
        if free is None:
            break
        app = rows[choice[rows] >= 0]
        key = _rng.draw(_rng.round_keys(keys[app], rnd), _rng.SLOT_PRIORITY)
        alt = choice[app]
        order = np.lexsort((app, key, alt))
        app, alt = app[order], alt[order]
        bounds = np.flatnonzero(np.diff(alt)) + 1
        rejected = [np.empty(0, dtype=np.int64)]
        for seg in np.split(np.arange(app.size), bounds) if app.size else []:
            a = alt[seg[0]]
            cum = np.cumsum(area[app[seg]])
            n_ok = int(np.count_nonzero(cum <= free[a]))
            if n_ok:
                free[a] = free[a] - cum[n_ok - 1]
            rejected.append(app[seg[n_ok:]])
        rows = np.sort(np.concatenate(rejected))
        if rows.size == 0:
            break
    else:
        choice[rows] = UNPLACED  # still rejected after max_rounds

    out = np.where(choice >= 0, lay.perm[np.maximum(choice, 0)], choice).astype(np.int32)
    free_out = np.full(m, np.inf)
    if free is not None:
        free_out[lay.perm] = free
    return out, nest, ls_own, ls_other, free_out, rounds
