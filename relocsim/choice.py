"""Location choice of relocating firms: nested logit, sampling and a capacity lottery.

This module owns the public entry point of the location-choice stage,
:func:`choose_locations`. It validates and converts the inputs (so a bad array never
reaches compiled code), lays the alternatives out by region and calls either the
compiled kernel (``relocsim._core``, OpenMP) or the NumPy reference
(``relocsim._reference``). Both give identical results, draw for draw, whatever the
number of threads: every random number comes from a counter-based stream keyed by
``(seed, year, firm_id, round, slot)`` (see ``relocsim._rng``).

The model, for firm i of sector s, alternative (land pool) a::

    U[i, a] = V[s, a] - b_land[s] * area[i] * price[a]
              - b_dist[s] * travel_time[zone[i], alt_zone[a]]
              - b_claw[s] * clawback[i] * (alt_region[a] != region[i])

Upper level (three branches): stay (``stay_utility``), own-region nest
(``own_nest_utility + nest_scale * logsum_own``) or other-region nest
(``other_nest_utility + nest_scale * logsum_other``); lower level: multinomial logit
inside the chosen nest.

Sampling of alternatives (``n_sampled > 0``) is stratified by nest: each firm draws about
half of its sample uniformly (with replacement) from its own region's pools and the rest
from the other regions' pools; a nest no larger than its half is taken whole and its
unused draws go to the other nest. Each nest's logsum carries its own expansion factor,
``log(size / n_nest * sum of exp(U) over the nest's draws)``, so ``exp(logsum)`` is an
unbiased estimate of the nest's sum of ``exp(U)``. The logsum itself is not unbiased
(``E[log X] < log E[X]``), and neither is ``exp(nest_scale * logsum)`` in the upper level
(nest scales below 1 make it concave): both nests are understated by about
``nest_scale * (1 - nest_scale) / 2`` times the squared coefficient of variation of their
estimate, which shrinks as ``1 / n_nest``, so staying gains a little share, and the nest
with the more dispersed utilities loses a little to the other. Inside a nest, choosing
among the draws in proportion to ``exp(U)`` is a ratio estimator: its probabilities
converge to the full-set ones as the sample grows (bias O(1 / n_nest)). Measured on 600
pools with N(0, 1) utilities (``tests/test_kernel.py``): nest shares within 0.11 points of
the exact ones at 50 draws and within 1 point at 5 (uniform sampling over all pools had
cost the smaller nest 0.8-2.2 and 9-13 points).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from relocsim import _core, _reference
from relocsim._core import STAY, UNPLACED  # the choice codes are the kernel's own

__all__ = [
    "NEST_OTHER",
    "NEST_OWN",
    "NEST_STAY",
    "STAY",
    "UNPLACED",
    "ChoiceResult",
    "choose_locations",
    "default_threads",
]

NEST_STAY = 0
NEST_OWN = 1
NEST_OTHER = 2

_APPLICANT = np.dtype([("key", np.uint64), ("firm", np.int64)])
_MAX_DIRECT_REGIONS = 1 << 16
_ALIGN = 8  # doubles per AVX-512 vector
_ALIGN_BYTES = 64

ArrayLike = np.ndarray | list | tuple


@dataclass(frozen=True)
class ChoiceResult:
    """Outcome of :func:`choose_locations`.

    Attributes:
        choice: int32 (N,); chosen alternative index (>= 0), ``STAY`` or ``UNPLACED``.
        nest: int8 (N,); upper-level choice of the first round: 0 stay (also when no
            branch at all was available), 1 own-region nest, 2 other-region nest.
        logsum_own: float64 (N,); log-sum-exp of the utilities of the available
            alternatives in the firm's own region (its current one excluded), -inf if
            none. With sampling, the estimate from the nest's draws (see the module
            docstring: its exponential is unbiased, the logsum itself slightly low).
        logsum_other: float64 (N,); the same over the other regions.
        free: float64 (M,); capacity left after placement (+inf everywhere without
            capacity). A copy: the input is untouched.
        rounds: Number of lottery rounds used (1 without capacity).
    """

    choice: np.ndarray
    nest: np.ndarray
    logsum_own: np.ndarray
    logsum_other: np.ndarray
    free: np.ndarray
    rounds: int


def default_threads() -> int:
    """Return the thread count used when ``threads=None``.

    ``RELOCSIM_THREADS`` if set, otherwise ``os.cpu_count()``.
    """
    env = os.environ.get("RELOCSIM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError as exc:
            raise ValueError(f"RELOCSIM_THREADS must be an integer, got {env!r}") from exc
        if n < 1:
            raise ValueError(f"RELOCSIM_THREADS must be >= 1, got {n}")
        return n
    return os.cpu_count() or 1


def _array(name: str, value: ArrayLike, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    return arr


def _floats(
    name: str,
    value: ArrayLike,
    shape: tuple[int, ...],
    *,
    allow_neg_inf: bool = False,
    allow_pos_inf: bool = False,
    minimum: float | None = None,
    positive: bool = False,
) -> np.ndarray:
    """Check shape and values of a float array and return it as contiguous float64."""
    arr = _array(name, value, len(shape))
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.size and not np.isfinite(arr).all():
        if np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN")
        if not allow_pos_inf and (arr == np.inf).any():
            raise ValueError(f"{name} contains +inf")
        if not allow_neg_inf and (arr == -np.inf).any():
            raise ValueError(f"{name} contains -inf")
    if arr.size:
        if minimum is not None and arr.min() < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got minimum {arr.min()}")
        if positive and arr.min() <= 0.0:
            raise ValueError(f"{name} must be > 0, got minimum {arr.min()}")
    return arr


def _indices(name: str, value: ArrayLike, n: int, low: int, high: int | None) -> np.ndarray:
    """Check an integer index array of length n with values in [low, high)."""
    arr = _array(name, value, 1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n}, got {arr.shape[0]}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < low or (high is not None and hi >= high):
            bound = f"[{low}, {high})" if high is not None else f">= {low}"
            raise ValueError(f"{name} values must be in {bound}, got range [{lo}, {hi}]")
        if hi > np.iinfo(np.int32).max:
            raise ValueError(f"{name} values must fit in int32, got maximum {hi}")
    return arr


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _validate(**kw: object) -> dict[str, object]:
    """Validate and convert every argument of :func:`choose_locations`."""
    v = _array("sector_utility", kw["sector_utility"], 2)
    n_sectors, m = v.shape
    if n_sectors < 1 or m < 1:
        raise ValueError(f"sector_utility must have at least one row and column, got {v.shape}")
    out: dict[str, object] = {}
    out["sector_utility"] = _floats("sector_utility", v, (n_sectors, m), allow_neg_inf=True)
    tt = _array("travel_time", kw["travel_time"], 2)
    n_zones = tt.shape[0]
    if n_zones < 1 or tt.shape != (n_zones, n_zones):
        raise ValueError(f"travel_time must be square (Z, Z) with Z >= 1, got {tt.shape}")
    out["travel_time"] = _floats("travel_time", tt, (n_zones, n_zones))
    out["alt_zone"] = _indices("alt_zone", kw["alt_zone"], m, 0, n_zones)
    out["alt_region"] = _indices("alt_region", kw["alt_region"], m, 0, None)
    out["alt_price"] = _floats("alt_price", kw["alt_price"], (m,))

    firm_id = _array("firm_id", kw["firm_id"], 1)
    if firm_id.dtype == np.bool_ or not np.issubdtype(firm_id.dtype, np.integer):
        raise ValueError(f"firm_id must be an integer array, got dtype {firm_id.dtype}")
    if firm_id.dtype == np.uint64 and firm_id.size and firm_id.max() > np.iinfo(np.int64).max:
        raise ValueError("firm_id values must fit in int64")
    n = firm_id.shape[0]
    out["firm_id"] = np.ascontiguousarray(firm_id, dtype=np.int64)
    out["firm_sector"] = _indices("firm_sector", kw["firm_sector"], n, 0, n_sectors)
    out["firm_zone"] = _indices("firm_zone", kw["firm_zone"], n, 0, n_zones)
    out["firm_region"] = _indices("firm_region", kw["firm_region"], n, 0, None)
    out["firm_alt"] = _indices("firm_alt", kw["firm_alt"], n, -1, m)
    out["firm_area"] = _floats("firm_area", kw["firm_area"], (n,), minimum=0.0)
    out["firm_clawback"] = _floats("firm_clawback", kw["firm_clawback"], (n,))
    for name in ("stay_utility", "own_nest_utility", "other_nest_utility"):
        out[name] = _floats(name, kw[name], (n,), allow_neg_inf=True)
    for name in ("b_land", "b_dist", "b_claw"):
        out[name] = _floats(name, kw[name], (n_sectors,))
    out["nest_scale"] = _floats("nest_scale", kw["nest_scale"], (n_sectors,), positive=True)
    cap = kw["capacity"]
    out["capacity"] = (
        None if cap is None else _floats("capacity", cap, (m,), allow_pos_inf=True, minimum=0.0)
    )
    out["n_sampled"] = _integer("n_sampled", kw["n_sampled"], 0)
    out["seed"] = _integer("seed", kw["seed"], -(1 << 63))
    out["year"] = _integer("year", kw["year"], -(1 << 63))
    threads = kw["threads"]
    out["threads"] = default_threads() if threads is None else _integer("threads", threads, 1)
    out["max_rounds"] = _integer("max_rounds", kw["max_rounds"], 1)
    return out


def _compact_regions(args: dict[str, object]) -> int:
    """Return the number of regions, relabelling them densely if the labels are sparse."""
    alt_region = args["alt_region"]
    firm_region = args["firm_region"]
    hi = max(int(alt_region.max(initial=0)), int(firm_region.max(initial=0)))
    if hi < _MAX_DIRECT_REGIONS:
        return hi + 1
    labels, inverse = np.unique(np.concatenate([alt_region, firm_region]), return_inverse=True)
    args["alt_region"] = inverse[: alt_region.size]
    args["firm_region"] = inverse[alt_region.size :]
    return labels.size


@dataclass(frozen=True)
class _KernelLayout:
    """Region-sorted alternatives, each region padded to a multiple of ``_ALIGN`` slots.

    Padding slots have utility -inf, so they are never available; they let every vector
    loop of the kernel run without a scalar remainder.

    Attributes:
        pos_of: int64 (M,); slot of each original alternative.
        perm: int64 (P,); original alternative in each slot, -1 for padding.
        region_start: int64 (R,); first slot of each region.
        region_end: int64 (R,); one past the last slot of each region (padding included).
    """

    pos_of: np.ndarray
    perm: np.ndarray
    region_start: np.ndarray
    region_end: np.ndarray


def _kernel_layout(alt_region: np.ndarray, n_regions: int, pad: bool) -> _KernelLayout:
    lay = _reference.alternative_layout(alt_region, n_regions)
    m = lay.perm.size
    sizes = lay.region_end - lay.region_start
    padded = -(-sizes // _ALIGN) * _ALIGN
    if not pad or padded.sum() - m > m // 4:  # many small regions: padding costs more
        padded = sizes
    start = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
    canon_region = np.asarray(alt_region)[lay.perm]
    slot = start[canon_region] + (np.arange(m) - lay.region_start[canon_region])
    perm = np.full(int(padded.sum()), -1, dtype=np.int64)
    perm[slot] = lay.perm
    return _KernelLayout(
        pos_of=slot[lay.pos].astype(np.int64),
        perm=perm,
        region_start=start,
        region_end=start + padded,
    )


def _aligned_full(shape: tuple[int, ...], fill: float, dtype: type = np.float64) -> np.ndarray:
    """C-contiguous array filled with ``fill`` whose data start on a 64-byte boundary.

    Large NumPy arrays come from ``malloc`` and start 16 bytes past a page boundary, so
    every AVX-512 load of the kernel would straddle two cache lines.
    """
    itemsize = np.dtype(dtype).itemsize
    count = int(np.prod(shape))
    raw = np.empty(count * itemsize + _ALIGN_BYTES, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGN_BYTES
    out = raw[offset : offset + count * itemsize].view(dtype).reshape(shape)
    out.fill(fill)
    return out


def _run_kernel(args: dict[str, object], n_regions: int) -> tuple:
    """Lay the alternatives out for the kernel, call ``relocsim._core.choose``, map back."""
    # sampled positions are drawn within each nest's canonical range, whose size must count
    # real alternatives only: no padding then
    lay = _kernel_layout(args["alt_region"], n_regions, pad=int(args["n_sampled"]) == 0)
    real = lay.perm >= 0
    src = lay.perm[real]
    n = args["firm_id"].shape[0]
    m = lay.pos_of.size
    width = lay.perm.size
    threads = int(args["threads"])
    n_sampled = int(args["n_sampled"])
    cap = args["capacity"]

    def spread(values: np.ndarray, fill: float, dtype: type = np.float64) -> np.ndarray:
        out = _aligned_full(values.shape[:-1] + (width,), fill, dtype)
        out[..., real] = values[..., src]
        return out

    free = np.empty(0) if cap is None else spread(cap, 0.0)
    n_work = n if cap is not None else 0
    pos_out = np.empty(n, dtype=np.int32)
    nest = np.zeros(n, dtype=np.int8)
    ls_own = np.empty(n)
    ls_other = np.empty(n)
    rounds = _core.choose(
        spread(args["sector_utility"], -np.inf),
        spread(args["alt_price"], 0.0),
        spread(args["travel_time"][:, args["alt_zone"]], 0.0),
        spread(args["alt_region"], -1, np.int32),
        lay.region_start,
        lay.region_end,
        lay.pos_of,
        args["firm_id"],
        np.ascontiguousarray(args["firm_sector"], dtype=np.int64),
        np.ascontiguousarray(args["firm_zone"], dtype=np.int64),
        np.ascontiguousarray(args["firm_region"], dtype=np.int64),
        np.ascontiguousarray(args["firm_alt"], dtype=np.int64),
        lay.perm,
        args["firm_area"],
        args["firm_clawback"],
        args["stay_utility"],
        args["own_nest_utility"],
        args["other_nest_utility"],
        args["b_land"],
        args["b_dist"],
        args["b_claw"],
        args["nest_scale"],
        free,
        int(args["seed"]) & ((1 << 64) - 1),
        int(args["year"]) & ((1 << 64) - 1),
        n_sampled,
        int(args["max_rounds"]),
        threads,
        _aligned_full((threads, -(-max(width, n_sampled) // _ALIGN) * _ALIGN), 0.0),
        # rows padded to whole cache lines: threads never write to a shared line
        _aligned_full((threads, -(-max(n_sampled, 1) // _ALIGN) * _ALIGN), 0, np.int64),
        pos_out,
        nest,
        ls_own,
        ls_other,
        np.empty(n_work, dtype=np.int64),
        np.empty(width + 1, dtype=np.int64),
        np.empty(n_work, dtype=_APPLICANT),
        np.empty(n_work, dtype=_APPLICANT),
        np.zeros(n_work, dtype=np.int8),
    )
    free_out = np.full(m, np.inf)
    if cap is not None:
        free_out[src] = free[real]
    return pos_out, nest, ls_own, ls_other, free_out, int(rounds)


def choose_locations(
    *,
    sector_utility: ArrayLike,
    alt_zone: ArrayLike,
    alt_region: ArrayLike,
    alt_price: ArrayLike,
    travel_time: ArrayLike,
    firm_id: ArrayLike,
    firm_sector: ArrayLike,
    firm_zone: ArrayLike,
    firm_region: ArrayLike,
    firm_alt: ArrayLike,
    firm_area: ArrayLike,
    firm_clawback: ArrayLike,
    stay_utility: ArrayLike,
    own_nest_utility: ArrayLike,
    other_nest_utility: ArrayLike,
    b_land: ArrayLike,
    b_dist: ArrayLike,
    b_claw: ArrayLike,
    nest_scale: ArrayLike,
    capacity: ArrayLike | None = None,
    n_sampled: int = 0,
    seed: int = 0,
    year: int = 0,
    threads: int | None = None,
    max_rounds: int = 50,
    implementation: Literal["kernel", "reference"] = "kernel",
) -> ChoiceResult:
    """Draw the location of each firm from a three-branch nested logit.

    Shapes: S sectors, M alternatives (land pools: one zone x one land-use class),
    Z zones, N firms.

    Args:
        sector_utility: float (S, M); sector-by-alternative utility V[s, a]; -inf means
            sector s may not locate in a.
        alt_zone: int (M,); zone of each alternative.
        alt_region: int (M,), >= 0; region of each alternative.
        alt_price: float (M,); land price.
        travel_time: float (Z, Z); travel time between zones.
        firm_id: int (N,); stable firm ids, the key of each firm's random stream.
        firm_sector: int (N,); sector of each firm.
        firm_zone: int (N,); zone the distance term is measured from.
        firm_region: int (N,), >= 0; region defining the own and other nests.
        firm_alt: int (N,); current alternative, excluded from the choice set; -1 none.
        firm_area: float (N,), >= 0; land needed (cost term and capacity demand).
        firm_clawback: float (N,); aid to repay when leaving the region.
        stay_utility: float (N,); utility of staying; -inf if staying is not possible.
        own_nest_utility: float (N,); constant of the own-region nest (-inf allowed).
        other_nest_utility: float (N,); constant of the other-region nest (-inf allowed).
        b_land: float (S,); land-cost coefficient.
        b_dist: float (S,); travel-time coefficient.
        b_claw: float (S,); clawback coefficient.
        nest_scale: float (S,), > 0; logsum coefficient of the nests.
        capacity: float (M,), >= 0, or None; land available in each alternative. An
            alternative is unavailable to a firm whose area exceeds what is left, and
            placement runs as an iterative lottery that never exceeds it.
        n_sampled: If > 0, each firm considers this many alternatives, drawn uniformly
            with replacement within each nest (half from its own region, half from the
            others; a nest smaller than its half is taken whole), and each nest's logsum
            is ``log(size / n_nest * sum of exp(U) over its draws)``, whose exponential is
            unbiased. ``n_sampled >= M`` is the full choice set. See the module docstring
            for the bias that remains in the choice probabilities.
        seed: Simulation seed (any integer, modulo 2**64).
        year: Simulation year, part of the random-stream key.
        threads: Number of threads; None means ``RELOCSIM_THREADS`` or all cores.
        max_rounds: Maximum number of lottery rounds; firms still rejected afterwards
            are ``UNPLACED``.
        implementation: ``"kernel"`` (compiled, OpenMP) or ``"reference"`` (NumPy).

    Returns:
        The choices, first-round nests and logsums, remaining capacity and rounds used.

    Raises:
        ValueError: If an argument has the wrong shape, dtype or values (the message
            names it) or ``implementation`` is unknown.
    """
    if implementation not in ("kernel", "reference"):
        raise ValueError(f"implementation must be 'kernel' or 'reference', got {implementation!r}")
    args = _validate(
        sector_utility=sector_utility,
        alt_zone=alt_zone,
        alt_region=alt_region,
        alt_price=alt_price,
        travel_time=travel_time,
        firm_id=firm_id,
        firm_sector=firm_sector,
        firm_zone=firm_zone,
        firm_region=firm_region,
        firm_alt=firm_alt,
        firm_area=firm_area,
        firm_clawback=firm_clawback,
        stay_utility=stay_utility,
        own_nest_utility=own_nest_utility,
        other_nest_utility=other_nest_utility,
        b_land=b_land,
        b_dist=b_dist,
        b_claw=b_claw,
        nest_scale=nest_scale,
        capacity=capacity,
        n_sampled=n_sampled,
        seed=seed,
        year=year,
        threads=threads,
        max_rounds=max_rounds,
    )
    n_regions = _compact_regions(args)
    if implementation == "kernel":
        out = _run_kernel(args, n_regions)
    else:
        out = _reference.choose_locations(**args)
    choice, nest, ls_own, ls_other, free, rounds = out
    return ChoiceResult(
        choice=choice,
        nest=nest,
        logsum_own=ls_own,
        logsum_other=ls_other,
        free=free,
        rounds=rounds,
    )
