"""``relocsim compare``: one policy change against the baseline, as a study of two variants.

An economist's first question, "what does this policy change do to jobs?", needs a paired
difference over seeds with its interval, never one run. ``relocsim compare --set PATH=VALUE``
writes that study (:func:`compare_study_text`: variants ``baseline`` and ``policy``, the contrast
``policy - baseline`` on :data:`DEFAULT_OUTPUTS` unless ``--outputs`` names others) and runs it as
``relocsim sweep`` runs a study file: resumable, on a process pool or Dask, with the contrasts'
95% intervals and minimum detectable effects printed at the end.

Each change gets a folder of its own under ``--out`` (:func:`compare_folder`), holding its study
(``study.toml``), tables and analysis, so ``relocsim analyze`` reads it as any sweep's and
``relocsim sweep FOLDER/study.toml`` runs it again. The runs themselves go to ``--out``'s
``runs/``, which every change in it shares: a baseline run once serves each policy compared
against it, and no compare overwrites another's results.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

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
DEFAULT_SCENARIO = "brussels-metro"
MAX_FOLDER_NAME = 100
"""Longer folder names are cut and end in a hash of the whole name (file systems cap at 255)."""


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


def compare_folder(
    root: Path, scenario: str, policy: Mapping[str, str], baseline: Mapping[str, str] | None = None
) -> Path:
    """The folder of one change under ``root``, named by what it compares: the ``--set``
    assignments, then ``with`` and the ``--base-set`` ones (each sorted, so the order they are
    given in does not matter), after the scenario when it is not the default
    (``policies.aid_portability.mode=none``).

    Seeds, years and outputs are not in the name: the same change asked again at another
    precision replaces its own tables (its runs stay in ``root/runs``)."""
    parts = sorted(f"{path}={value}" for path, value in policy.items())
    if baseline:
        parts += ["with", *sorted(f"{path}={value}" for path, value in baseline.items())]
    if scenario != DEFAULT_SCENARIO:
        parts.insert(0, Path(scenario).stem if Path(scenario).exists() else scenario)
    name = re.sub(r"[^A-Za-z0-9._=+,-]+", "_", "+".join(parts)).lstrip(".")
    if len(name) > MAX_FOLDER_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[: MAX_FOLDER_NAME - 13]}-{digest}"
    return root / name
