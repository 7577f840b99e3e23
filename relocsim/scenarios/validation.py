"""Validation: one walker checks every field of a scenario against the rule declared with it.

:func:`walk` visits every value of a dataclass tree and builds its dotted path itself
(``regions.Brussels.aid.take_up``, ``land.bxl_canal_port.ghta.vacant_ha``, ``plants[0].jobs``);
:func:`check_fields` checks each value's type and its rule from :mod:`.schema`. The few checks
that involve several fields and cannot be declared on one field are the explicit list
:data:`CROSS_CHECKS`.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from relocsim.scenarios.schema import Scenario, ScenarioError, did_you_mean, hints, show

Leaf = tuple[str, Any, Any, dataclasses.Field]
"""(dotted path, value, type hint, field) of one scalar field."""


def walk(node: Any, path: str = "") -> Iterator[Leaf]:
    """Yield every scalar field below dataclass ``node``, with its dotted path."""
    types = hints(type(node))
    for fld in dataclasses.fields(node):
        if fld.metadata.get("internal"):
            continue
        value = getattr(node, fld.name)
        sub = f"{path}.{fld.name}" if path else fld.name
        yield from _walk_value(value, types[fld.name], fld, sub)


def _walk_value(value: Any, hint: Any, fld: dataclasses.Field, path: str) -> Iterator[Leaf]:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        yield from walk(value, path)
    elif origin is dict:
        if not isinstance(value, dict):
            raise ScenarioError(f"field '{path}': expected a table, got {show(value)}")
        item_hint = typing.get_args(hint)[1]
        for key, item in value.items():
            yield from _walk_value(item, item_hint, fld, f"{path}.{key}")
    elif origin is list:
        if not isinstance(value, list):
            raise ScenarioError(f"field '{path}': expected a list, got {show(value)}")
        for i, item in enumerate(value):
            yield from _walk_value(item, typing.get_args(hint)[0], fld, f"{path}[{i}]")
    else:
        yield path, value, hint, fld


def _has_type(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if hint is int:
        return isinstance(value, int)
    if hint is float:
        return isinstance(value, int | float)
    if hint is str:
        return isinstance(value, str)
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "text"}


def source_of(scenario: Scenario, path: str) -> str:
    """The file a dotted path of ``scenario`` was read from (or what the scenario is)."""
    top = path.split(".")[0].split("[")[0]
    fields = {f.name: f for f in dataclasses.fields(Scenario)}
    file = fields[top].metadata.get("file", "scenario.toml") if top in fields else ""
    folder = scenario.source_dir
    if folder and Path(folder).is_dir():
        return str(Path(folder) / file)
    return folder or f"scenario '{scenario.name}'"


def check_fields(obj: Any, root: Any, source: str) -> None:
    """Check the type and the declared rule of every field below ``obj``.

    Args:
        obj: a dataclass tree (a :class:`Scenario` or a part of one).
        root: the scenario cross-references are resolved in.
        source: what the message names as the origin (file or scenario).

    Raises:
        ScenarioError: naming the source, the dotted path, the value and what was expected.
    """
    for path, value, hint, fld in walk(obj):
        _check_leaf(root, source, path, value, hint, fld)


# --------------------------------------------------------------------------------------------
# Checks across fields (cannot be declared on one field)


def _fail(scenario: Scenario, path: str, message: str) -> None:
    raise ScenarioError(f"{source_of(scenario, path)}: field '{path}': {message}")


def _tables_are_not_empty(scenario: Scenario) -> None:
    for name in ("regions", "sectors", "zones", "population"):
        if not getattr(scenario, name):
            _fail(scenario, name, f"no {name}; expected at least one")
    if sum(cell.firms for cell in scenario.population) < 1:
        _fail(scenario, "population", "no firm in any cell; expected at least one firm")


def _keys_name_their_entries(scenario: Scenario) -> None:
    for table in ("regions", "sectors", "zones"):
        for key, entry in getattr(scenario, table).items():
            if entry.name != key:
                _fail(scenario, f"{table}.{key}.name", f"'{entry.name}' differs from its key")
    for zone, pools in scenario.land.items():
        for use, pool in pools.items():
            if (pool.zone, pool.land_use) != (zone, use):
                _fail(
                    scenario,
                    f"land.{zone}.{use}",
                    f"holds the pool of ({pool.zone}, {pool.land_use})",
                )


def _every_region_has_a_zone(scenario: Scenario) -> None:
    used = {zone.region for zone in scenario.zones.values()}
    for name in scenario.regions:
        if name not in used:
            _fail(
                scenario,
                f"regions.{name}",
                "no zone is in this region; regions of the zones: "
                + ", ".join(sorted(used))
                + did_you_mean(name, used),
            )


def _jobs_cover_firms(scenario: Scenario) -> None:
    for i, cell in enumerate(scenario.population):
        if cell.jobs < cell.firms:
            _fail(
                scenario,
                f"population[{i}].jobs",
                f"value {cell.jobs} ({cell.region}, {cell.sector}) is invalid; expected at "
                f"least one job per firm (>= {cell.firms})",
            )


def _single_investor_has_a_sector(scenario: Scenario) -> None:
    for name, zone in scenario.zones.items():
        investor = zone.site_option == "single" and zone.site_investor_jobs > 0
        if investor and zone.site_investor_sector not in scenario.sectors:
            _fail(
                scenario,
                f"zones.{name}.site_investor_sector",
                f"value {zone.site_investor_sector!r} is invalid; a single investor "
                "needs one of the sectors: " + ", ".join(scenario.sectors),
            )


def _plant_names_are_unique(scenario: Scenario) -> None:
    seen: set[str] = set()
    for i, plant in enumerate(scenario.plants):
        if plant.name in seen:
            _fail(scenario, f"plants[{i}].name", f"'{plant.name}' names two plants")
        seen.add(plant.name)


CROSS_CHECKS: tuple[Callable[[Scenario], None], ...] = (
    _tables_are_not_empty,
    _keys_name_their_entries,
    _every_region_has_a_zone,
    _jobs_cover_firms,
    _single_investor_has_a_sector,
    _plant_names_are_unique,
)


def validate(scenario: Scenario) -> None:
    """Check every field against its rule, then the cross-field checks.

    Raises:
        ScenarioError: naming the file, the dotted path, the value and what was expected.
    """
    for fld in dataclasses.fields(scenario):
        if fld.metadata.get("internal"):
            continue
        source = source_of(scenario, fld.name)
        for path, value, hint, leaf in _walk_value(
            getattr(scenario, fld.name), hints(Scenario)[fld.name], fld, fld.name
        ):
            _check_leaf(scenario, source, path, value, hint, leaf)
    for check in CROSS_CHECKS:
        check(scenario)


def _check_leaf(
    root: Any, source: str, path: str, value: Any, hint: Any, fld: dataclasses.Field
) -> None:
    rule = fld.metadata.get("rule")
    if not _has_type(value, hint):
        expected = TYPE_NAMES.get(hint, "a list of names")
    elif rule is None:
        return
    else:
        expected = rule.check(value, root)
    if expected:
        raise ScenarioError(
            f"{source}: field '{path}': value {show(value)} is invalid; expected {expected}"
        )
