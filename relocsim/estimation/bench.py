"""``relocsim bench estimate``: time to convergence of the compiled likelihood vs its NumPy twin.

Synthetic nested-logit data (N decisions x M pools in 3 regions, drawn from the model with
known coefficients: land cost, travel time, a zone attribute; move constant, stress, delocalisation
constant; nest scale) is fitted once with the compiled kernel and once with the NumPy twin, in
the same run. Reported: seconds, optimiser iterations, peak traced memory (NumPy arrays and
Python objects, tracemalloc), log-likelihood, and the twin/kernel ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
from scipy import optimize

from relocsim.estimation.design import UPPER, ChoiceData, Layout
from relocsim.estimation.fit import Problem, _curvature_scale
from relocsim.estimation.sampling import sample_alternatives

TRUE = {
    "b_land": 1.0,
    "b_dist": 0.05,
    "b_zone": 0.5,
    "asc_move": -3.0,
    "b_stress": 2.0,
    "asc_deloc": -0.7,
    "nest_scale": 0.6,
}
SIZES = {
    "quick": [(20_000, 50, 0), (20_000, 200, 0), (20_000, 200, 20)],
    "full": [(100_000, 600, 0), (100_000, 600, 50), (10_000, 50, 0)],
}


def synthetic_layout() -> Layout:
    """One sector; free: b_land, b_dist, b_zone, asc_move, b_stress, asc_deloc, nest_scale."""
    beta_idx = np.array([[0, 1, 2]])
    gamma_idx = np.full((1, len(UPPER)), -1)
    gamma_idx[0, UPPER.index("asc_move")] = 3
    gamma_idx[0, UPPER.index("b_stress")] = 4
    gamma_idx[0, UPPER.index("asc_deloc")] = 5
    names = list(TRUE)
    return Layout(
        names=names,
        paths=[[n] for n in names],
        beta_idx=beta_idx,
        beta_fixed=np.zeros((1, 3)),
        gamma_idx=gamma_idx,
        gamma_fixed=np.zeros((1, len(UPPER))),
        lam_idx=np.array([6]),
        lam_fixed=np.ones(1),
        start=np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8]),
        lower_names=["b_land", "b_dist", "b_zone"],
    )


def synthetic_data(n: int, m: int, seed: int = 0) -> ChoiceData:
    """N decisions over M pools, outcomes drawn from the nested logit at :data:`TRUE`."""
    rng = np.random.default_rng(seed)
    n_zones = m
    region = (np.arange(m) * 3 // m).astype(np.int32)
    xy = rng.uniform(0, 100, (n_zones, 2))
    travel = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    price = rng.lognormal(0, 0.5, m)
    zone_attr = rng.normal(0, 1, m)
    tables = np.concatenate([-price[None], -travel, zone_attr[None]])
    origin = rng.integers(0, m, n)
    need = rng.lognormal(0, 0.5, n)
    row = np.stack([np.zeros(n), 1 + origin, np.full(n, 1 + n_zones)], axis=1).astype(np.int32)
    scale = np.stack([need, np.ones(n), np.ones(n)], axis=1)
    stress = rng.uniform(0, 1, n) * (rng.random(n) < 0.3)
    z_own = np.zeros((n, len(UPPER)))
    z_own[:, UPPER.index("asc_move")] = 1.0
    z_own[:, UPPER.index("b_stress")] = stress
    z_other = z_own.copy()
    z_other[:, UPPER.index("asc_deloc")] = 1.0
    data = ChoiceData(
        tables=np.ascontiguousarray(tables),
        row=np.ascontiguousarray(row),
        scale=np.ascontiguousarray(scale),
        allowed=np.ones((1, m), np.uint8),
        allow_row=np.zeros(n, np.int32),
        capacity=np.full((1, m), np.inf),
        capacity_end=np.full((1, m), np.inf),
        room_need=np.zeros(n),
        year_idx=np.zeros(n, np.int32),
        need=need,
        alt_region=region,
        dec_region=region[origin].astype(np.int32),
        sector=np.zeros(n, np.int32),
        outcome=np.zeros(n, np.int8),
        chosen=np.full(n, -1, np.int32),
        z_own=np.ascontiguousarray(z_own),
        z_other=np.ascontiguousarray(z_other),
        firm=np.arange(n, dtype=np.int64),
    )
    _draw_outcomes(data, synthetic_layout(), rng)
    return data


def _draw_outcomes(data: ChoiceData, layout: Layout, rng: np.random.Generator) -> None:
    beta, gamma, lam = layout.effective(np.array(list(TRUE.values())))
    for lo in range(0, data.n, 2048):
        r = np.arange(lo, min(lo + 2048, data.n))
        x = data.scale[r][:, :, None] * data.tables[data.row[r]]
        u = np.einsum("k,ikm->im", beta[0], x)
        own = data.alt_region[None, :] == data.dec_region[r][:, None]
        ls = [np.log(np.where(mask, np.exp(u), 0).sum(1)) for mask in (own, ~own)]
        v = np.stack(
            [np.zeros(len(r))]
            + [
                (gamma[0] * z).sum(1) + lam[0] * ls[k]
                for k, z in enumerate((data.z_own[r], data.z_other[r]))
            ],
            axis=1,
        )
        nest = (v + rng.gumbel(size=v.shape)).argmax(1)
        pick = np.where(np.where(nest[:, None] == 1, own, ~own), u, -np.inf)
        pool = (pick + rng.gumbel(size=pick.shape)).argmax(1)
        data.outcome[r] = nest
        data.chosen[r] = np.where(nest > 0, pool, -1)


def _fit(problem: Problem) -> dict[str, float]:
    tracemalloc.start()
    started = time.perf_counter()
    n, layout = problem.data.n, problem.layout
    scale = _curvature_scale(problem, layout.start)
    evals = {"n": 0}

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        evals["n"] += 1
        value, grad = problem.value_grad(phi * scale)
        return -value / n, -grad * scale / n

    bounds = [
        (None if lo is None else lo / s, None if hi is None else hi / s)
        for (lo, hi), s in zip(layout.bounds(), scale, strict=True)
    ]
    res = optimize.minimize(
        objective,
        layout.start / scale,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-12, "gtol": 1e-7},
    )
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    theta = res.x * scale
    return {
        "seconds": seconds,
        "iterations": int(res.nit),
        "evaluations": evals["n"],
        "peak_mb": peak / 1e6,
        "loglik": -res.fun * n,
        "nest_scale": float(theta[-1]),
    }


def run(sizes: list[tuple[int, int, int]], twin: bool = True) -> list[dict]:
    rows = []
    for n, m, sampled in sizes:
        data = synthetic_data(n, m)
        sample = sample_alternatives(data, sampled, seed=1) if sampled else None
        layout = synthetic_layout()
        row = {"decisions": n, "pools": m, "sampled": sampled}
        row["kernel"] = _fit(Problem(data, layout, sample, "kernel"))
        if twin:
            row["numpy"] = _fit(Problem(data, layout, sample, "reference"))
            row["speedup"] = row["numpy"]["seconds"] / row["kernel"]["seconds"]
            row["memory_ratio"] = row["numpy"]["peak_mb"] / max(row["kernel"]["peak_mb"], 1e-9)
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="relocsim bench estimate", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--full", action="store_true", help="100k x 600 sizes (slow; default: quick)")
    p.add_argument("--no-twin", action="store_true", help="skip the NumPy twin")
    args = p.parse_args(argv)
    rows = run(SIZES["full" if args.full else "quick"], twin=not args.no_twin)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        k = r["kernel"]
        line = (
            f"{r['decisions']:>8,} x {r['pools']:>4} sampled {r['sampled']:>3}: kernel "
            f"{k['seconds']:7.2f} s {k['iterations']:4d} it {k['peak_mb']:8.1f} MB "
            f"nest {k['nest_scale']:.3f}"
        )
        if "numpy" in r:
            t = r["numpy"]
            line += (
                f" | numpy {t['seconds']:7.2f} s {t['peak_mb']:8.1f} MB | "
                f"{r['speedup']:.1f}x faster, {r['memory_ratio']:.1f}x less memory"
            )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
