"""``relocsim bench estimate``: time to convergence of the compiled likelihood against its NumPy
twin, larch and Biogeme, on the same synthetic data in the same run.

Synthetic nested-logit data (N decisions x M pools in 3 regions, every firm located in region
0 so that the nests own / other regions are the same for every decision, as larch and Biogeme
need; drawn from the model with known coefficients: land cost x need, travel time, a zone
attribute; move constant, stress, delocalisation constant; nest scale, fixed at 1 for the
multinomial logit) is written once to a temporary file; each engine then fits it in a fresh
child process, one after the other, so that its peak memory (the child's peak resident set,
``ru_maxrss``: Python, data and every C allocation) is its own. Reported per engine: seconds
to convergence, optimiser iterations and likelihood evaluations, seconds per evaluation,
peak memory, log-likelihood, nest scale.

The kernel and the twin run the same optimiser (L-BFGS-B on curvature-scaled parameters, from
zeros and nest scale 0.8): same iterations, same estimates. Where converging the twin would
take too long (more than ``--twin-converge-max`` decision-alternative pairs), the twin is timed
per likelihood+gradient evaluation at the kernel's estimate and the ratio is per evaluation;
the output says which (``mode``). larch 6 fits the full-choice-set models (SLSQP with a tight
tolerance, from the same start); Biogeme the multinomial logit, through
:mod:`relocsim.estimation.outside` when that module and Biogeme are installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import optimize

from relocsim.estimation.design import UPPER, ChoiceData, Layout
from relocsim.estimation.fit import Problem, _curvature_scale
from relocsim.estimation.likelihood import Sample
from relocsim.estimation.sampling import (
    PILOT_DECISIONS,
    importance_sample,
    pilot_rows,
    sample_alternatives,
)

TRUE = {
    "b_land": 1.0,
    "b_dist": 0.05,
    "b_zone": 0.5,
    "asc_move": -3.0,
    "b_stress": 2.0,
    "asc_deloc": -0.7,
    "nest_scale": 0.6,
}
LOWER_FREE = ("b_land", "b_dist", "b_zone")
ENGINES = ("kernel", "numpy", "larch", "biogeme")
CASES = {
    "issue": (
        "nl:100000x600,nl:100000x600/50,nl:10000x600,mnl:10000x50,nl:10000x50,nl:1000000x600/50"
    ),
    "quick": "nl:2000x30,nl:2000x60/10,mnl:2000x20",
}
"""Named case lists: ``issue`` the issue's sizes (README table), ``quick`` a smoke run."""
TWIN_CONVERGE_MAX = 10_000_000
"""Above this many decision-alternative pairs the twin is timed per evaluation only."""
TIMEOUT_S = 1800.0
LARCH_MAX_PAIRS = 10_000_000
"""larch holds every variable as an N x (M + 1) float64 array: 1.57 GB peak at 10k x 600
(about 260 bytes per decision-alternative pair); above this many pairs it is not run."""
LARCH_BYTES_PER_PAIR = 260


@dataclass(frozen=True)
class Case:
    """One benchmark problem: ``model`` "nl" or "mnl", N decisions, M pools, pools sampled."""

    model: str
    n: int
    m: int
    sampled: int = 0

    @property
    def nested(self) -> bool:
        return self.model == "nl"

    @property
    def pairs(self) -> int:
        """Decision-alternative pairs the likelihood visits per evaluation."""
        return self.n * (self.sampled + 1 if self.sampled else self.m)

    def label(self) -> str:
        alts = f"{self.sampled} sampled" if self.sampled else "all pools"
        return f"{self.model.upper()} {self.n:,} x {self.m} ({alts})"


CASE_RE = re.compile(r"^(nl|mnl):(\d+)x(\d+)(?:/(\d+))?$")


def parse_cases(text: str) -> list[Case]:
    """``"nl:100000x600,nl:100000x600/50,mnl:10000x50"`` (model:NxM[/sampled]) or a name of
    :data:`CASES`."""
    text = CASES.get(text, text)
    cases = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        match = CASE_RE.match(item)
        if not match:
            raise ValueError(
                f"--sizes: {item!r} is not MODEL:NxM[/SAMPLED] (MODEL nl or mnl, e.g. "
                f"nl:100000x600/50) nor one of {sorted(CASES)}"
            )
        model, n, m, sampled = match.groups()
        case = Case(model, int(n), int(m), int(sampled or 0))
        if case.n < 10 or case.m < 6 or case.sampled == 1 or case.sampled >= case.m:
            raise ValueError(
                f"--sizes: {item!r}: expected at least 10 decisions, 6 pools and a sample of "
                "2 or more pools, fewer than M"
            )
        cases.append(case)
    return cases


def synthetic_layout(nested: bool = True) -> Layout:
    """One sector; free: b_land, b_dist, b_zone, asc_move, b_stress, asc_deloc and (nested
    logit) nest_scale, else held at 1."""
    beta_idx = np.array([[0, 1, 2]])
    gamma_idx = np.full((1, len(UPPER)), -1)
    gamma_idx[0, UPPER.index("asc_move")] = 3
    gamma_idx[0, UPPER.index("b_stress")] = 4
    gamma_idx[0, UPPER.index("asc_deloc")] = 5
    names = list(TRUE)[: 7 if nested else 6]
    return Layout(
        names=names,
        paths=[[n] for n in names],
        beta_idx=beta_idx,
        beta_fixed=np.zeros((1, 3)),
        gamma_idx=gamma_idx,
        gamma_fixed=np.zeros((1, len(UPPER))),
        lam_idx=np.array([6 if nested else -1]),
        lam_fixed=np.ones(1),
        start=np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.8][: len(names)]),
        lower_names=list(LOWER_FREE),
    )


def true_theta(nested: bool) -> np.ndarray:
    return np.array(list(TRUE.values())[: 7 if nested else 6])


def synthetic_data(n: int, m: int, seed: int = 0, nested: bool = True) -> ChoiceData:
    """N decisions of firms in region 0 over M pools (3 regions), outcomes drawn from the
    nested logit at :data:`TRUE` (nest scale 1 if not ``nested``)."""
    rng = np.random.default_rng(seed)
    region = (np.arange(m) * 3 // m).astype(np.int32)
    xy = rng.uniform(0, 100, (m, 2))
    travel = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    price = rng.lognormal(0, 0.5, m)
    zone_attr = rng.normal(0, 1, m)
    tables = np.concatenate([-price[None], -travel, zone_attr[None]])
    origin = rng.integers(0, int((region == 0).sum()), n)
    need = rng.lognormal(0, 0.5, n)
    row = np.stack([np.zeros(n), 1 + origin, np.full(n, 1 + m)], axis=1).astype(np.int32)
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
        dec_region=np.zeros(n, np.int32),
        sector=np.zeros(n, np.int32),
        outcome=np.zeros(n, np.int8),
        chosen=np.full(n, -1, np.int32),
        z_own=np.ascontiguousarray(z_own),
        z_other=np.ascontiguousarray(z_other),
        firm=np.arange(n, dtype=np.int64),
    )
    _draw_outcomes(data, synthetic_layout(nested), true_theta(nested), rng)
    return data


def _draw_outcomes(
    data: ChoiceData, layout: Layout, theta: np.ndarray, rng: np.random.Generator
) -> None:
    beta, gamma, lam = layout.effective(theta)
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


# ------------------------------------------------------------------ engines (child processes)


def _peak_mb() -> float:
    """Peak resident set of this process, MB: Linux's VmHWM (since this process's exec;
    ``ru_maxrss`` would also count the RSS of the parent it was forked from), else
    ``ru_maxrss`` (kB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1e6 if sys.platform == "darwin" else 1e3)


def _save(path: Path, data: ChoiceData, sample: Sample | None) -> None:
    arrays = {k: getattr(data, k) for k in data.__dataclass_fields__ if k != "_blocks"}
    if sample is not None:
        arrays |= {"sample_alts": sample.alts, "sample_weights": sample.weights}
    np.savez(path, **arrays)


def _load(path: Path) -> tuple[ChoiceData, Sample | None]:
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    sample = None
    if "sample_alts" in arrays:
        sample = Sample(arrays.pop("sample_alts"), arrays.pop("sample_weights"))
    return ChoiceData(**arrays), sample


def _cpu_seconds() -> float:
    """CPU time of this process so far, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_evaluations(problem: Problem, theta: np.ndarray, repeats: int) -> dict:
    """Wall and CPU seconds per likelihood+gradient evaluation at ``theta`` (best of
    ``repeats``), and the log-likelihood there."""
    best, cpu = np.inf, np.inf
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        value = problem.value_grad(theta)[0]
        best = min(best, time.perf_counter() - started)
        cpu = min(cpu, _cpu_seconds() - cpu_started)
    return {"eval_seconds": best, "eval_cpu_seconds": cpu, "loglik": value}


def _fit_ours(problem: Problem, start: np.ndarray) -> dict:
    """L-BFGS-B on curvature-scaled parameters (as :func:`relocsim.estimation.fit` does before
    its Newton polish), to convergence."""
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    n, layout = problem.data.n, problem.layout
    evals = {"n": 0}
    scale = _curvature_scale(problem, start)

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
        start / scale,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8, "maxcor": 30},
    )
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_started,
        "iterations": int(res.nit),
        "evaluations": evals["n"] + 2 * len(scale),
        "converged": bool(res.success),
        "loglik": -float(res.fun) * n,
        "theta": (res.x * scale).tolist(),
    }


def _run_ours(case: Case, path: Path, engine: str, mode: str, theta: list | None) -> dict:
    """Our fit as :func:`relocsim.estimation.fit` makes it; with sampled alternatives its two
    passes: a pilot fit on draws uniform by nest, draws in proportion to exp(u) at the pilot
    estimate (:func:`relocsim.estimation.sampling.importance_sample`), the fit on those."""
    data, sample = _load(path)
    layout = synthetic_layout(case.nested)
    problem = Problem(data, layout, sample, "kernel" if engine == "kernel" else "reference")
    if mode == "evaluation":  # once, at the kernel's estimate
        return _time_evaluations(problem, np.array(theta), 1)
    if case.sampled:  # the pilot on a subsample of decisions, as fit's default
        rows = pilot_rows(data.n, PILOT_DECISIONS)
        pilot_sample = Sample(sample.alts[rows], sample.weights[rows])
        pilot_problem = Problem(data.subset(rows), layout, pilot_sample, problem.implementation)
        pilot = _fit_ours(pilot_problem, layout.start)
        del pilot_problem, pilot_sample
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        problem.sample = importance_sample(
            data, layout, np.array(pilot["theta"]), case.sampled, 0, problem.implementation
        )
        resample = time.perf_counter() - started, _cpu_seconds() - cpu_started
        out = _fit_ours(problem, np.array(pilot["theta"]))
        out["pilot"] = pilot | {"decisions": len(rows)}
        out["resample_seconds"] = resample[0]
        for key, extra in (("seconds", resample[0]), ("cpu_seconds", resample[1])):
            out[key] += pilot[key] + extra
        for key in ("iterations", "evaluations"):
            out[key] += pilot[key]
    else:
        out = _fit_ours(problem, layout.start)
    timing = _time_evaluations(problem, np.array(out["theta"]), 3)
    return out | {k: timing[k] for k in ("eval_seconds", "eval_cpu_seconds")}


def _larch_dataset(data: ChoiceData):
    """The synthetic data as larch's idca Dataset (stay + M pools), built without pandas."""
    import larch as lx
    import xarray as xr

    n, m = data.n, data.n_pools
    x = data.scale[:, :, None] * data.tables[data.row]  # (N, 3, M), one variable at a time below

    def with_stay(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n, m + 1))
        out[:, 1:] = values
        return out

    own = data.alt_region[None, :] == data.dec_region[:1, None]
    variables = {name: with_stay(x[:, k]) for k, name in enumerate(LOWER_FREE)}
    del x
    variables["move"] = with_stay(np.ones((1, m)))
    variables["stress"] = with_stay(data.z_own[:, [UPPER.index("b_stress")]])
    variables["deloc"] = with_stay(~own)
    variables["chose"] = np.zeros((n, m + 1))
    variables["chose"][np.arange(n), data.chosen + 1] = 1.0
    ds = xr.Dataset(
        {k: (("caseid", "altid"), v) for k, v in variables.items()},
        coords={"caseid": np.arange(n), "altid": np.arange(m + 1)},
    )
    return lx.Dataset.construct(ds, caseid="caseid", alts="altid"), own[0]


def _run_larch(case: Case, path: Path, engine: str, mode: str, theta: list | None) -> dict:
    import larch as lx

    data, _ = _load(path)
    started = time.perf_counter()
    ds, own = _larch_dataset(data)
    built = time.perf_counter() - started
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    model = lx.Model(ds)
    P, X = lx.P, lx.X  # noqa: N806 (larch's names)
    model.utility_ca = (
        P("b_land") * X("b_land")
        + P("b_dist") * X("b_dist")
        + P("b_zone") * X("b_zone")
        + P("asc_move") * X("move")
        + P("b_stress") * X("stress")
        + P("asc_deloc") * X("deloc")
    )
    model.choice_ca_var = "chose"
    model.availability_any = True
    if case.nested:
        pools = np.arange(1, case.m + 1)
        model.graph.new_node(parameter="nest_scale", children=list(pools[own]), name="own")
        model.graph.new_node(parameter="nest_scale", children=list(pools[~own]), name="other")
        model.set_value("nest_scale", 0.8, minimum=0.001, maximum=1.0)
    model.set_cap(50)
    res = model.maximize_loglike(
        method="slsqp", options={"ftol": 1e-14, "maxiter": 1000}, quiet=True
    )
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    values = dict(zip(model.pnames, model.pvals, strict=True))
    lam = values.get("nest_scale", 1.0)
    out = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "build_seconds": built,
        "iterations": int(getattr(res, "nit", -1) or -1),
        "loglik": float(model.loglike()),
        "theta": [values[c] / (lam if c in LOWER_FREE else 1.0) for c in TRUE if c in values],
    }
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    model.loglike()
    model.d_loglike()
    out["eval_seconds"] = time.perf_counter() - started
    out["eval_cpu_seconds"] = _cpu_seconds() - cpu_started
    return out


def _long_table(data: ChoiceData):
    """The synthetic MNL as :class:`relocsim.estimation.outside.LongTable` (stay + M pools)."""
    import pandas as pd

    from relocsim.estimation import outside

    n, m = data.n, data.n_pools
    x = data.scale[:, :, None] * data.tables[data.row]
    own = data.alt_region == data.dec_region[0]

    def with_stay(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n, m + 1))
        out[:, 1:] = values
        return out.ravel()

    columns = {c: with_stay(x[:, k]) for k, c in enumerate(LOWER_FREE)}
    columns["asc_move"] = with_stay(np.ones((1, m)))
    columns["b_stress"] = with_stay(data.z_own[:, [UPPER.index("b_stress")]])
    columns["asc_deloc"] = with_stay(~own[None, :])
    columns["offset"] = np.zeros(n * (m + 1))
    columns["avail"] = np.ones(n * (m + 1))
    columns["chose"] = np.eye(m + 1)[data.chosen + 1].ravel()
    index = pd.MultiIndex.from_product([np.arange(n), np.arange(m + 1)], names=["case", "alt"])
    free = (*LOWER_FREE, "asc_move", "b_stress", "asc_deloc")
    return outside.LongTable(pd.DataFrame(columns, index=index), free, own, m)


def _run_biogeme(case: Case, path: Path, engine: str, mode: str, theta: list | None) -> dict:
    from relocsim.estimation import outside

    data, _ = _load(path)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    model = outside.biogeme_model(_long_table(data))
    results = model.estimate()
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    values = results.get_beta_values()
    messages = results.raw_estimation_results.optimization_messages
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "iterations": int(messages.get("Number of iterations", -1)),
        "loglik": float(results.final_loglikelihood),
        "theta": [values[c] for c in TRUE if c in values],
    }


RUNNERS = {"kernel": _run_ours, "numpy": _run_ours, "larch": _run_larch, "biogeme": _run_biogeme}


def _child_main(request: str) -> None:
    """Entry point of a child process: run one engine, write its results as JSON."""
    req = json.loads(request)
    case, engine = Case(**req["case"]), req["engine"]
    try:
        out = RUNNERS[engine](case, Path(req["data"]), engine, req["mode"], req["theta"])
    except ImportError as err:
        out = {"skipped": f"not installed ({err})"}
    except Exception as err:  # reported in the table, the bench goes on
        out = {"error": f"{type(err).__name__}: {err}"}
    out["peak_mb"] = _peak_mb()
    Path(req["out"]).write_text(json.dumps(out))


def _skip_reason(case: Case, engine: str) -> str | None:
    if engine == "larch" and case.sampled:
        return "sampled alternatives: larch has no expansion-factor correction inside the nests"
    if engine == "larch" and case.pairs > LARCH_MAX_PAIRS:
        return (
            f"{case.pairs / 1e6:.0f}M pairs: larch would need about "
            f"{case.pairs * LARCH_BYTES_PER_PAIR / 1e9:.0f} GB (see LARCH_MAX_PAIRS)"
        )
    if engine == "biogeme" and (case.nested or case.sampled):
        return "Biogeme is a reference for the full-set MNL only (issue 12)"
    return None


def _in_child(
    case: Case, path: Path, engine: str, mode: str, theta, timeout: float, python: str
) -> dict:
    """Run one engine in a fresh interpreter ``python`` (Biogeme may live in its own venv)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    out_path = path.with_name(f"{engine}.json")
    request = {
        "case": asdict(case), "engine": engine, "mode": mode, "theta": theta,
        "data": str(path), "out": str(out_path),
    }  # fmt: skip
    code = "import sys; from relocsim.estimation.bench import _child_main; _child_main(sys.argv[1])"
    try:
        proc = subprocess.run(
            [python, "-c", code, json.dumps(request)],
            env=env, timeout=timeout, capture_output=True, text=True, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s (timeout)", "seconds": timeout}
    except OSError as err:
        return {"skipped": f"cannot start {python}: {err}"}
    if not out_path.exists():
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        return {"error": f"child process failed (exit code {proc.returncode}): {tail[0]}"}
    out = json.loads(out_path.read_text())
    out_path.unlink()
    return out


def run(
    cases: list[Case],
    engines: Sequence[str] = ENGINES,
    twin_converge_max: int = TWIN_CONVERGE_MAX,
    timeout: float = TIMEOUT_S,
    progress: Callable[[str], None] | None = None,
    biogeme_python: str | None = None,
) -> list[dict]:
    """Fit every case with every engine; one row per case with a result per engine.

    Args:
        biogeme_python: interpreter with Biogeme installed (default: this one).
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="relocsim-bench-") as tmp:
        for case in cases:
            started = time.perf_counter()
            data = synthetic_data(case.n, case.m, nested=case.nested)
            sample = sample_alternatives(data, case.sampled, seed=1) if case.sampled else None
            path = Path(tmp) / "data.npz"
            _save(path, data, sample)
            del data, sample
            row = {"case": asdict(case), "label": case.label(), "threads": os.cpu_count()}
            row["prepare_seconds"] = time.perf_counter() - started
            for engine in engines:
                if progress:
                    progress(f"{case.label()}: {engine} ...")
                mode = "converge"
                if engine == "numpy" and case.pairs > twin_converge_max:
                    mode = "evaluation"
                theta = row.get("kernel", {}).get("theta")
                skip = _skip_reason(case, engine)
                if mode == "evaluation" and theta is None:
                    skip = "per-evaluation timing needs the kernel's estimate"
                if skip:
                    row[engine] = {"skipped": skip}
                    continue
                python = (biogeme_python if engine == "biogeme" else None) or sys.executable
                row[engine] = _in_child(case, path, engine, mode, theta, timeout, python)
                row[engine]["mode"] = mode
            _ratios(row)
            rows.append(row)
    return rows


def _ratios(row: dict) -> None:
    """Each engine's time over the kernel's, wall and CPU: to convergence, or per evaluation."""
    kernel = row.get("kernel", {})
    for engine, res in row.items():
        if engine not in ENGINES or engine == "kernel" or "error" in res or "skipped" in res:
            continue
        key = "" if res.get("mode") == "converge" else "eval_"
        if f"{key}seconds" in kernel and f"{key}seconds" in res:
            res["ratio"] = res[f"{key}seconds"] / kernel[f"{key}seconds"]
            res["cpu_ratio"] = res[f"{key}cpu_seconds"] / kernel[f"{key}cpu_seconds"]


def _cell(res: dict) -> str:
    if "skipped" in res:
        return f"not run: {res['skipped']}"
    if "error" in res:
        return f"failed: {res['error']}"
    if res.get("mode") == "evaluation":
        text = (
            f"{res['eval_seconds']:.3g} s per evaluation (CPU {res['eval_cpu_seconds']:.3g} s), "
            f"{res['peak_mb']:.0f} MB"
        )
    else:
        text = (
            f"{res['seconds']:.3g} s (CPU {res['cpu_seconds']:.3g} s), "
            f"{res.get('iterations', -1)} it, {res['peak_mb']:.0f} MB, LL {res['loglik']:.3f}"
        )
        if len(res.get("theta", [])) == 7:
            text += f", nest {res['theta'][-1]:.3f}"
    if "ratio" in res:
        per = "per evaluation" if res.get("mode") == "evaluation" else "to convergence"
        text += f" -> kernel {res['ratio']:.1f}x faster, {res['cpu_ratio']:.1f}x less CPU ({per})"
    return text


def markdown(rows: list[dict], engines: Sequence[str] = ENGINES) -> str:
    """The results as the README's table."""
    lines = [
        "| case | engine | time to convergence, wall (CPU) | iterations (evaluations) "
        "| s per evaluation | peak memory | log-likelihood | nest scale | kernel faster, wall "
        "(CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for engine in engines:
            res = row.get(engine)
            if res is None:
                continue
            if "skipped" in res or "error" in res:
                lines.append(f"| {row['label']} | {engine} | {_cell(res)} | | | | | | |")
                continue
            converged = res.get("mode") != "evaluation"
            theta = res.get("theta", [])
            cells = [
                row["label"],
                engine,
                f"{res['seconds']:.3g} s ({res['cpu_seconds']:.3g} s)" if converged else "-",
                f"{res['iterations']} ({res.get('evaluations', '-')})" if converged else "-",
                f"{res['eval_seconds']:.3g} ({res['eval_cpu_seconds']:.3g})"
                if "eval_seconds" in res
                else "-",
                f"{res['peak_mb']:,.0f} MB",
                f"{res['loglik']:,.3f}" if converged else "-",
                f"{theta[-1]:.3f}" if converged and len(theta) == 7 else "-",
                f"{res['ratio']:.1f}x ({res['cpu_ratio']:.1f}x) "
                f"{'per evaluation' if not converged else 'to convergence'}"
                if "ratio" in res
                else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="relocsim bench estimate", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--markdown", action="store_true", help="print the README's table")
    p.add_argument(
        "--from-json", metavar="FILE", help="print an earlier --json run (no new measurement)"
    )
    p.add_argument(
        "--sizes",
        default="issue",
        help="cases MODEL:NxM[/SAMPLED], comma-separated (MODEL nl or mnl), or a name: "
        f"{', '.join(f'{k} = {v}' for k, v in CASES.items())} (default: issue)",
    )
    p.add_argument("--quick", action="store_true", help="same as --sizes quick (a smoke run)")
    p.add_argument(
        "--engines", default=",".join(ENGINES), help=f"comma-separated subset of {ENGINES}"
    )
    p.add_argument(
        "--twin-converge-max",
        type=int,
        default=TWIN_CONVERGE_MAX,
        help="largest N x alternatives the NumPy twin is converged on; above, it is timed "
        "per evaluation",
    )
    p.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per engine and case")
    p.add_argument(
        "--biogeme-python",
        help="Python interpreter with Biogeme (it conflicts with the other extras: install it in "
        "its own environment with relocsim's dependencies); default: this one",
    )
    args = p.parse_args(argv)
    try:
        cases = parse_cases("quick" if args.quick else args.sizes)
    except ValueError as err:
        p.error(str(err))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown or "kernel" not in engines:
        p.error(f"--engines: {unknown or 'no kernel'}: expected the kernel and any of {ENGINES}")

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.from_json:
        rows = json.loads(Path(args.from_json).read_text())
    else:
        rows = run(
            cases, engines, args.twin_converge_max, args.timeout, progress, args.biogeme_python
        )
    if args.markdown:
        print(markdown(rows, engines))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(row["label"])
        for engine in engines:
            if engine in row:
                print(f"  {engine:<8} {_cell(row[engine])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
