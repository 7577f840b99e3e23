"""Log-likelihood and analytic gradient of the simulator's nested logit, in plain NumPy.

This is the executable specification (the twin) of the compiled kernel
``relocsim/_likelihood.pyx``; :func:`loglik` dispatches to either. For a decision ``i`` with
nest utilities ``V_n = gamma_s . z_n + lambda_s L_n`` (``L_n`` the log of the nest's, possibly
expanded, sum of ``exp(u)``), stay utility 0 and ``D = 1 + exp(V_own) + exp(V_other)``:

* stay: ``log P = -log D``;
* move to pool ``a`` of nest ``n``: ``log P = V_n - log D + u_a - L'_n`` if ``a`` is one of the
  pools that rejected no one in the year's capacity lottery (land left ``capacity_end`` at
  least ``room_need``), ``L'_n`` summing over those pools of the nest; otherwise only
  ``V_n - log D`` (the pool-level term is left out); with no rationing ``L'_n = L_n``;
* unplaced in nest ``n`` (chose to move, lost the capacity lottery): ``log P = V_n - log D``.

Gradients are returned over the *local* coefficients of each decision's sector: the K lower
ones (beta), the J upper ones (gamma) and the nest scale, summed per sector (S, K + J + 1),
and optionally per decision (N, K + J + 1) for robust standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relocsim.estimation.design import ChoiceData

CHUNK = 1024


@dataclass(frozen=True)
class Sample:
    """Sampled alternatives of each decision (the chosen one first, weight 1).

    Attributes:
        alts: pool indices (N, L); -1 pads.
        weights: expansion factor of each sampled pool in its nest's sum (N, L).
    """

    alts: np.ndarray
    weights: np.ndarray


@dataclass
class LogLik:
    """Log-likelihood, its gradient per sector and (optionally) per decision."""

    value: float
    grad: np.ndarray
    scores: np.ndarray | None = None


def loglik(
    data: ChoiceData,
    beta: np.ndarray,
    gamma: np.ndarray,
    lam: np.ndarray,
    sample: Sample | None = None,
    scores: bool = False,
    implementation: str = "kernel",
    threads: int | None = None,
) -> LogLik:
    """Log-likelihood of ``data`` at the effective coefficients, with its gradient.

    Args:
        beta: lower-level coefficients (S, K); gamma: upper-level (S, J); lam: nest scales (S,).
        sample: sampled alternatives, or None for full choice sets.
        scores: also return the per-decision gradient (N, K + J + 1).
        implementation: "kernel" (compiled, OpenMP) or "reference" (this module's NumPy).
        threads: kernel threads (default: all); the result does not depend on it.
    """
    beta = np.ascontiguousarray(beta, np.float64)
    gamma = np.ascontiguousarray(gamma, np.float64)
    lam = np.ascontiguousarray(lam, np.float64)
    if implementation == "reference":
        return _loglik_numpy(data, beta, gamma, lam, sample, scores)
    if implementation != "kernel":
        raise ValueError(f"implementation {implementation!r}: expected 'kernel' or 'reference'")
    from relocsim import _likelihood

    n, q = data.n, beta.shape[1] + gamma.shape[1] + 1
    grad = np.zeros((len(lam), q))
    per = np.zeros((n, q)) if scores else np.zeros((0, q))
    alts = sample.alts if sample else np.zeros((0, 0), np.int32)
    weights = sample.weights if sample else np.zeros((0, 0))
    blocks = data.blocks()
    value = _likelihood.loglik(
        data.tables,
        data.row,
        data.scale,
        data.allowed,
        data.allow_row,
        data.capacity,
        data.capacity_end,
        data.room_need,
        data.year_idx,
        data.need,
        data.alt_region,
        data.dec_region,
        data.sector,
        data.outcome,
        data.chosen,
        data.z_own,
        data.z_other,
        beta,
        gamma,
        lam,
        np.ascontiguousarray(alts, np.int32),
        np.ascontiguousarray(weights, np.float64),
        blocks.order,
        blocks.start,
        blocks.shared,
        grad,
        per,
        int(threads or 0),
    )
    return LogLik(float(value), grad, per if scores else None)


def _loglik_numpy(
    data: ChoiceData,
    beta: np.ndarray,
    gamma: np.ndarray,
    lam: np.ndarray,
    sample: Sample | None,
    scores: bool,
) -> LogLik:
    k, j = beta.shape[1], gamma.shape[1]
    q = k + j + 1
    per = np.zeros((data.n, q))
    value = 0.0
    for lo in range(0, data.n, CHUNK):
        r = np.arange(lo, min(lo + CHUNK, data.n))
        ll, g = _chunk(data, beta, gamma, lam, sample, r)
        value += ll.sum()
        per[r] = g
    grad = np.zeros((len(lam), q))
    np.add.at(grad, data.sector, per)
    return LogLik(float(value), grad, per if scores else None)


def _chunk(
    data: ChoiceData,
    beta: np.ndarray,
    gamma: np.ndarray,
    lam: np.ndarray,
    sample: Sample | None,
    r: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-decision log-likelihood and local gradient of decisions ``r``."""
    s = data.sector[r]
    c = len(r)
    if sample is None:
        cols = np.broadcast_to(np.arange(data.n_pools), (c, data.n_pools))
        w = np.ones(cols.shape)
        valid = np.ones(cols.shape, bool)
    else:
        valid = sample.alts[r] >= 0
        cols = np.maximum(sample.alts[r], 0)
        w = sample.weights[r]
    x = data.scale[r][:, :, None] * data.tables[data.row[r][:, :, None], cols[:, None, :]]
    u = np.einsum("ck,ckl->cl", beta[s], x)
    avail = (
        valid
        & (data.allowed[data.allow_row[r][:, None], cols] > 0)
        & (data.capacity[data.year_idx[r][:, None], cols] >= data.need[r][:, None])
    )
    own = data.alt_region[cols] == data.dec_region[r][:, None]
    chosen = data.chosen[r]
    room = data.capacity_end[data.year_idx[r][:, None], cols] >= data.room_need[r][:, None]
    logsum, mean_x = [], []
    for mask in (avail & own, avail & ~own, avail & own & room, avail & ~own & room):
        masked = np.where(mask, u, -np.inf)
        mx = masked.max(axis=1)
        empty = mx == -np.inf
        e = np.where(mask, w * np.exp(masked - np.where(empty, 0.0, mx)[:, None]), 0.0)
        total = e.sum(axis=1)
        safe = np.where(empty, 1.0, total)
        logsum.append(np.where(empty, -np.inf, mx + np.log(safe)))
        mean_x.append(np.einsum("cl,ckl->ck", e, x) / safe[:, None])
    lam_s = lam[s]
    z = (data.z_own[r], data.z_other[r])
    v = [
        np.where(np.isinf(logsum[n]), -np.inf, (gamma[s] * z[n]).sum(1) + lam_s * logsum[n])
        for n in range(2)
    ]
    log_d = np.logaddexp(0.0, np.logaddexp(v[0], v[1]))
    prob = [np.exp(v[n] - log_d) for n in range(2)]
    o = data.outcome[r]
    placed = (chosen >= 0) & (
        data.capacity_end[data.year_idx[r], np.maximum(chosen, 0)] >= data.room_need[r]
    )
    x_c = data.scale[r] * data.tables[data.row[r], np.maximum(chosen, 0)[:, None]]
    u_c = (beta[s] * x_c).sum(1)
    ll = -log_d
    g_beta = np.zeros((c, beta.shape[1]))
    g_gamma = np.zeros((c, gamma.shape[1]))
    g_lam = np.zeros(c)
    for n in range(2):
        finite = np.isfinite(logsum[n])
        ls = np.where(finite, logsum[n], 0.0)
        g_beta -= (prob[n] * lam_s)[:, None] * mean_x[n]
        g_gamma -= prob[n][:, None] * z[n]
        g_lam -= prob[n] * ls
        mine = o == n + 1
        ll = ll + np.where(mine, np.where(finite, v[n], 0.0), 0.0)
        ls_room = np.where(np.isfinite(logsum[n + 2]), logsum[n + 2], 0.0)
        ll = ll + np.where(mine & placed, u_c - ls_room, 0.0)
        g_beta += np.where(mine, lam_s, 0.0)[:, None] * mean_x[n]
        g_beta += np.where(mine & placed, 1.0, 0.0)[:, None] * (x_c - mean_x[n + 2])
        g_gamma += np.where(mine, 1.0, 0.0)[:, None] * z[n]
        g_lam += np.where(mine, ls, 0.0)
    return ll, np.concatenate([g_beta, g_gamma, g_lam[:, None]], axis=1)
