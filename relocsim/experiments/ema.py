"""EMA Workbench adapter: relocsim as a workbench model (uncertainties, levers, outcomes).

``ema-workbench`` is optional (``pip install 'relocsim[ema]'``). Parameter names are scenario
dotted paths with ``__`` for dots (as for :func:`mesa.batch_run`)::

    from ema_workbench import SequentialEvaluator, perform_experiments
    from ema_workbench import Samplers
    from ema_workbench.analysis import prim
    from relocsim.experiments.ema import parameter, relocsim_model

    model = relocsim_model(
        uncertainties=[parameter("behaviour.b_stress", 1.0, 3.0),
                       parameter("land_market.price_elasticity", 0.1, 1.0)],
        levers=[parameter("policies.aid_portability.mode", ["none", "clawback"])],
        outcomes=["brussels_jobs", "brussels_delocalisations_total"],
        years=15, seeds=[0, 1],
    )
    with SequentialEvaluator(model) as evaluator:   # or MultiprocessingEvaluator (spawn-safe)
        experiments, outcomes = perform_experiments(
            model, scenarios=50, policies=2, evaluator=evaluator,
            uncertainty_sampling=Samplers.LHS)   # ema-workbench 2.5: Samplers.LHS, not "lhs"
    y = outcomes["brussels_jobs"] < 60_000
    box = prim.Prim(experiments.drop(columns=["policy", "model", "scenario"]), y, threshold=0.8)

Each experiment runs the model once per seed (threads=1) and returns the mean over seeds of
every requested outcome (:data:`relocsim.experiments.outcomes.BUILTIN` names).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from relocsim.experiments.outcomes import BUILTIN, compute_outcomes
from relocsim.scenarios import ScenarioError, check_path, load_scenario

CONSTANTS = ("relocsim_scenario", "relocsim_years", "relocsim_seeds", "relocsim_outcomes")


def ema_name(path: str) -> str:
    """Workbench parameter name of a dotted path (``a.b`` -> ``a__b``)."""
    return path.replace(".", "__")


def run_experiment(**experiment: Any) -> dict[str, float]:
    """The workbench model function: run relocsim for one experiment, average over seeds.

    Args:
        **experiment: parameter values by workbench name (``__`` for dots) plus the constants
            ``relocsim_scenario``, ``relocsim_years``, ``relocsim_seeds`` (comma-separated),
            ``relocsim_outcomes`` (comma-separated outcome names).
    """
    from relocsim.model import RelocationModel

    scenario = experiment.pop("relocsim_scenario", "brussels-metro")
    years = int(experiment.pop("relocsim_years", 15))
    seeds = [int(s) for s in str(experiment.pop("relocsim_seeds", "0")).split(",")]
    names = str(experiment.pop("relocsim_outcomes", ",".join(BUILTIN))).split(",")
    overrides = {k.replace("__", "."): _plain(v) for k, v in experiment.items()}
    specs = [BUILTIN[n] for n in names]
    values: dict[str, list[float]] = {n: [] for n in names}
    for seed in seeds:
        model = RelocationModel(scenario, seed=seed, overrides=overrides, threads=1)
        outcome = compute_outcomes(model.run(years).tables(), specs)
        for name in names:
            values[name].append(outcome[name])
    return {name: float(np.mean(v)) for name, v in values.items()}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def parameter(path: str, low: Any, high: Any = None, *, integer: bool = False) -> Any:
    """A workbench parameter for a scenario dotted path.

    Args:
        path: dotted path (``behaviour.b_stress``).
        low: lower bound, or a list of categories (then ``high`` is not given).
        high: upper bound.
        integer: an :class:`IntegerParameter` instead of a :class:`RealParameter`.
    """
    from ema_workbench import CategoricalParameter, IntegerParameter, RealParameter

    if isinstance(low, list | tuple):
        return CategoricalParameter(ema_name(path), list(low))
    if integer:
        return IntegerParameter(ema_name(path), int(low), int(high))
    return RealParameter(ema_name(path), float(low), float(high))


def relocsim_model(
    name: str = "relocsim",
    uncertainties: Sequence[Any] = (),
    levers: Sequence[Any] = (),
    outcomes: Sequence[str] = ("brussels_jobs", "brussels_delocalisations_total"),
    scenario: str = "brussels-metro",
    years: int = 15,
    seeds: Sequence[int] = (0,),
):  # noqa: ANN201 - returns ema_workbench.Model (optional dependency)
    """An ``ema_workbench.Model`` running relocsim.

    Args:
        name: workbench model name (a Python identifier).
        uncertainties: workbench parameters (see :func:`parameter`) for uncertain inputs.
        levers: workbench parameters for policy levers.
        outcomes: built-in outcome names (:data:`relocsim.experiments.outcomes.BUILTIN`).
        scenario: base scenario.
        years: simulated years of each run.
        seeds: seeds run per experiment (outcomes are their mean).

    Raises:
        ScenarioError: a parameter names no scenario field, or an outcome is unknown.
    """
    from ema_workbench import Constant, Model, ScalarOutcome

    base = load_scenario(scenario)
    for param in [*uncertainties, *levers]:
        check_path(base, param.name.replace("__", "."))
    unknown = [o for o in outcomes if o not in BUILTIN]
    if unknown:
        raise ScenarioError(f"unknown outcome {unknown[0]!r}; expected one of {', '.join(BUILTIN)}")
    model = Model(name, function=run_experiment)
    model.uncertainties = list(uncertainties)
    model.levers = list(levers)
    model.outcomes = [ScalarOutcome(o) for o in outcomes]
    model.constants = [
        Constant("relocsim_scenario", scenario),
        Constant("relocsim_years", int(years)),
        Constant("relocsim_seeds", ",".join(str(int(s)) for s in seeds)),
        Constant("relocsim_outcomes", ",".join(outcomes)),
    ]
    return model
