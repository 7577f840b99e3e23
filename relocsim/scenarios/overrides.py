"""Overrides: change any scenario value by its dotted path, then validate the result.

Paths are the walker's (``policies.aid_portability.mode``, ``zones.bxl_audi_vorst.open_year``,
``sectors.logistics.b_land``, ``land.bxl_canal_port.ghta.vacant_ha``); values may be text, as
from the command line, or typed.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from relocsim.scenarios.files import coerce
from relocsim.scenarios.schema import Scenario, ScenarioError, did_you_mean, hints
from relocsim.scenarios.validation import validate


def field_view(node: Any, name: str) -> Any:
    """Field ``name`` of dataclass ``node``; a list table (``population``) as nested dicts of its
    rows by its key columns (``population.Brussels.logistics.jobs``). The rows are the
    scenario's own, so setting a value through the view changes the scenario."""
    value = getattr(node, name)
    key = next((f.metadata.get("key") for f in dataclasses.fields(node) if f.name == name), None)
    if not isinstance(value, list) or not key:
        return value
    view: dict[str, Any] = {}
    for row in value:
        level = view
        for column in key[:-1]:
            level = level.setdefault(getattr(row, column), {})
        level[getattr(row, key[-1])] = row
    return view


def _resolve(scenario: Scenario, path: str) -> tuple[Any, str, Any]:
    """Return (container, attribute, type hint) for a dotted path, or raise naming the path."""
    parts = path.split(".")
    node: Any = scenario
    for i, part in enumerate(parts[:-1]):
        prefix = ".".join(parts[: i + 1])
        if isinstance(node, dict):
            if part not in node:
                raise ScenarioError(
                    f"override '{path}': unknown key '{part}' at '{prefix}'; expected one of: "
                    + ", ".join(map(str, node))
                    + did_you_mean(part, node)
                )
            node = node[part]
        elif dataclasses.is_dataclass(node) and part in hints(type(node)):
            node = field_view(node, part)
        else:
            raise ScenarioError(f"override '{path}': '{prefix}' is not a field of the scenario")
    last = parts[-1]
    if isinstance(node, dict) or not dataclasses.is_dataclass(node):
        raise ScenarioError(f"override '{path}': '{path}' names a table, not a value")
    types = {
        f.name: hints(type(node))[f.name]
        for f in dataclasses.fields(node)
        if not f.metadata.get("internal")
    }
    if last in types and typing.get_origin(types[last]) in (dict, list):
        raise ScenarioError(f"override '{path}': '{path}' names a table, not a value")
    if last not in types or dataclasses.is_dataclass(types[last]):
        fields = [k for k, h in types.items() if not dataclasses.is_dataclass(h)]
        raise ScenarioError(
            f"override '{path}': unknown field '{last}'; expected one of: {', '.join(fields)}"
            + did_you_mean(last, fields)
        )
    return node, last, types[last]


def check_path(scenario: Scenario, path: str) -> None:
    """Raise ScenarioError if ``path`` does not name a settable scenario value."""
    _resolve(scenario, path)


def path_rule(scenario: Scenario, path: str) -> Any:
    """The schema's rule (range, choices) of the value ``path`` names, ``None`` if it has none;
    ScenarioError as :func:`check_path` for a path that names no value."""
    node, attr, _ = _resolve(scenario, path)
    field = next(f for f in dataclasses.fields(node) if f.name == attr)
    return field.metadata.get("rule")


def apply_overrides(scenario: Scenario, overrides: Mapping[str, Any]) -> Scenario:
    """Return a validated copy of ``scenario`` with values changed by dotted path.

    Args:
        scenario: the base scenario (left untouched).
        overrides: ``{"policies.aid_portability.mode": "clawback", ...}``; values may be text
            (as from the command line) or typed.

    Raises:
        ScenarioError: unknown path or a value of the wrong type or out of range.
    """
    changed = copy.deepcopy(scenario)
    for path, value in overrides.items():
        node, attr, hint = _resolve(changed, path)
        setattr(node, attr, coerce(value, hint, f"override field '{path}'"))
    validate(changed)
    return changed
