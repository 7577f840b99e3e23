"""``relocsim compare``: one policy change against the baseline, as a study of two variants.

An economist's first question, "what does this policy change do to jobs?", needs a paired
difference over seeds with its interval, never one run. ``relocsim compare --set PATH=VALUE``
writes that study (:func:`compare_study_text`: variants ``baseline`` and ``policy``, the contrast
``policy - baseline`` on :data:`DEFAULT_OUTPUTS` unless ``--outputs`` names others) and runs it as
``relocsim sweep`` runs a study file: resumable, on a process pool or Dask, with the contrasts'
95% intervals and minimum detectable effects printed at the end. The study is kept in the output
folder (``study.toml``), so ``relocsim analyze`` reads the folder as any sweep's, and
``relocsim sweep DIR/study.toml`` runs it again.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence

from relocsim.experiments.study import Study, parse_study

DEFAULT_OUTPUTS = (
    "brussels_jobs",
    "brussels_low_skilled_jobs",
    "brussels_industrial_jobs",
    "metro_jobs",
    "brussels_delocalisations_total",
    "brussels_net_public_cost_total",
)
DEFAULT_SEEDS = 10
"""Seed pairs by default: a 95% interval on 9 degrees of freedom, 20 runs."""
NAME = "compare"


def _toml_table(values: Mapping[str, str]) -> list[str]:
    # JSON strings are valid TOML basic strings: quotes and backslashes escaped alike
    return [f"{json.dumps(path)} = {json.dumps(value)}" for path, value in values.items()]


def compare_study_text(
    scenario: str,
    policy: Mapping[str, str],
    baseline: Mapping[str, str] | None = None,
    *,
    years: int | None = None,
    seeds: int = DEFAULT_SEEDS,
    seed: int = 0,
    outputs: Sequence[str] = DEFAULT_OUTPUTS,
) -> str:
    """The study file of ``policy`` (dotted paths and values, as ``--set`` gives them) against
    the baseline (``baseline``: overrides of both variants, ``--base-set``)."""
    described = ", ".join(f"{path}={value}" for path, value in policy.items())
    lines = [
        "# written by relocsim compare",
        f"name = {json.dumps(NAME)}",
        f"description = {json.dumps('policy (' + described + ') minus the baseline')}",
        f"scenario = {json.dumps(scenario)}",
        f"replications = {int(seeds)}",
        f"seed = {int(seed)}",
        f"outputs = {json.dumps(list(outputs))}",
    ]
    if years is not None:
        lines.append(f"years = {int(years)}")
    lines += ["", "[overrides]", *_toml_table(baseline or {})]
    lines += ["", "[variants.baseline]", "", "[variants.policy]", *_toml_table(policy)]
    lines += [
        "",
        "[contrasts.policy_vs_baseline]",
        'b = "policy"',
        'a = "baseline"',
        f"outputs = {json.dumps(list(outputs))}",
    ]
    return "\n".join(lines) + "\n"


def compare_study(text: str) -> Study:
    """The :class:`Study` of a text from :func:`compare_study_text` (checked as any study)."""
    return parse_study(tomllib.loads(text), source="relocsim compare", text=text)
