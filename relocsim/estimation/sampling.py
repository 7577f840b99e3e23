"""Sampling of alternatives for the likelihood: uniform, or stratified by nest.

Each decision keeps its chosen pool (weight 1) and draws other available pools without
replacement. Each drawn pool's weight is its stratum's expansion factor
``(available pools in the stratum, chosen excluded) / (pools drawn from it)``, so that the
weighted sum of ``exp(u)`` over the sample estimates each nest's full sum (Guevara and
Ben-Akiva 2013) and the nest logsums, hence the nest scale, stay consistent.

* ``stratified`` (recommended): half the draws from the firm's own region, half from the
  others, each with its own factor: both nests always get their share of draws.
* ``uniform``: draws from all available pools with one factor; a small nest may get no draw,
  and its logsum is then missing for that decision (biased toward staying in the region).
"""

from __future__ import annotations

import numpy as np

from relocsim.estimation.design import ChoiceData
from relocsim.estimation.likelihood import Sample

CHUNK = 4096
METHODS = ("stratified", "uniform")


def available(data: ChoiceData, r: np.ndarray) -> np.ndarray:
    """Pools open to decisions ``r`` (allowed for the sector, enough land on offer) (len(r), M)."""
    return (data.allowed[data.allow_row[r]] > 0) & (
        data.capacity[data.year_idx[r]] >= data.need[r][:, None]
    )


def _draw(keys: np.ndarray, mask: np.ndarray, n_draw: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_draw`` lowest-key pools of each row among ``mask`` (-1 pads), and weights."""
    keys = np.where(mask, keys, np.inf)
    n_draw = min(n_draw, keys.shape[1])
    part = np.argpartition(keys, n_draw - 1, axis=1)[:, :n_draw] if n_draw else keys[:, :0]
    picked = np.take_along_axis(keys, part, axis=1) < np.inf
    alts = np.where(picked, part, -1)
    count = mask.sum(axis=1)
    drawn = picked.sum(axis=1)
    factor = np.where(drawn > 0, count / np.maximum(drawn, 1), 0.0)
    return alts, np.where(picked, factor[:, None], 0.0)


def sample_alternatives(
    data: ChoiceData, n_sampled: int, method: str = "stratified", seed: int = 0
) -> Sample:
    """Draw ``n_sampled`` pools per decision besides the chosen one.

    Args:
        n_sampled: pools drawn per decision (split evenly between the nests if stratified).
        method: "stratified" or "uniform".
        seed: seed of the draws (the same seed gives the same sample).
    """
    if method not in METHODS:
        raise ValueError(f"sampling method {method!r}: expected one of {METHODS}")
    if n_sampled < 2:
        raise ValueError(f"n_sampled = {n_sampled}: expected at least 2 sampled alternatives")
    rng = np.random.default_rng(seed)
    n, m = data.n, data.n_pools
    width = 1 + n_sampled
    alts = np.full((n, width), -1, np.int32)
    weights = np.zeros((n, width))
    for lo in range(0, n, CHUNK):
        r = np.arange(lo, min(lo + CHUNK, n))
        avail = available(data, r)
        chosen = data.chosen[r]
        has = chosen >= 0
        avail[np.flatnonzero(has), chosen[has]] = False
        keys = rng.random((len(r), m))
        if method == "uniform":
            parts = [_draw(keys, avail, n_sampled)]
        else:
            own = data.alt_region[None, :] == data.dec_region[r][:, None]
            half = n_sampled // 2
            parts = [_draw(keys, avail & own, half), _draw(keys, avail & ~own, n_sampled - half)]
        a = np.concatenate([p[0] for p in parts], axis=1)
        w = np.concatenate([p[1] for p in parts], axis=1)
        alts[r, 0] = chosen
        weights[r, 0] = np.where(has, 1.0, 0.0)
        alts[r, 1 : 1 + a.shape[1]] = a
        weights[r, 1 : 1 + a.shape[1]] = w
    return Sample(alts=alts, weights=weights)
