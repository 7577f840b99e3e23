"""Experiments: scenario comparisons, parameter sweeps and sensitivity analysis.

A study file (TOML, see ``experiments/README.md``) names a base scenario, policy variants, a
design (grid, Latin hypercube or Saltelli/Sobol), replications, years and outcome metrics.
:func:`run_sweep` runs it on local processes or a Dask cluster, storing every finished run
atomically so that an interrupted sweep resumes; :func:`analyze` summarises the results.

Modules: ``errors`` (StudyError), ``study`` (files), ``outcomes`` (metrics), ``design`` (runs),
``backends`` (execution), ``runner`` (storage, resume, lock), ``analysis`` (tables, Sobol,
plots), ``power`` (paired contrasts, precision, minimum detectable effect), ``ema`` (EMA
Workbench adapter), ``bench`` (throughput), ``cli`` (``relocsim sweep | analyze``).
"""

from relocsim.experiments.design import Plan, RunSpec, plan_runs
from relocsim.experiments.outcomes import BUILTIN, OutcomeSpec, compute_outcomes
from relocsim.experiments.runner import Sweep, SweepResult, run_sweep
from relocsim.experiments.study import Design, Range, Study, StudyError, load_study, parse_study


def analyze(out_dir, **options):  # noqa: ANN001, ANN201 - thin lazy import
    """Analyse a sweep's folder (see :func:`relocsim.experiments.analysis.analyze`)."""
    from relocsim.experiments.analysis import analyze as _analyze

    return _analyze(out_dir, **options)


__all__ = [
    "BUILTIN",
    "Design",
    "OutcomeSpec",
    "Plan",
    "Range",
    "RunSpec",
    "Study",
    "StudyError",
    "Sweep",
    "SweepResult",
    "analyze",
    "compute_outcomes",
    "load_study",
    "parse_study",
    "plan_runs",
    "run_sweep",
]
