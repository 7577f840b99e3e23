"""Estimation spec: which choice coefficients are estimated, pooled or by sector, or held fixed.

A spec is a small TOML file::

    [coefficients]          # each: "sector" (one per sector), "pooled" (one for all) or "fixed"
    b_land = "sector"
    b_dist = "pooled"
    nest_scale = "pooled"
    asc_move = "sector"
    b_stress = "pooled"     # behaviour coefficients are scalars: "pooled" or "fixed"

    [options]
    zone_constants = false  # estimate the zone constants (amenity), the first zone held fixed
    start = "scenario"      # starting values: "scenario" (the scenario's values) or "neutral"
    control_function = ["iv_cost"]  # instrument columns of the alternatives table: a control
                            # function for the land price (relocsim.estimation.control); default []

Coefficients not named are held at the scenario's values. Parameter names are
``b_land[heavy_industry]`` (by sector), ``b_dist`` (pooled or scalar) and ``amenity[zone]``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from relocsim.decision import SCALAR_CHOICE_COEFFICIENTS, SECTOR_CHOICE_COEFFICIENTS

SECTOR_COEFFICIENTS = SECTOR_CHOICE_COEFFICIENTS
"""Coefficients the scenario sets per sector (``sectors.<name>.<coef>``)."""

SCALAR_COEFFICIENTS = SCALAR_CHOICE_COEFFICIENTS

MODES = ("sector", "pooled", "fixed")
STARTS = ("scenario", "neutral")


class SpecError(ValueError):
    """A spec file or dict the estimator cannot use."""


@dataclass(frozen=True)
class Spec:
    """What to estimate.

    Attributes:
        modes: coefficient name -> "sector", "pooled" or "fixed".
        zone_constants: whether the zone constants are estimated.
        start: "scenario" or "neutral" starting values.
        control_function: instrument columns of the alternatives table (empty: no control
            function for the land price).
        source: the spec's text (for provenance).
    """

    modes: dict[str, str] = field(default_factory=dict)
    zone_constants: bool = False
    start: str = "scenario"
    control_function: tuple[str, ...] = ()
    source: str = ""

    def mode(self, coef: str) -> str:
        return self.modes.get(coef, "fixed")


def parse_spec(data: dict[str, Any], source: str = "spec") -> Spec:
    """Validate a spec given as a dict (as read from TOML)."""
    unknown = set(data) - {"coefficients", "options"}
    if unknown:
        raise SpecError(f"{source}: unknown table(s) {sorted(unknown)}; expected [coefficients]")
    modes = dict(data.get("coefficients", {}))
    for name, mode in modes.items():
        if name not in SECTOR_COEFFICIENTS + SCALAR_COEFFICIENTS:
            raise SpecError(
                f"{source}: [coefficients] {name!r} is not a choice coefficient; expected one of "
                f"{', '.join(SECTOR_COEFFICIENTS + SCALAR_COEFFICIENTS)}"
            )
        if mode not in MODES:
            raise SpecError(
                f"{source}: [coefficients] {name} = {mode!r}; expected one of {', '.join(MODES)}"
            )
        if name in SCALAR_COEFFICIENTS and mode == "sector":
            raise SpecError(
                f"{source}: [coefficients] {name} = 'sector': {name} is one number for all "
                "sectors (behaviour); use 'pooled' or 'fixed'"
            )
    options = dict(data.get("options", {}))
    bad = set(options) - {"zone_constants", "start", "control_function"}
    if bad:
        raise SpecError(f"{source}: unknown option(s) {sorted(bad)}")
    zone_constants = options.get("zone_constants", False)
    if not isinstance(zone_constants, bool):
        raise SpecError(f"{source}: [options] zone_constants = {zone_constants!r}; expected bool")
    start = options.get("start", "scenario")
    if start not in STARTS:
        raise SpecError(f"{source}: [options] start = {start!r}; expected one of {STARTS}")
    if not any(m != "fixed" for m in modes.values()) and not zone_constants:
        raise SpecError(f"{source}: nothing to estimate (every coefficient is fixed)")
    spec = Spec(modes=modes, zone_constants=zone_constants, start=start, source=repr(data))
    return with_control_function(spec, options.get("control_function", []), source)


def with_control_function(spec: Spec, instruments: object, source: str = "spec") -> Spec:
    """``spec`` with a control function for the land price on ``instruments`` (a column name
    or a list of them; empty: none)."""
    control = [instruments] if isinstance(instruments, str) else instruments
    if not isinstance(control, list | tuple) or not all(isinstance(c, str) and c for c in control):
        raise SpecError(
            f"{source}: control_function = {instruments!r}; expected a list of instrument "
            "column names of the alternatives table"
        )
    if control and spec.mode("b_land") == "fixed":
        raise SpecError(
            f"{source}: control_function needs b_land estimated ('pooled' or 'sector'), "
            "not held fixed"
        )
    return replace(spec, control_function=tuple(control))


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec TOML file."""
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except FileNotFoundError as exc:
        raise SpecError(f"{path}: no such spec file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return replace(parse_spec(data, str(path)), source=text)
