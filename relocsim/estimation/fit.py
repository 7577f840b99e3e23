"""Maximum-likelihood fit: optimiser, standard errors, diagnostics and the result object.

:func:`fit` maximises the nested-logit likelihood (:mod:`relocsim.estimation.likelihood`) with
scipy's L-BFGS-B (nest scales bounded to (0, 1]), polishes with Newton steps on the
finite-difference Hessian of the analytic gradient, and reports standard errors from that
Hessian, from the sandwich (robust) and from the sandwich clustered by firm; with a control
function for the land price (:mod:`relocsim.estimation.control`) each of them plus the
Murphy-Topel term of its first stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from relocsim.estimation import control
from relocsim.estimation.design import ChoiceData, Layout, build_data, build_layout
from relocsim.estimation.likelihood import LogLik, Sample, loglik
from relocsim.estimation.panel import Panel, validate_panel
from relocsim.estimation.sampling import (
    PILOT_DECISIONS,
    importance_sample,
    pilot_rows,
    sample_alternatives,
)
from relocsim.estimation.spec import Spec
from relocsim.geography import build_geography
from relocsim.scenarios import Scenario, load_scenario

FLAT_RATIO = 1e-10
"""A Hessian eigenvalue below this share of the largest marks a flat (unidentified) direction."""


@dataclass
class Diagnostics:
    """Convergence diagnostics.

    Attributes:
        converged: the optimiser's verdict and a small final gradient.
        iterations: optimiser iterations (plus Newton polish steps).
        grad_norm: largest absolute score component at the estimate.
        hessian_condition: condition number of the Hessian.
        starts: log-likelihood reached from each starting point.
        warnings: human-readable problems (flat coefficients, bounds, disagreeing starts).
    """

    converged: bool
    iterations: int
    grad_norm: float
    hessian_condition: float
    starts: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class EstimationResult:
    """What :func:`fit` returns.

    Attributes:
        params: estimates by parameter name.
        bse: standard errors from the inverse Hessian.
        bse_robust: sandwich standard errors clustered by firm.
        bse_hc: sandwich standard errors treating decisions as independent.
        cov, cov_robust: covariance matrices (Hessian-based; firm-clustered sandwich).
        loglik, loglik_null: log-likelihood at the estimate and with every coefficient 0 and
            nest scales 1 (all alternatives equally likely).
        n_obs, n_firms: decisions and firms.
        paths: scenario dotted paths each parameter sets.
        diagnostics: see :class:`Diagnostics`.
        provenance: data file, hash, spec, sampling, date, truth (if the data was simulated).
    """

    params: pd.Series
    bse: pd.Series
    bse_robust: pd.Series
    bse_hc: pd.Series
    cov: pd.DataFrame
    cov_robust: pd.DataFrame
    loglik: float
    loglik_null: float
    n_obs: int
    n_firms: int
    paths: dict[str, list[str]]
    diagnostics: Diagnostics
    provenance: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def rho_squared(self) -> float:
        return 1.0 - self.loglik / self.loglik_null

    @property
    def rho_squared_bar(self) -> float:
        return 1.0 - (self.loglik - self.n_params) / self.loglik_null

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * self.loglik

    @property
    def bic(self) -> float:
        return self.n_params * np.log(self.n_obs) - 2 * self.loglik

    def table(self) -> pd.DataFrame:
        """Coefficient, estimate, SE, robust SE, t and 95% CI (robust) per parameter."""
        z = stats.norm.ppf(0.975)
        t = self.params / self.bse_robust
        return pd.DataFrame(
            {
                "coefficient": self.params.index,
                "estimate": self.params.to_numpy(),
                "se": self.bse.to_numpy(),
                "robust_se": self.bse_robust.to_numpy(),
                "t": t.to_numpy(),
                "p": 2 * stats.norm.sf(np.abs(t.to_numpy())),
                "ci_low": (self.params - z * self.bse_robust).to_numpy(),
                "ci_high": (self.params + z * self.bse_robust).to_numpy(),
            }
        )

    def summary(self) -> str:
        """A statsmodels-like text table."""
        d = self.diagnostics
        head = [
            ("Model", "nested logit (stay / own region / other regions)"),
            ("Decisions", f"{self.n_obs:,}"),
            ("Firms (clusters)", f"{self.n_firms:,}"),
            ("Parameters", str(self.n_params)),
            ("Log-likelihood", f"{self.loglik:.4f}"),
            ("Null log-likelihood", f"{self.loglik_null:.4f}"),
            ("Rho-squared", f"{self.rho_squared:.4f}"),
            ("Adj. rho-squared", f"{self.rho_squared_bar:.4f}"),
            ("AIC", f"{self.aic:.2f}"),
            ("BIC", f"{self.bic:.2f}"),
            ("Converged", f"{d.converged} ({d.iterations} iterations)"),
            ("Max |gradient|", f"{d.grad_norm:.2e}"),
            ("Hessian condition", f"{d.hessian_condition:.2e}"),
            ("Alternatives", str(self.provenance.get("sampling", "all pools"))),
        ]
        cf = self.provenance.get("control_function")
        if cf:
            text = f"{', '.join(cf['instruments'])} (first-stage F {cf['first_stage_f']:.1f})"
            head.append(("Control function", text))
        width = 78
        lines = ["=" * width, "relocsim estimation results".center(width), "=" * width]
        lines += [f"{k:<22}{v:>56}" for k, v in head]
        lines.append("-" * width)
        tab = self.table()
        lines.append(
            f"{'coefficient':<30}{'estimate':>10}{'se':>9}{'rob.se':>9}{'t':>7}"
            f"{'[0.025':>7}{'0.975]':>7}"
        )
        lines.append("-" * width)
        for row in tab.itertuples():
            lines.append(
                f"{row.coefficient[:30]:<30}{row.estimate:>10.4f}{row.se:>9.4f}"
                f"{row.robust_se:>9.4f}{row.t:>7.2f}{row.ci_low:>7.2f}{row.ci_high:>7.2f}"
            )
        lines.append("=" * width)
        lines += ["Robust SE: sandwich clustered by firm; t and CI use it."]
        if cf:
            lines += ["SEs include the first stage's noise (Murphy-Topel); cf_land: utility per SD"]
            lines += ["of the first-stage residual (land cost unexplained by the instruments)."]
        lines += [f"Warning: {w}" for w in d.warnings]
        return "\n".join(lines)

    def to_overrides(self) -> dict[str, float]:
        """Scenario overrides (dotted path -> value) that make the simulator use the estimates."""
        return {
            path: float(self.params[name]) for name, paths in self.paths.items() for path in paths
        }


def lr_test(restricted: EstimationResult, unrestricted: EstimationResult) -> dict[str, float]:
    """Likelihood-ratio test of a restricted spec against an unrestricted one (nested specs).

    Returns:
        ``{"statistic": 2 (LL_u - LL_r), "df": extra parameters, "p_value": chi2 tail}``.
    """
    df = unrestricted.n_params - restricted.n_params
    if df <= 0:
        raise ValueError(
            f"lr_test: the unrestricted model has {unrestricted.n_params} parameters, the "
            f"restricted {restricted.n_params}; expected more in the unrestricted one"
        )
    stat = 2.0 * (unrestricted.loglik - restricted.loglik)
    return {"statistic": stat, "df": df, "p_value": float(stats.chi2.sf(max(stat, 0.0), df))}


@dataclass
class Problem:
    """A prepared likelihood: data, layout, optional sample and engine settings, and the first
    stage of the land price's control function (if any)."""

    data: ChoiceData
    layout: Layout
    sample: Sample | None = None
    implementation: str = "kernel"
    threads: int | None = None
    first_stage: control.FirstStage | None = None

    def value_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log-likelihood and its gradient over the parameters."""
        res = self._loglik(theta, scores=False)
        return res.value, self.layout.to_theta(theta, res.grad)

    def scores(self, theta: np.ndarray) -> np.ndarray:
        """Per-decision gradient over the parameters (N, P)."""
        res = self._loglik(theta, scores=True)
        return self.layout.to_theta(theta, res.scores, self.data.sector)

    def _loglik(self, theta: np.ndarray, scores: bool) -> LogLik:
        beta, gamma, lam = self.layout.effective(theta)
        return loglik(
            self.data,
            beta,
            gamma,
            lam,
            self.sample,
            scores=scores,
            implementation=self.implementation,
            threads=self.threads,
        )

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """Central finite differences of the analytic gradient, symmetrised."""
        p = len(theta)
        h = np.zeros((p, p))
        lo, hi = _bound_arrays(self.layout)
        for i in range(p):
            step = 1e-5 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] = min(theta[i] + step, hi[i])
            down[i] = max(theta[i] - step, lo[i])
            h[:, i] = (self.value_grad(up)[1] - self.value_grad(down)[1]) / (up[i] - down[i])
        return 0.5 * (h + h.T)


def _bound_arrays(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the parameters as arrays (-inf / inf where free)."""
    bounds = layout.bounds()
    lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
    hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
    return lo, hi


def prepare(
    panel: Panel,
    scenario: Scenario | str,
    spec: Spec,
    sample_alternatives_n: int = 0,
    sampling: str = "stratified",
    seed: int = 0,
    implementation: str = "kernel",
    threads: int | None = None,
) -> Problem:
    """Validate the panel against the scenario and build the likelihood problem."""
    scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
    geo = build_geography(scenario)
    validate_panel(panel, geo)
    data = build_data(panel, scenario, spec.zone_constants, geo)
    layout = build_layout(scenario, geo, spec)
    stage = None
    if spec.control_function:
        stage = control.first_stage(panel, scenario, geo, spec.control_function)
        data, layout = control.add_control(data, layout, stage)
    sample = (
        sample_alternatives(data, sample_alternatives_n, sampling, seed)
        if (sample_alternatives_n)
        else None
    )
    return Problem(data, layout, sample, implementation, threads, stage)


def fit(
    panel: Panel,
    scenario: Scenario | str,
    spec: Spec,
    *,
    sample_alternatives_n: int = 0,
    sampling: str = "stratified",
    seed: int = 0,
    n_starts: int = 1,
    implementation: str = "kernel",
    threads: int | None = None,
    start: np.ndarray | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    pilot_decisions: int | None = PILOT_DECISIONS,
) -> EstimationResult:
    """Estimate the choice coefficients of ``spec`` from ``panel``.

    Args:
        panel: the decision panel (:func:`relocsim.estimation.read_panel`).
        scenario: scenario (or its name) giving the alternatives' fixed attributes and the
            values of the coefficients held fixed.
        spec: what to estimate.
        sample_alternatives_n: pools sampled per decision (0: all pools).
        sampling: "stratified" (by nest) or "uniform".
        seed: seed of the sampled alternatives and of the extra starting points.
        n_starts: starting points (the first from the spec's start; others perturbed).
        implementation: "kernel" or "reference" likelihood.
        threads: kernel threads; the estimates do not depend on it.
        start: explicit starting values (overrides the spec's).
        progress: called with (iteration, log-likelihood, max |gradient|) per iteration.
        pilot_decisions: with stratified sampling, decisions the pilot fit uses (drawn at
            random; ``None``: all). The pilot only steers the importance draws, so a subsample
            suffices (docs/estimation.md, "Sampling of alternatives").
    """
    started = time.perf_counter()
    two_pass = bool(sample_alternatives_n) and sampling == "stratified"
    problem = prepare(
        panel,
        scenario,
        spec,
        0 if two_pass else sample_alternatives_n,
        sampling,
        seed,
        implementation,
        threads,
    )
    layout, n = problem.layout, problem.data.n
    if n == 0:
        raise ValueError(f"{panel.path}: no decisions to estimate from")
    first = layout.start if start is None else np.asarray(start, np.float64)
    if two_pass:
        # stratified sampling's two passes (sampling.py): a pilot fit on uniform draws for a
        # subsample of decisions, then draws in proportion to exp(u) at the pilot estimate
        rows = pilot_rows(n, pilot_decisions, seed)
        pilot_data = problem.data if len(rows) == n else problem.data.subset(rows)
        pilot = replace(
            problem,
            data=pilot_data,
            sample=sample_alternatives(pilot_data, sample_alternatives_n, sampling, seed),
        )
        first = _pilot_estimate(pilot, first, progress)
        problem.sample = importance_sample(
            problem.data, layout, first, sample_alternatives_n, seed, implementation, threads
        )
    rng = np.random.default_rng(seed)
    starts = [first] + [_perturbed(first, layout, rng) for _ in range(max(n_starts, 1) - 1)]
    runs = [_optimise(problem, s, progress) for s in starts]
    best = max(runs, key=lambda r: r[1])
    theta, ll, iterations, converged = best
    theta, ll, polish, grad, hess = _newton_polish(problem, theta, ll)
    result = _assemble(problem, theta, ll, hess, grad, iterations + polish, converged, runs)
    result.provenance = {
        "data": panel.path,
        "sha256": panel.sha256,
        "spec": spec.source,
        "sampling": f"{sample_alternatives_n} per decision, {sampling}"
        if sample_alternatives_n
        else "all pools",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "loglik": ll,
        "truth": panel.provenance.get("true_coefficients", {}),
    }
    if problem.first_stage is not None:
        result.provenance["control_function"] = {
            "instruments": list(problem.first_stage.instruments),
            "first_stage_f": problem.first_stage.f_stat,
            "standard_errors": "Murphy-Topel two-step correction",
        }
    result.elapsed_s = time.perf_counter() - started
    return result


def _perturbed(theta: np.ndarray, layout: Layout, rng: np.random.Generator) -> np.ndarray:
    out = theta + rng.normal(0.0, 0.3, len(theta)) * np.maximum(np.abs(theta), 0.1)
    for p, (lo, hi) in enumerate(layout.bounds()):
        if lo is not None:
            out[p] = np.clip(out[p], 0.05, hi)
    return out


def _pilot_estimate(
    pilot: Problem, start: np.ndarray, progress: Callable[[int, float, float], None] | None
) -> np.ndarray:
    """The pilot's nested-logit estimate, or its multinomial logit's (nest scales held at 1)
    when a nest scale ends on a bound. With uniform draws the chosen pool is always among the
    few drawn, and the nested logit's likelihood can keep rising as a nest scale runs to 0 and
    the coefficients to infinity (seen on simulated data: nest scale 0.001, b_land 203); the
    MNL cannot run away and keeps the ranking within nests that the importance draws need. The
    nested logit is tried first: where it behaves, its draws serve the cross-nest terms (the
    language border) better (docs/estimation.md)."""
    theta = _optimise(pilot, start, progress)[0]
    lo, hi = _bound_arrays(pilot.layout)
    nests = _nest_params(pilot.layout)
    margin = 1e-3 * (hi[nests] - lo[nests])
    if np.any((theta[nests] < lo[nests] + margin) | (theta[nests] > hi[nests] - margin)):
        theta = _optimise(pilot, _nests_at_one(start, pilot.layout), progress, fix_nests=True)[0]
    return theta


def _nest_params(layout: Layout) -> np.ndarray:
    return np.unique(layout.lam_idx[layout.lam_idx >= 0])


def _nests_at_one(theta: np.ndarray, layout: Layout) -> np.ndarray:
    out = np.array(theta, np.float64)
    out[_nest_params(layout)] = 1.0
    return out


def _optimise(
    problem: Problem,
    start: np.ndarray,
    progress: Callable[[int, float, float], None] | None,
    fix_nests: bool = False,
) -> tuple[np.ndarray, float, int, bool]:
    """Maximise the log-likelihood from ``start`` (L-BFGS-B within the layout's bounds; with
    ``fix_nests``, nest scales held at their start values)."""
    n = problem.data.n
    state = {"it": 0}
    scale = _curvature_scale(problem, start)

    def objective(phi: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = problem.value_grad(phi * scale)
        state["last"] = (value, grad)
        return -value / n, -grad * scale / n

    def callback(theta: np.ndarray) -> None:
        state["it"] += 1
        if progress is not None:
            value, grad = state["last"]
            progress(state["it"], value, float(np.abs(grad).max()))

    limits = problem.layout.bounds()
    if fix_nests:
        for p in _nest_params(problem.layout):
            limits[p] = (float(start[p]), float(start[p]))
    bounds = [
        (None if lo is None else lo / sc, None if hi is None else hi / sc)
        for (lo, hi), sc in zip(limits, scale, strict=True)
    ]
    res = optimize.minimize(
        objective,
        start / scale,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        callback=callback,
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 30},
    )
    return res.x * scale, -res.fun * n, int(res.nit), bool(res.success)


def _curvature_scale(problem: Problem, theta: np.ndarray) -> np.ndarray:
    """1 / sqrt(curvature) of each parameter at the start: the optimiser works in units where
    every parameter moves the log-likelihood alike (travel-time and money coefficients differ
    by orders of magnitude)."""
    lo, hi = _bound_arrays(problem.layout)
    curvature = np.zeros(len(theta))
    for p in range(len(theta)):
        step = 1e-4 * max(1.0, abs(theta[p]))
        up, down = theta.copy(), theta.copy()
        up[p] = min(theta[p] + step, hi[p])
        down[p] = max(theta[p] - step, lo[p])
        g_up, g_down = problem.value_grad(up)[1][p], problem.value_grad(down)[1][p]
        curvature[p] = abs(g_up - g_down) / (up[p] - down[p])
    curvature /= problem.data.n
    ok = curvature > 0
    typical = np.median(curvature[ok]) if ok.any() else 1.0
    return 1.0 / np.sqrt(np.where(ok, curvature, typical))


def _newton_polish(
    problem: Problem, theta: np.ndarray, ll: float, steps: int = 3
) -> tuple[np.ndarray, float, int, np.ndarray, np.ndarray]:
    """A few Newton steps on the Hessian: converges the last digits L-BFGS-B leaves.

    Returns:
        the estimate, its log-likelihood, the steps taken, and the gradient and Hessian at the
        estimate (the standard errors' Hessian: each Hessian costs two gradients per
        coefficient, so the one that found the last step too small is not computed again).
    """
    lo, hi = _bound_arrays(problem.layout)
    done = 0
    grad = problem.value_grad(theta)[1]
    hess = problem.hessian(theta)
    for _ in range(steps):
        try:
            # least squares: a flat direction (a coefficient the data leave unidentified, such
            # as b_stress in a panel without space stress) takes no step, where solve would stop
            # the polish of every other coefficient
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        except np.linalg.LinAlgError:
            break
        if np.abs(step).max() < 1e-10:
            break
        trial = np.clip(theta - step, lo, hi)
        trial_ll, trial_grad = problem.value_grad(trial)
        if not trial_ll >= ll - 1e-9 * abs(ll):
            break
        theta, ll, grad, done = trial, trial_ll, trial_grad, done + 1
        hess = problem.hessian(theta)
    return theta, ll, done, grad, hess


def _assemble(
    problem: Problem,
    theta: np.ndarray,
    ll: float,
    hess: np.ndarray,
    grad: np.ndarray,
    iterations: int,
    converged: bool,
    runs: list[tuple[np.ndarray, float, int, bool]],
) -> EstimationResult:
    layout, data = problem.layout, problem.data
    names = layout.names
    info = -hess
    warnings: list[str] = []
    eigval, eigvec = np.linalg.eigh(info)
    top = max(abs(eigval).max(), 1e-300)
    for e, vec in zip(eigval, eigvec.T, strict=True):
        if e < FLAT_RATIO * top:
            worst = np.argsort(-np.abs(vec))[:3]
            involved = ", ".join(names[i] for i in worst if abs(vec[i]) > 0.1)
            warnings.append(
                f"flat or unidentified direction in the likelihood (curvature {e:.2e}); "
                f"coefficients involved: {involved}"
            )
    cov = np.linalg.pinv(info)
    scores = problem.scores(theta)
    _, cluster = np.unique(data.firm, return_inverse=True)
    by_firm = np.zeros((cluster.max() + 1, len(theta)))
    np.add.at(by_firm, cluster, scores)
    cov_cl = cov @ (by_firm.T @ by_firm) @ cov
    cov_hc = cov @ (scores.T @ scores) @ cov
    stage = problem.first_stage
    if stage is not None:  # the first stage's noise (relocsim.estimation.control)
        c = control.score_derivative(
            lambda d: replace(problem, data=d).value_grad(theta)[1], data, stage
        )
        extra = control.murphy_topel(cov, c, stage)
        cov, cov_cl, cov_hc = cov + extra, cov_cl + extra, cov_hc + extra
        if stage.f_stat < control.WEAK_F:
            warnings.append(
                f"weak instruments: first-stage F = {stage.f_stat:.1f} < {control.WEAK_F:g} "
                f"({', '.join(stage.instruments)})"
            )
    for p, (lo, hi) in enumerate(layout.bounds()):
        if lo is not None and (theta[p] <= lo + 1e-6 or theta[p] >= hi - 1e-6):
            warnings.append(f"{names[p]} = {theta[p]:.4f} is at its bound [{lo}, {hi}]")
    lls = [r[1] for r in runs]
    if len(lls) > 1 and max(lls) - min(lls) > 1e-4 * max(1.0, abs(max(lls))):
        warnings.append(
            "starting points reached different optima: " + ", ".join(f"{v:.3f}" for v in lls)
        )
    grad_norm = float(np.abs(grad).max())
    ok = converged or grad_norm < 1e-3
    if not ok:
        warnings.append(f"the optimiser did not converge (max |gradient| {grad_norm:.2e})")
    null = _null_loglik(problem)

    def series(values: np.ndarray) -> pd.Series:
        return pd.Series(values, index=names)

    return EstimationResult(
        params=series(theta),
        bse=series(np.sqrt(np.maximum(np.diag(cov), 0.0))),
        bse_robust=series(np.sqrt(np.maximum(np.diag(cov_cl), 0.0))),
        bse_hc=series(np.sqrt(np.maximum(np.diag(cov_hc), 0.0))),
        cov=pd.DataFrame(cov, index=names, columns=names),
        cov_robust=pd.DataFrame(cov_cl, index=names, columns=names),
        loglik=ll,
        loglik_null=null,
        n_obs=data.n,
        n_firms=int(cluster.max() + 1),
        paths=dict(zip(names, layout.paths, strict=True)),
        diagnostics=Diagnostics(
            converged=ok,
            iterations=iterations,
            grad_norm=grad_norm,
            hessian_condition=float(top / max(abs(eigval).min(), 1e-300)),
            starts=lls,
            warnings=warnings,
        ),
    )


def _null_loglik(problem: Problem) -> float:
    """Every coefficient 0 and nest scales 1: every alternative equally likely."""
    beta, gamma, lam = problem.layout.effective(problem.layout.start)
    res = loglik(
        problem.data,
        np.zeros_like(beta),
        np.zeros_like(gamma),
        np.ones_like(lam),
        problem.sample,
        implementation=problem.implementation,
        threads=problem.threads,
    )
    return res.value
