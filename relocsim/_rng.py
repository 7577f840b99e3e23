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

The yearly stages outside the kernel (demography, space need, public accounts) draw from the
same chain through :class:`Streams`: a firm's stream for a stage is
``round_key(key(seed, year, id), STAGE_ROUND + stage)``, above every lottery round the kernel
uses, so no stage ever reuses a kernel draw. Because a draw belongs to a firm and not to a
position in the table, two runs with the same seed give a firm the same draws whatever else
differs between them (which firms moved, exited or were born): paired policy runs stay paired.
Births, which have no firm id yet, are keyed by ``(seed, year, BIRTH_WORD, cell[, index])``
with ``cell`` the zone-by-sector cell and ``index`` the newborn's rank in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy.special import ndtri

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


STAGE_ROUND = 1 << 32
"""Round word of the first stage stream, above the kernel's lottery rounds."""
BIRTH_WORD = 0xB1272
"""Word that separates the birth chain from the firm chain."""


class Stage(IntEnum):
    """The stages that draw per-firm random numbers outside the kernel."""

    DEMOGRAPHY = 1
    SPACE = 2
    ACCOUNTS = 3
    BIRTHS = 4


def chain(seed: int, *words: int | np.ndarray) -> np.ndarray:
    """Key of the word chain ``mix((...mix((mix(seed + G) ^ w1) + G)...) ^ wn) + G)``.

    ``chain(seed, year, firm_id)`` is :func:`firm_keys`; words broadcast against each other.
    """
    k = mix64(np.array([as_word(seed) + GOLDEN], dtype=np.uint64))
    with np.errstate(over="ignore"):
        for w in words:
            word = np.ascontiguousarray(w, dtype=np.int64).view(np.uint64)
            k = mix64((k ^ word) + GOLDEN)
    return k


def uniform_of(keys: np.ndarray, slot: int) -> np.ndarray:
    """Uniform doubles in ``[0, 1)`` at ``slot`` of each stream."""
    return to_uniform(draw(keys, slot))


def normal_of(keys: np.ndarray, slot: int) -> np.ndarray:
    """Standard normal draws at ``slot`` of each stream (inverse CDF of a centred uniform)."""
    centred = ((draw(keys, slot) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return ndtri(centred)


@dataclass(frozen=True)
class Streams:
    """The per-firm and per-birth-cell random streams of one simulated year.

    Attributes:
        seed: the run's seed.
        year: the simulated year.
    """

    seed: int
    year: int

    def keys(self, stage: Stage, firm_id: np.ndarray) -> np.ndarray:
        """Stream keys of firms ``firm_id`` for ``stage``; read them with :func:`uniform_of`."""
        return round_keys(firm_keys(self.seed, self.year, firm_id), STAGE_ROUND + int(stage))

    def uniform(self, stage: Stage, firm_id: np.ndarray, slot: int) -> np.ndarray:
        """One uniform per firm at ``slot`` of its ``stage`` stream."""
        return uniform_of(self.keys(stage, firm_id), slot)

    def birth_keys(self, cell: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """Keys of birth cells (zone x sector), or of the ``index``-th newborn of each cell."""
        words = (
            (self.year, BIRTH_WORD, cell) if index is None else (self.year, BIRTH_WORD, cell, index)
        )
        return chain(self.seed, *words)
