"""Scenarios: the plain data a run starts from, read from files, validated, overridden.

A scenario is a folder (or a ``.toml`` file whose CSV tables sit beside it) with

- ``scenario.toml``: run settings, regions (aid regime, incentives, taxes), policies, behaviour,
  land-market parameters, plants with scheduled closures; every calibrated value has its unit and
  source in a comment next to it;
- ``sectors.csv``, ``zones.csv``, ``land.csv`` (one row per zone x land-use pool) and
  ``population.csv`` (initial firms and jobs by region and sector), each row with a ``source``;
- ``columns.csv``: the unit and meaning of every CSV column, checked against the schema's units.

Modules: :mod:`.schema` (the dataclasses, each field with its rule), :mod:`.validation` (the one
walker and the short list of cross-field checks), :mod:`.files` (TOML and CSV reading),
:mod:`.overrides` (dotted-path changes), :mod:`.synthetic` (generated scenarios of any size),
:mod:`.loading` (by name, path or ``synthetic:`` spec). Built-in scenarios are the data folders
beside them (``brussels-metro/``).

Adding a field is one line in :mod:`.schema`: ``new_field: float = param(default, rule)``, the
rule from ``Interval(low, high)``, ``OneOf(choices)``, ``EachOf(choices)``, ``RefTo(table)``,
``YearOrZero(meaning)``, ``Name()`` or ``Flag()`` (and, for a CSV column, its unit as the third
argument). The walker then checks it, overrides reach it by its dotted path, and a scenario file
must set it: add the value (with its unit and source) to each scenario's ``scenario.toml``, or
the CSV column and its ``columns.csv`` row. No default is ever used silently for a file.
"""

from relocsim.scenarios.files import load_folder
from relocsim.scenarios.loading import builtin_scenarios, load_scenario
from relocsim.scenarios.overrides import apply_overrides, check_path
from relocsim.scenarios.schema import (
    LAND_USES,
    LANGUAGES,
    PORTABILITY_MODES,
    SITE_OPTIONS,
    AidPortability,
    AidRegime,
    Behaviour,
    LandMarket,
    LandPool,
    Plant,
    Policies,
    PopulationCell,
    Region,
    Scenario,
    ScenarioError,
    Sector,
    Zone,
    border_friction,
)
from relocsim.scenarios.synthetic import SyntheticSpec, synthetic, synthetic_from_spec
from relocsim.scenarios.validation import validate

__all__ = [
    "LAND_USES",
    "LANGUAGES",
    "PORTABILITY_MODES",
    "SITE_OPTIONS",
    "AidPortability",
    "AidRegime",
    "Behaviour",
    "LandMarket",
    "LandPool",
    "Plant",
    "Policies",
    "PopulationCell",
    "Region",
    "Scenario",
    "ScenarioError",
    "Sector",
    "SyntheticSpec",
    "Zone",
    "apply_overrides",
    "border_friction",
    "builtin_scenarios",
    "check_path",
    "load_folder",
    "load_scenario",
    "synthetic",
    "synthetic_from_spec",
    "validate",
]
