"""Study files: what an experiment varies, how, how often and what it keeps.

A study is a TOML file (see ``experiments/README.md`` for the full reference)::

    name = "aid_portability"
    scenario = "brussels-metro"        # base scenario: built-in name, folder or .toml path
    years = 15                         # simulated years of every run (default: the scenario's)
    replications = 3                   # seeds per design point
    seed = 0                           # replication r runs with seed = seed + r
    outputs = ["brussels_jobs", "brussels_delocalisations_total"]

    [overrides]                        # applied to every run
    "land_market.price_elasticity" = 0.5

    [variants.clawback]                # named sets of overrides (policy variants)
    "policies.aid_portability.mode" = "clawback"
    "policies.aid_portability.repayment_share" = [0.5, 1.0]   # a list: a grid inside the variant

    [contrasts.clawback_vs_none]       # b minus a, paired by seed (relocsim analyze,
    b = "clawback"                     # relocsim sweep --precision)
    a = "none"
    outputs = ["brussels_jobs"]        # default: every output

    [parameter_draws]                  # coefficient vectors drawn from an estimate, crossed
    estimates = "estimates/"           # with the seeds (relocsim estimate --out DIR)
    draws = 20                         # K; draw k is keyed by (seed, k): same in every variant

    [design]                           # parameters that vary in every variant
    type = "lhs"                       # grid | lhs | sobol
    samples = 16                       # lhs: points; sobol: base sample N
    [design.parameters]
    "behaviour.b_stress" = { min = 1.0, max = 3.0 }

Loading checks the file's fields; :func:`relocsim.experiments.design.plan_runs` then checks every
design point against the base scenario before any run starts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from relocsim.experiments.errors import StudyError
from relocsim.experiments.outcomes import OutcomeSpec, parse_outcomes
from relocsim.parameter_draws import ParameterDrawError, check_count

DESIGN_TYPES: tuple[str, ...] = ("grid", "lhs", "sobol")
TOP_LEVEL_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "description",
        "scenario",
        "years",
        "replications",
        "seed",
        "seeds",
        "outputs",
        "overrides",
        "variants",
        "design",
        "analysis",
        "contrasts",
        "parameter_draws",
    }
)


@dataclass
class Range:
    """A continuous (or integer) range of a sampled parameter.

    Attributes:
        low: lower bound.
        high: upper bound.
        integer: round sampled values to integers.
    """

    low: float
    high: float
    integer: bool = False


@dataclass
class Design:
    """The parameters that vary across every variant.

    Attributes:
        type: ``grid`` (all combinations of listed values), ``lhs`` (Latin hypercube over ranges)
            or ``sobol`` (Saltelli sample for Sobol indices over ranges).
        parameters: dotted path -> list of values (grid) or :class:`Range` (lhs, sobol).
        samples: lhs: number of points; sobol: base sample N (runs = N * (D + 2)).
        seed: seed of the sampler.
        second_order: sobol: also sample for second-order indices.
    """

    type: str = "grid"
    parameters: dict[str, list[Any] | Range] = field(default_factory=dict)
    samples: int = 0
    seed: int = 0
    second_order: bool = False


@dataclass(frozen=True)
class DrawSpec:
    """Parameter draws crossed with the seeds (:mod:`relocsim.parameter_draws`).

    Attributes:
        estimates: the estimates folder (``relocsim estimate --out DIR``).
        draws: number of coefficient vectors K.
        seed: seed keying the draws (``None``: the study's first seed).
    """

    estimates: str
    draws: int
    seed: int | None = None


@dataclass(frozen=True)
class Contrast:
    """A named comparison of two variants, paired by seed: ``b`` minus ``a``.

    Attributes:
        name: the contrast's name.
        b: the variant compared.
        a: the reference variant.
        outputs: the outcomes compared (default: every outcome of the study).
    """

    name: str
    b: str
    a: str
    outputs: tuple[str, ...] = ()


@dataclass
class Study:
    """A parsed study file.

    Attributes:
        name: study name.
        description: what question the study answers.
        scenario: base scenario (built-in name, folder or ``.toml`` path).
        years: simulated years (``None``: the scenario's default).
        seeds: the replication seeds (replication r uses ``seeds[r]``).
        outputs: outcome metrics kept (see :mod:`relocsim.experiments.outcomes`).
        overrides: dotted-path overrides applied to every run.
        variants: variant name -> dotted path -> value or list of values (a grid in the variant).
        design: the design over all variants, or ``None``.
        analysis: options for ``relocsim analyze`` (e.g. ``sobol_outputs``).
        contrasts: variant comparisons paired by seed (``relocsim analyze``, ``--precision``).
        parameter_draws: coefficient draws crossed with the seeds, or ``None``.
        source: the study file's path and text (copied next to the results).
    """

    name: str
    scenario: str = "brussels-metro"
    description: str = ""
    years: int | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    outputs: list[OutcomeSpec] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    design: Design | None = None
    analysis: dict[str, Any] = field(default_factory=dict)
    contrasts: list[Contrast] = field(default_factory=list)
    parameter_draws: DrawSpec | None = None
    source: str = ""
    text: str = ""

    @property
    def replications(self) -> int:
        return len(self.seeds)

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]


def _fail(where: str, message: str) -> StudyError:
    return StudyError(f"{where}: {message}")


def _int(raw: dict, key: str, where: str, minimum: int, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(
            where, f"field '{key}': value {value!r} is invalid; expected an integer >= {minimum}"
        )
    return value


def _table(raw: dict, key: str, where: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise _fail(where, f"field '{key}': expected a table ([{key}]), got {value!r}")
    return value


def _parse_range(value: Any, where: str, path: str) -> Range:
    if not isinstance(value, dict):
        raise _fail(
            where,
            f"field 'design.parameters.\"{path}\"': expected a range "
            f"{{ min = ..., max = ... }}, got {value!r}",
        )
    unknown = set(value) - {"min", "max", "integer"}
    if unknown or "min" not in value or "max" not in value:
        raise _fail(
            where,
            f"field 'design.parameters.\"{path}\"': expected keys min, max "
            f"(and optionally integer), got {sorted(value)}",
        )
    low, high = value["min"], value["max"]
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise _fail(
                where, f"field 'design.parameters.\"{path}\"': bound {bound!r} is not a number"
            )
    if not low < high:
        raise _fail(
            where, f"field 'design.parameters.\"{path}\"': min {low} must be below max {high}"
        )
    return Range(float(low), float(high), bool(value.get("integer", False)))


def _parse_design(raw: Any, where: str) -> Design | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(where, f"field 'design': expected a table, got {raw!r}")
    unknown = set(raw) - {"type", "parameters", "samples", "seed", "second_order"}
    if unknown:
        raise _fail(
            where,
            f"field 'design.{sorted(unknown)[0]}': unknown key; expected type, "
            "parameters, samples, seed, second_order",
        )
    if "type" not in raw:
        raise _fail(
            where, f"field 'design.type': missing; expected one of {', '.join(DESIGN_TYPES)}"
        )
    kind = raw["type"]
    if kind not in DESIGN_TYPES:
        raise _fail(
            where,
            f"field 'design.type': unknown design type {kind!r}; expected one "
            f"of {', '.join(DESIGN_TYPES)}",
        )
    params = _table(raw, "parameters", where + " [design]")
    if not params:
        raise _fail(
            where,
            "field 'design.parameters': missing or empty; name at least one "
            "parameter by its dotted path",
        )
    design = Design(
        type=kind,
        seed=_int(raw, "seed", where, 0, 0) or 0,
        second_order=bool(raw.get("second_order", False)),
    )
    if kind == "grid":
        for path, values in params.items():
            if not isinstance(values, list) or not values:
                raise _fail(
                    where,
                    f"field 'design.parameters.\"{path}\"': a grid needs a "
                    f"non-empty list of values, got {values!r}",
                )
            design.parameters[path] = list(values)
    else:
        design.samples = _int(raw, "samples", where, 2, None) or 0
        if not design.samples:
            raise _fail(
                where,
                f"field 'design.samples': missing; a {kind} design needs the "
                "number of samples (an integer >= 2)",
            )
        for path, value in params.items():
            design.parameters[path] = _parse_range(value, where, path)
    return design


def _parse_contrasts(raw: Any, where: str, variants: dict, outputs: list[str]) -> list[Contrast]:
    """``[contrasts.NAME]`` tables: ``b`` and ``a`` (variant names), optional ``outputs``."""
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _fail(where, f"field 'contrasts': expected a table of contrasts, got {raw!r}")
    contrasts = []
    for name, spec in raw.items():
        field_name = f"contrasts.{name}"
        if not isinstance(spec, dict) or set(spec) - {"b", "a", "outputs"}:
            raise _fail(
                where,
                f"field '{field_name}': expected {{ b = VARIANT, a = VARIANT, outputs = [...] }} "
                f"(b minus a, paired by seed), got {spec!r}",
            )
        for side in ("b", "a"):
            if not isinstance(spec.get(side), str) or spec[side] not in variants:
                raise _fail(
                    where,
                    f"field '{field_name}.{side}': {spec.get(side)!r} is not a variant; "
                    f"expected one of {', '.join(variants) or '(no variants)'}",
                )
        if spec["a"] == spec["b"]:
            raise _fail(where, f"field '{field_name}': a variant compared with itself")
        chosen = spec.get("outputs", [])
        if not isinstance(chosen, list) or any(o not in outputs for o in chosen):
            raise _fail(
                where,
                f"field '{field_name}.outputs': expected a list of the study's outputs "
                f"({', '.join(outputs)}), got {chosen!r}",
            )
        contrasts.append(Contrast(str(name), spec["b"], spec["a"], tuple(chosen)))
    return contrasts


def _parse_draws(raw: Any, where: str) -> DrawSpec | None:
    """``[parameter_draws]``: ``estimates`` (folder), ``draws`` (K), optional ``seed``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(where, f"field 'parameter_draws': expected a table, got {raw!r}")
    unknown = set(raw) - {"estimates", "draws", "seed"}
    if unknown:
        raise _fail(
            where,
            f"field 'parameter_draws.{sorted(unknown)[0]}': unknown key; expected estimates, "
            "draws, seed",
        )
    estimates = raw.get("estimates")
    if not isinstance(estimates, str) or not estimates:
        raise _fail(
            where,
            f"field 'parameter_draws.estimates': {estimates!r}; expected the folder written by "
            "relocsim estimate --out DIR",
        )
    try:
        draws = check_count(raw.get("draws"), "field 'parameter_draws.draws':")
    except ParameterDrawError as exc:
        raise _fail(where, str(exc)) from None
    return DrawSpec(estimates, draws, _int(raw, "seed", where + " [parameter_draws]", 0, None))


def parse_study(raw: dict[str, Any], source: str = "<study>", text: str = "") -> Study:
    """Build a :class:`Study` from the parsed TOML of a study file.

    Raises:
        StudyError: a missing or malformed field, naming the file and the field.
    """
    where = source
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise _fail(
            where,
            f"unknown field '{sorted(unknown)[0]}'; expected one of: "
            + ", ".join(sorted(TOP_LEVEL_KEYS)),
        )
    if "scenario" not in raw:
        raise _fail(
            where,
            "field 'scenario': missing; name the base scenario (e.g. "
            'scenario = "brussels-metro")',
        )
    if not isinstance(raw["scenario"], str):
        raise _fail(where, f"field 'scenario': expected a text, got {raw['scenario']!r}")
    if "outputs" not in raw:
        raise _fail(where, "field 'outputs': missing; list the outcome metrics to keep")
    name = raw.get("name") or Path(source).stem
    replications = _int(raw, "replications", where, 1, None)
    if "seeds" in raw:
        seeds = raw["seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        ):
            raise _fail(where, f"field 'seeds': expected a list of integers >= 0, got {seeds!r}")
        if replications is not None and replications != len(seeds):
            raise _fail(where, f"field 'replications': {replications} but {len(seeds)} seeds")
    else:
        base = _int(raw, "seed", where, 0, 0) or 0
        seeds = [base + r for r in range(replications or 1)]
    variants_raw = _table(raw, "variants", where)
    variants: dict[str, dict[str, Any]] = {}
    for vname, values in variants_raw.items():
        if not isinstance(values, dict):
            raise _fail(
                where,
                f"field 'variants.{vname}': expected a table of dotted-path "
                f"overrides, got {values!r}",
            )
        for path, value in values.items():
            if isinstance(value, list) and not value:
                raise _fail(where, f"field 'variants.{vname}.\"{path}\"': empty list of values")
        variants[str(vname)] = dict(values)
    outputs = parse_outcomes(raw["outputs"], where)
    return Study(
        name=str(name),
        scenario=raw["scenario"],
        description=str(raw.get("description", "")),
        years=_int(raw, "years", where, 0, None),
        seeds=list(seeds),
        outputs=outputs,
        contrasts=_parse_contrasts(
            raw.get("contrasts"), where, variants, [o.name for o in outputs]
        ),
        overrides=dict(_table(raw, "overrides", where)),
        variants=variants,
        design=_parse_design(raw.get("design"), where),
        analysis=dict(_table(raw, "analysis", where)),
        parameter_draws=_parse_draws(raw.get("parameter_draws"), where),
        source=source,
        text=text,
    )


def set_draws(study: Study, draws: int | None, estimates: str | None) -> None:
    """Apply ``--parameter-draws K`` / ``--estimates DIR`` from the command line to ``study``
    (each replaces the study file's value; the seed keying the draws is kept)."""
    if draws is None and estimates is None:
        return
    spec = study.parameter_draws
    if estimates is None and spec is None:
        raise StudyError(
            f"{study.source}: --parameter-draws needs an estimates folder: --estimates DIR or "
            '[parameter_draws] estimates = "DIR" in the study'
        )
    if draws is None and spec is None:
        raise StudyError(
            f"{study.source}: --estimates needs a number of draws: --parameter-draws K or "
            "[parameter_draws] draws = K in the study"
        )
    try:
        count = check_count(draws if draws is not None else spec.draws)  # type: ignore[union-attr]
    except ParameterDrawError as exc:
        raise StudyError(str(exc)) from None
    study.parameter_draws = DrawSpec(
        estimates if estimates is not None else spec.estimates,  # type: ignore[union-attr]
        count,
        spec.seed if spec is not None else None,
    )


def load_study(path: str | Path) -> Study:
    """Read and parse a study file.

    Raises:
        StudyError: the file is missing, is not TOML, or has a bad field.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"{path}: study file not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{path}: not valid TOML: {exc}") from exc
    study = parse_study(raw, str(path), text)
    scenario = Path(study.scenario)
    if not scenario.is_absolute() and (path.parent / scenario).exists():
        study.scenario = str(path.parent / scenario)
    draws = study.parameter_draws
    if draws is not None and not Path(draws.estimates).is_absolute():
        study.parameter_draws = replace(draws, estimates=str(path.parent / draws.estimates))
    return study
