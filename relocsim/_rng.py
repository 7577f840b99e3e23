"""Counter-based random numbers shared by the location-choice kernel and its reference.

Every random number a firm uses is a pure function of the words
``(seed, year, firm_id, round, slot)``: no generator state is carried from one firm to
the next, so the results do not depend on the number of threads, on how firms are
chunked, or on the order in which they are processed. The compiled kernel
(``relocsim/_core.pyx``) implements the same arithmetic in C; this module is the NumPy
twin, and the reference implementation uses it to reproduce the kernel draw for draw.

The hash is the SplitMix64 finaliser (Steele, Lea and Flood, 2014) applied in a chain::

    key(seed, year, id) = mix((mix((mix(seed + G) ^ year) + G) ^ id) + G)
    round_key(key, r)   = mix((key ^ r) + G)
    draw(round_key, k)  = mix(round_key + (k + 1) * G)

with ``G = 0x9E3779B97F4A7C15`` and all arithmetic modulo 2**64. A draw becomes a
uniform double in ``[0, 1)`` from its top 53 bits, or an index in ``[0, m)`` by the
multiply-shift of its top 32 bits (bias below ``m / 2**32``).
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1

SLOT_BRANCH = 0
"""Slot of the uniform that picks the upper-level branch (stay / own nest / other nest)."""
SLOT_ALTERNATIVE = 1
"""Slot of the uniform that picks the alternative inside the chosen nest."""
SLOT_PRIORITY = 2
"""Slot of the 64-bit priority key used by the capacity lottery."""
SLOT_SAMPLE = 3
"""First slot of the sampled-alternative indices (slot ``SLOT_SAMPLE + k`` for draw k)."""


def as_word(value: int) -> np.uint64:
    """Return a Python integer reduced modulo 2**64 as a NumPy ``uint64``."""
    return np.uint64(int(value) & _MASK64)


def mix64(z: np.ndarray) -> np.ndarray:
    """Apply the SplitMix64 finaliser to an array of ``uint64`` (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(30))
        z = z * _MUL1
        z = z ^ (z >> np.uint64(27))
        z = z * _MUL2
        return z ^ (z >> np.uint64(31))


def firm_keys(seed: int, year: int, firm_id: np.ndarray) -> np.ndarray:
    """Return the per-firm stream keys for ``(seed, year, firm_id)``.

    Args:
        seed: Simulation seed (any Python integer; taken modulo 2**64).
        year: Simulation year (negative years wrap like two's complement).
        firm_id: Stable firm identifiers, int64 (N,).

    Returns:
        uint64 (N,) keys.
    """
    ids = np.ascontiguousarray(firm_id, dtype=np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        k = mix64(np.array([as_word(seed) + GOLDEN], dtype=np.uint64))
        k = mix64((k ^ as_word(year)) + GOLDEN)
        return mix64((k ^ ids) + GOLDEN)


def round_keys(keys: np.ndarray, rnd: int) -> np.ndarray:
    """Return the keys of lottery round ``rnd`` for the given firm keys."""
    with np.errstate(over="ignore"):
        return mix64((np.asarray(keys, dtype=np.uint64) ^ as_word(rnd)) + GOLDEN)


def draw(rkeys: np.ndarray, slot: int | np.ndarray) -> np.ndarray:
    """Return the raw 64-bit draws at ``slot`` (scalar or array broadcast against ``rkeys``)."""
    slot = np.asarray(slot, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(np.asarray(rkeys, dtype=np.uint64) + (slot + np.uint64(1)) * GOLDEN)


def to_uniform(h: np.ndarray) -> np.ndarray:
    """Map raw draws to doubles in ``[0, 1)`` using their top 53 bits."""
    return (np.asarray(h, dtype=np.uint64) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def to_index(h: np.ndarray, m: int) -> np.ndarray:
    """Map raw draws to indices in ``[0, m)`` (multiply-shift of the top 32 bits), as int64."""
    hi = np.asarray(h, dtype=np.uint64) >> np.uint64(32)
    return ((hi * np.uint64(m)) >> np.uint64(32)).astype(np.int64)
