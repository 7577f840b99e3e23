"""Designs: from a study to the list of runs (variants x design points x replications).

- ``grid``: every combination of the listed values;
- ``lhs``: a Latin hypercube over ranges (``scipy.stats.qmc``);
- ``sobol``: Saltelli's sample for Sobol indices (SALib), ``N * (D + 2)`` points.

A list value inside a variant is a grid inside that variant. Every distinct set of overrides is
applied to the base scenario with :func:`relocsim.apply_overrides` before any run starts, so an
unknown path or an out-of-range value stops the sweep with a message naming the path. Each run is
keyed by a hash of its resolved scenario, seed, years, relocsim version and installed code: runs
with identical inputs (in two variants, or in a resumed sweep) are simulated once.

With ``[parameter_draws]`` every design point is crossed with K coefficient vectors drawn from
an estimate (:mod:`relocsim.parameter_draws`) and the seeds: the same K vectors in every variant,
applied after the study's overrides and before the variant's (a variant that sets a drawn
coefficient holds it at its own value). A draw's values are part of the resolved scenario, so of
the run key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import relocsim
from relocsim.experiments.errors import StudyError
from relocsim.experiments.study import Range, Study
from relocsim.parameter_draws import ParameterDrawError, ParameterDraws, draw_parameters
from relocsim.provenance import code_hash, scenario_hash
from relocsim.scenarios import Scenario, ScenarioError, apply_overrides, check_path, load_scenario

BASE_VARIANT = "base"


@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep.

    Attributes:
        index: position in the sweep (rows of the results table keep this order).
        key: hash of the resolved scenario, seed and years (the run's file name).
        variant: policy variant name (``base`` when the study has none).
        point: index of the design point inside the variant.
        replication: replication index.
        seed: the run's seed.
        years: simulated years.
        overrides: every dotted-path override of the run (study, variant and design).
        params: the values of the study's varying parameters (columns of the results table).
        draw: index of the parameter draw (``None`` without parameter draws).
    """

    index: int
    key: str
    variant: str
    point: int
    replication: int
    seed: int
    years: int
    overrides: dict[str, Any]
    params: dict[str, Any]
    draw: int | None = None


@dataclass
class Plan:
    """Every run of a study, validated.

    Attributes:
        study: the study.
        base: the base scenario with the study's common overrides applied.
        runs: the runs, in sweep order.
        parameters: names (dotted paths) of the varying parameters.
        design_points: variant -> list of design-parameter dicts, in sample order (for Sobol).
        draws: the parameter draws crossed with the seeds, or ``None``.
    """

    study: Study
    base: Scenario
    runs: list[RunSpec]
    parameters: list[str]
    design_points: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    draws: ParameterDraws | None = None

    @property
    def unique_keys(self) -> list[str]:
        return list(dict.fromkeys(r.key for r in self.runs))


def salib_problem(study: Study) -> dict[str, Any]:
    """SALib's problem dict for the study's sampled ranges."""
    assert study.design is not None
    names = list(study.design.parameters)
    bounds = [[r.low, r.high] for r in study.design.parameters.values()]  # type: ignore[union-attr]
    return {"num_vars": len(names), "names": names, "bounds": bounds}


def _scale(unit: np.ndarray, ranges: list[Range]) -> np.ndarray:
    low = np.array([r.low for r in ranges])
    high = np.array([r.high for r in ranges])
    return low + unit * (high - low)


def design_points(study: Study) -> list[dict[str, Any]]:
    """The design's points (parameter dicts), in sample order; ``[{}]`` without a design."""
    design = study.design
    if design is None:
        return [{}]
    names = list(design.parameters)
    if design.type == "grid":
        lists = [design.parameters[n] for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]
    ranges: list[Range] = list(design.parameters.values())  # type: ignore[arg-type]
    if design.type == "lhs":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(names), seed=design.seed).random(design.samples)
        values = _scale(unit, ranges)
    else:
        try:
            from SALib.sample import sobol
        except ImportError as exc:  # pragma: no cover - SALib is a dependency
            raise StudyError("a sobol design needs SALib (pip install SALib)") from exc
        values = sobol.sample(
            salib_problem(study),
            design.samples,
            calc_second_order=design.second_order,
            seed=design.seed,
        )
    points = []
    for row in values:
        point = {}
        for name, rng, value in zip(names, ranges, row, strict=True):
            point[name] = int(round(value)) if rng.integer else float(value)
        points.append(point)
    return points


def _expand_variant(values: dict[str, Any], scenario: Scenario) -> list[dict[str, Any]]:
    """A variant's overrides; list values (for scalar fields) make a grid inside the variant."""
    fixed, grid = {}, {}
    for path, value in values.items():
        if isinstance(value, list) and not isinstance(get_value(scenario, path), tuple | list):
            grid[path] = value
        else:
            fixed[path] = value
    combos = itertools.product(*grid.values())
    return [{**fixed, **dict(zip(grid, c, strict=True))} for c in combos]


def get_value(scenario: Scenario, path: str) -> Any:
    """The value of a dotted path in a scenario (after :func:`check_path`)."""
    node: Any = scenario
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


fingerprint = scenario_hash
"""A stable hash of a scenario's content (its source folder left out)."""


def run_key(scenario_fingerprint: str, seed: int, years: int) -> str:
    """The key of a run: hash of its resolved scenario, seed, years, relocsim version and the
    hash of the installed code (an edited or reinstalled relocsim never reuses old runs)."""
    text = json.dumps([scenario_fingerprint, seed, years, relocsim.__version__, code_hash()])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    return value


def plan_runs(study: Study, base: Scenario | None = None) -> Plan:
    """Expand and validate every run of a study.

    Args:
        study: the parsed study.
        base: the base scenario (default: loaded from ``study.scenario``).

    Raises:
        StudyError: the base scenario cannot be loaded, a path is unknown, or a value is
            invalid; the message names the study file, the variant or design point, and the
            path.
    """
    where = study.source
    try:
        base = load_scenario(study.scenario) if base is None else base
    except ScenarioError as exc:
        raise StudyError(f"{where}: field 'scenario': {exc}") from exc
    years = base.years if study.years is None else study.years

    def checked(paths: dict[str, Any], context: str) -> None:
        for path in paths:
            try:
                check_path(base, path)
            except ScenarioError as exc:
                raise StudyError(f"{where}: {context}: {exc}") from exc

    checked(study.overrides, "field 'overrides'")
    try:
        common = apply_overrides(base, study.overrides)
    except ScenarioError as exc:
        raise StudyError(f"{where}: field 'overrides': {exc}") from exc
    for name, values in study.variants.items():
        checked(values, f"variant '{name}'")
    draws = _draws(study, common)
    draw_indices: list[int | None] = list(range(draws.count)) if draws else [None]
    if study.design is not None:
        checked(study.design.parameters, "field 'design.parameters'")

    variants = study.variants or {BASE_VARIANT: {}}
    points = design_points(study)
    parameters = list(
        dict.fromkeys(
            [p for v in study.variants.values() for p in v]
            + (list(study.design.parameters) if study.design else [])
        )
    )
    runs: list[RunSpec] = []
    keys_by_overrides: dict[str, tuple[Scenario, dict[str, Any]]] = {}
    all_points: dict[str, list[dict[str, Any]]] = {}
    for vname, values in variants.items():
        all_points[vname] = []
        for sub in _expand_variant(values, common):
            for point_values in points:
                point = len(all_points[vname])
                all_points[vname].append(point_values)
                for draw in draw_indices:
                    drawn = draws.overrides(draw) if draws and draw is not None else {}
                    overrides = {**drawn, **sub, **point_values}
                    label = json.dumps(overrides, sort_keys=True, default=str)
                    if label not in keys_by_overrides:
                        try:
                            scenario = apply_overrides(common, overrides)
                        except ScenarioError as exc:
                            shown = ", ".join(
                                f"{k}={v!r}" for k, v in {**sub, **point_values}.items()
                            )
                            at = "" if draw is None else f" parameter draw {draw}"
                            raise StudyError(
                                f"{where}: variant '{vname}' point ({shown}){at}: {exc}"
                            ) from exc
                        params = {p: _plain(get_value(scenario, p)) for p in parameters}
                        keys_by_overrides[label] = (fingerprint(scenario), params)
                    fp, params = keys_by_overrides[label]
                    for rep, seed in enumerate(study.seeds):
                        runs.append(
                            RunSpec(
                                len(runs),
                                run_key(fp, seed, years),
                                vname,
                                point,
                                rep,
                                seed,
                                years,
                                {**study.overrides, **overrides},
                                params,
                                draw,
                            )
                        )
    return Plan(study, base, runs, parameters, all_points, draws)


def _draws(study: Study, common: Scenario) -> ParameterDraws | None:
    """The study's parameter draws for its scenario, keyed by its seed (default: the first
    replication seed)."""
    spec = study.parameter_draws
    if spec is None:
        return None
    seed = study.seeds[0] if spec.seed is None else spec.seed
    try:
        return draw_parameters(spec.estimates, common, spec.draws, seed)
    except ParameterDrawError as exc:
        raise StudyError(f"{study.source}: field 'parameter_draws': {exc}") from exc
