"""Finding a scenario by name, path or synthetic spec, and loading it with overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from relocsim.scenarios.files import load_folder, scenario_files
from relocsim.scenarios.overrides import apply_overrides
from relocsim.scenarios.schema import Scenario, ScenarioError
from relocsim.scenarios.synthetic import PREFIX, synthetic_from_spec


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with relocsim."""
    root = resources.files("relocsim") / "scenarios"
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith("_") and p.joinpath("scenario.toml").is_file()
    )


def load_scenario(name_or_path: str | Path = "brussels-metro", **overrides: Any) -> Scenario:
    """Load, validate and return a scenario.

    Args:
        name_or_path: a built-in scenario name (see :func:`builtin_scenarios`), a folder holding
            ``scenario.toml``, a path to a ``.toml`` file, or ``synthetic:key=value,...`` (only
            with the colon: ``synthetic-v2`` is a folder name like any other).
        **overrides: dotted-path overrides written with ``__`` for dots
            (``policies__aid_portability__mode="clawback"``).

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: a file is missing or a value is invalid; the message names the file, the
            field, the value and what was expected.
    """
    text = str(name_or_path)
    if text.startswith(PREFIX):
        scenario = synthetic_from_spec(text)
    elif text in builtin_scenarios():
        root = resources.files("relocsim") / "scenarios" / text
        with resources.as_file(root) as folder:
            scenario = load_folder(*scenario_files(folder))
    else:
        path = Path(text)
        if not path.exists():
            raise ScenarioError(
                f"scenario '{text}': not a built-in scenario ({', '.join(builtin_scenarios())}), "
                "not 'synthetic:...', and no such file or folder"
            )
        if not path.is_dir() and path.suffix != ".toml":
            raise ScenarioError(
                f"scenario '{text}': expected a folder holding scenario.toml or a .toml file"
            )
        scenario = load_folder(*scenario_files(path))
    if overrides:
        scenario = apply_overrides(
            scenario, {k.replace("__", "."): v for k, v in overrides.items()}
        )
    return scenario
