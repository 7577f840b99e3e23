"""Scenario: the plain data a run starts from, loaded from TOML + CSV, validated, overridden.

A scenario is a folder (or a ``.toml`` file whose CSV tables sit beside it) with

- ``scenario.toml``: run settings, regions (aid regime, incentives, taxes), policies, behaviour,
  land-market parameters, scheduled shocks; every calibrated value has its unit and source in a
  comment next to it;
- ``sectors.csv``: one row per sector (land per job, growth, nuisance class, aid eligibility,
  choice sensitivities);
- ``zones.csv``: one row per zone (region, coordinates, accessibility, land price, site options);
- ``land.csv``: one row per land pool (zone x land-use class) with its vacant developable area and
  its share of the region's initial firms;
- ``population.csv``: initial firms and jobs by region and sector.

Every CSV has ``unit``-documented columns in ``columns.csv`` and a ``source`` column per row.

Loading validates every field and raises :class:`ScenarioError` naming the file, the field, the
value and what was expected. :func:`apply_overrides` changes any field by its dotted path
(``policies.aid_portability.mode``, ``zones.audi_vorst.open_year``,
``sectors.logistics.b_land``, ``land.canal_port.ghta.vacant_ha``).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

LAND_USES: tuple[str, ...] = ("gsi", "ghta", "ogso", "mixed", "park")
"""Land-use classes: urban industry (GSI/ZIU), port & transport (GHTA), mixed enterprise
(OGSO/ZEMU), mixed/residential, hinterland business park."""

PORTABILITY_MODES: tuple[str, ...] = ("none", "clawback", "compensation")
SITE_OPTIONS: tuple[str, ...] = ("single", "subdivided", "housing")


def border_friction(scenario: Scenario) -> list[list[float]]:
    """Utility lost moving from region r to region q: the language border, if crossed."""
    languages = [r.language for r in scenario.regions.values()]
    penalty = scenario.behaviour.language_border
    return [
        [penalty if "both" not in (a, b) and a != b else 0.0 for b in languages] for a in languages
    ]


class ScenarioError(ValueError):
    """A scenario file or override holds a value the model cannot use."""


# --------------------------------------------------------------------------------------------
# Plain data


@dataclass
class AidRegime:
    """Regional investment aid: a contract each aided firm carries.

    Attributes:
        enabled: whether the region grants investment aid.
        intensity_small: aid as a share of the aided investment for firms under 50 employees.
        intensity_medium: same for 50-249 employees.
        intensity_large: same for 250 employees or more.
        investment_per_job_eur: aided investment per job created or moved in (EUR/job).
        commitment_years: durability period: the aided activity must stay in the region.
        take_up: yearly probability that an eligible investing firm applies and is granted aid.
        anti_relocation_years: GBER rule: no aid to a firm that delocalised within this many years.
        jobs_commitment_share: share of its jobs at grant an aided firm must keep during the
            commitment (0: no jobs condition); a detected breach is clawed back pro rata.
        commitment_years_buildings: durability period of the aid's premises (buildings) part.
        development_zone_bonus: intensity points added in zones flagged ``development_zone``.
    """

    enabled: bool = True
    intensity_small: float = 0.2
    intensity_medium: float = 0.1
    intensity_large: float = 0.0
    investment_per_job_eur: float = 40_000.0
    commitment_years: int = 5
    take_up: float = 0.1
    anti_relocation_years: int = 2
    jobs_commitment_share: float = 0.0
    commitment_years_buildings: int = 5
    development_zone_bonus: float = 0.0


@dataclass
class Region:
    """A region with its own aid regime, fiscal incentives and local taxes.

    Attributes:
        name: region name (``Brussels``, ``Flanders``, ``Wallonia`` in the default).
        local_tax_eur_m2_year: local and regional taxes on business premises (EUR per m2 per year).
        incentive_eur_per_job_year: fiscal incentive paid per job kept, to firms that commit to
            keep their jobs (EUR per job per year; 0 switches it off).
        incentive_years: length of the job commitment of the incentive (years).
        incentive_take_up: yearly probability that an eligible firm signs up.
        aid: the investment aid regime.
        language: ``nl``, ``fr``, ``de`` or ``both``; moving between regions of different
            languages costs ``behaviour.language_border`` utility (``both`` never pays it).
    """

    name: str = ""
    language: str = "both"
    local_tax_eur_m2_year: float = 0.0
    incentive_eur_per_job_year: float = 0.0
    incentive_years: int = 5
    incentive_take_up: float = 0.0
    aid: AidRegime = field(default_factory=AidRegime)


@dataclass
class Sector:
    """A sector of productive activity (advice §1.3) and its behaviour.

    Attributes:
        name: sector key.
        land_per_job_m2: land a job needs (m2 of plot per job).
        growth_drift: expected yearly growth rate of a firm's employment (log-growth has mean
            drift - volatility^2 / 2).
        growth_volatility: standard deviation of yearly log-growth of a one-employee firm.
        volatility_size_elasticity: volatility falls with size as employees ** (-elasticity).
        exit_hazard: yearly exit probability of a young one-employee firm.
        birth_rate: yearly births per incumbent firm of the sector.
        low_skilled_share: share of the sector's jobs that are low-skilled.
        land_uses: land-use classes the sector may occupy (nuisance rules).
        aid_eligible: whether the sector's firms can receive investment aid.
        b_land: disutility of land cost of the needed area (per million EUR).
        b_dist: disutility of travel time from the current zone (per minute).
        b_claw: disutility of money owed or forgone on leaving the region (per million EUR).
        b_access: utility of the mean of the zone's road, rail and labour-market accessibility.
        b_water: extra utility of waterway access.
        b_agglo: utility of log same-sector jobs in the zone (agglomeration).
        b_incentive: utility of destination fiscal incentives (per thousand EUR per job-year).
        nest_scale: nested-logit scale of the move nests (0 < scale <= 1).
        asc_move: constant of moving (relative to staying).
        asc_deloc: extra constant of leaving the region.
        equipment_per_job_eur: equipment a job needs in new premises (EUR/job): with the
            premises at the land price, the investment that investment aid pays a share of.
    """

    name: str = ""
    land_per_job_m2: float = 100.0
    growth_drift: float = 0.0
    growth_volatility: float = 0.3
    volatility_size_elasticity: float = 0.2
    exit_hazard: float = 0.1
    birth_rate: float = 0.08
    low_skilled_share: float = 0.3
    land_uses: tuple[str, ...] = ("park",)
    aid_eligible: bool = True
    b_land: float = 1.0
    b_dist: float = 0.05
    b_claw: float = 2.0
    b_access: float = 1.0
    b_water: float = 0.0
    b_agglo: float = 0.2
    b_incentive: float = 0.1
    nest_scale: float = 0.7
    asc_move: float = -4.0
    asc_deloc: float = -1.0
    equipment_per_job_eur: float = 20_000.0


@dataclass
class Zone:
    """A unit of location choice: an area of one region with its land pools.

    Attributes:
        name: zone key.
        region: name of the region it belongs to.
        x_km: easting in km (any planar projection; distances are Euclidean).
        y_km: northing in km.
        radius_km: typical distance of a move inside the zone (km).
        congestion: road travel slowdown inside and out of the zone (1 = free flow).
        price_eur_m2: land price for economic activity (EUR/m2 of plot).
        access_road: road accessibility index (0-1).
        access_rail: rail accessibility index (0-1).
        access_water: waterway accessibility index (0-1).
        labour_access: labour-market accessibility index (0-1).
        amenity: zone constant of the location choice (utility): what the other terms miss
            (congestion, low-emission zone, conflicts with housing); calibrated.
        open_year: year its vacant land opens to firms (0: always open).
        site_option: for a large site: ``single`` (one investor), ``subdivided`` (mixed
            industrial park) or ``housing`` (converted, no productive land).
        site_investor_jobs: jobs of the single investor when ``site_option = single``.
        site_investor_sector: sector of that investor.
        preemption: the region pre-empts land released here and keeps it productive.
        land_subsidy: share of the land price paid by the region for firms locating here.
        densification: multiplier on land per job for firms here (< 1 densifies).
        development_zone: the region's aid adds its ``development_zone_bonus`` here.
    """

    name: str = ""
    region: str = ""
    x_km: float = 0.0
    y_km: float = 0.0
    radius_km: float = 2.0
    congestion: float = 1.0
    price_eur_m2: float = 100.0
    access_road: float = 0.5
    access_rail: float = 0.5
    access_water: float = 0.0
    labour_access: float = 0.5
    amenity: float = 0.0
    open_year: int = 0
    site_option: str = "subdivided"
    site_investor_jobs: int = 0
    site_investor_sector: str = ""
    preemption: bool = False
    land_subsidy: float = 0.0
    densification: float = 1.0
    development_zone: bool = False


@dataclass
class LandPool:
    """The land of one land-use class in one zone.

    Attributes:
        zone: zone key.
        land_use: land-use class (one of :data:`LAND_USES`).
        vacant_ha: developable land not occupied at the start (ha).
        firm_share: share of the region's initial firms of sectors allowed here placed in this pool.
        new_ha_per_year: land newly zoned and equipped for firms each year (ha/yr).
    """

    zone: str = ""
    land_use: str = "park"
    vacant_ha: float = 0.0
    firm_share: float = 0.0
    new_ha_per_year: float = 0.0


@dataclass
class PopulationCell:
    """Initial firms of one sector in one region.

    Attributes:
        region: region name.
        sector: sector name.
        firms: number of firms.
        jobs: number of jobs (sets the mean firm size).
        size_sigma: log-normal dispersion of firm size.
    """

    region: str = ""
    sector: str = ""
    firms: int = 0
    jobs: int = 0
    size_sigma: float = 1.2


@dataclass
class AidPortability:
    """What happens to unexpired aid when a firm leaves the granting region.

    Attributes:
        mode: ``none`` (nothing), ``clawback`` (the firm repays) or ``compensation`` (the
            destination region pays the origin region).
        repayment_share: share of the aid repaid when leaving in the first year of the
            commitment; it declines linearly to zero at its end.
        compensation_share: share the destination pays the origin (same linear decline).
    """

    mode: str = "none"
    repayment_share: float = 1.0
    compensation_share: float = 1.0


@dataclass
class Policies:
    """Switchable policies.

    Attributes:
        aid_portability: aid portability rules.
        speculation_tax: yearly tax on retained vacant land as a share of its value; each point
            of tax releases ``land.speculation_response`` of the retained land.
        monitoring: yearly probability that a breach of a job commitment (of an incentive or of
            an aid with a jobs condition) is
            detected and the incentive clawed back.
    """

    aid_portability: AidPortability = field(default_factory=AidPortability)
    speculation_tax: float = 0.0
    monitoring: float = 0.5


@dataclass
class Behaviour:
    """Firm-level behaviour of the move decision and of demography.

    Attributes:
        b_stress: utility of moving per unit of space stress (missing share of needed land).
        b_growth: utility of moving per unit of last year's log-growth.
        b_age: disutility of moving per unit of log(1 + age).
        b_size: disutility of moving per unit of log(employees).
        exit_age_decay: exit hazard multiplier per year of age: exp(-decay * age).
        exit_size_elasticity: exit hazard falls with size as employees ** (-elasticity).
        max_employees: cap on a firm's employees.
        money_scale_eur: EUR per unit of money in the choice utilities (1e6: per MEUR).
        language_border: utility lost moving across the language border.
        money_size_elasticity: money weighs as (10 / employees) ** elasticity relative to a
            ten-job firm (a euro matters less to a big firm).
        growth_stress_penalty: log-growth lost in a year at full space stress (1/yr).
        aid_growth_semi_elasticity: log-employment gained per unit of aid intensity, spread
            evenly over the aid's commitment years.
        aid_growth_max_employees: firms at or above this size gain no growth from aid.
        exit_incentive_semi_elasticity: exit hazard falls as exp(-this x incentive received, in
            kEUR per job-year) while a job-keeping incentive runs (per kEUR/job-year).
        exit_tax_semi_elasticity: exit hazard rises as exp(this x local tax on the firm's
            premises, in kEUR per job-year) (per kEUR/job-year).
        birth_vacancy_elasticity: births in a zone scale as (vacant share / its reference) **
            this elasticity.
        birth_price_elasticity: births in a zone scale as (land price / its reference) **
            (-this elasticity).
    """

    b_stress: float = 2.0
    b_growth: float = 1.0
    b_age: float = 0.3
    b_size: float = 0.1
    exit_age_decay: float = 0.05
    exit_size_elasticity: float = 0.2
    max_employees: int = 20_000
    money_scale_eur: float = 1e6
    money_size_elasticity: float = 0.5
    language_border: float = 0.0
    growth_stress_penalty: float = 0.0
    aid_growth_semi_elasticity: float = 0.0
    aid_growth_max_employees: int = 150
    exit_incentive_semi_elasticity: float = 0.0
    exit_tax_semi_elasticity: float = 0.0
    birth_vacancy_elasticity: float = 0.0
    birth_price_elasticity: float = 0.0


@dataclass
class LandMarket:
    """How land supply and prices move.

    Attributes:
        target_occupancy: occupancy at which prices of large sites are stable (other pools are
            stable at their starting occupancy, when their prices were observed).
        price_elasticity: yearly log-price change per point of occupancy above target.
        max_price_change: cap on the yearly change of the log price.
        price_reversion: yearly share of the log-gap to the starting price that closes.
        retained_share: share of vacant land held back by owners (speculation/retention).
        speculation_response: share of retained land released per unit of speculation tax.
        conversion_rate: yearly share of released productive land in mixed zones lost to
            housing/offices (pre-emption stops it).
        mixed_price_premium: price multiplier of the mixed/residential class.
        tax_capitalisation_years: years of local tax added to the land price a firm weighs.
    """

    target_occupancy: float = 0.85
    price_elasticity: float = 0.5
    max_price_change: float = 0.1
    price_reversion: float = 0.15
    retained_share: float = 0.3
    speculation_response: float = 10.0
    conversion_rate: float = 0.3
    mixed_price_premium: float = 1.5
    tax_capitalisation_years: float = 10.0


@dataclass
class Plant:
    """A large plant placed explicitly at the start, possibly with a scheduled closure (a shock).

    Attributes:
        name: plant name (e.g. ``audi_brussels``).
        zone: zone of the plant.
        land_use: land-use class of its plot.
        sector: its sector.
        jobs: its employees.
        land_ha: its plot (ha).
        close_year: year it closes, its jobs lost and its land released (0: never; it stays an
            anchor that takes no yearly decision).
    """

    name: str = ""
    zone: str = ""
    land_use: str = "gsi"
    sector: str = ""
    jobs: int = 0
    land_ha: float = 0.0
    close_year: int = 0


@dataclass
class Scenario:
    """Everything a run starts from.

    Attributes:
        name: scenario name.
        start_year: first simulated year.
        years: default number of simulated years.
        regions: regions by name.
        sectors: sectors by name.
        zones: zones by name.
        land: land pools by zone then land-use class.
        population: initial firm population cells.
        policies: policy switches.
        behaviour: behaviour parameters.
        land_market: land-market parameters.
        plants: large plants placed explicitly, with scheduled closures.
        travel_speed_kmh: mean door-to-door road speed at free flow (km/h).
        detour_factor: road distance over straight-line distance.
        n_sampled: sampled alternatives in the location choice (0 = all).
        source_dir: where the scenario was loaded from (for messages).
    """

    name: str = "scenario"
    start_year: int = 2025
    years: int = 30
    regions: dict[str, Region] = field(default_factory=dict)
    sectors: dict[str, Sector] = field(default_factory=dict)
    zones: dict[str, Zone] = field(default_factory=dict)
    land: dict[str, dict[str, LandPool]] = field(default_factory=dict)
    population: list[PopulationCell] = field(default_factory=list)
    policies: Policies = field(default_factory=Policies)
    behaviour: Behaviour = field(default_factory=Behaviour)
    land_market: LandMarket = field(default_factory=LandMarket)
    plants: list[Plant] = field(default_factory=list)
    travel_speed_kmh: float = 60.0
    detour_factor: float = 1.3
    n_sampled: int = 0
    source_dir: str = ""


# --------------------------------------------------------------------------------------------
# Coercion of raw values into typed fields


def _where(file: str, path: str) -> str:
    return f"{file}: field '{path}'" if file else f"field '{path}'"


def _coerce(value: Any, hint: Any, file: str, path: str) -> Any:
    """Convert a raw TOML/CSV/CLI value to the field's type or raise a ScenarioError."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
        raise ScenarioError(f"{_where(file, path)}: value {value!r} is not a boolean (true/false)")
    if hint is int:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number != int(number):
            raise ScenarioError(f"{_where(file, path)}: value {value!r} is not an integer")
        return int(number)
    if hint is float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise ScenarioError(f"{_where(file, path)}: value {value!r} is not a finite number")
        return number
    if hint is str:
        if not isinstance(value, str | int | float):
            raise ScenarioError(f"{_where(file, path)}: value {value!r} is not text")
        return str(value)
    if origin is tuple:
        items = value.split(";") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    raise ScenarioError(f"{_where(file, path)}: cannot set a value of type {hint}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, raw: Mapping[str, Any], file: str, path: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and coercing values."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{_where(file, path)}: expected a table, got {raw!r}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        sub = f"{path}.{key}" if path else key
        if key not in hints or key == "source_dir":
            known = ", ".join(k for k in hints if k != "source_dir")
            raise ScenarioError(f"{_where(file, sub)}: unknown field; expected one of: {known}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, file, sub)
        else:
            kwargs[key] = _coerce(value, hint, file, sub)
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Loading


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise ScenarioError(f"{path}: file not found (every scenario needs it)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [
            row
            for row in csv.DictReader(line for line in handle if not line.startswith("#"))
            if any((v or "").strip() for v in row.values())
        ]
    return rows


def _rows_to(cls: type, rows: Iterable[dict[str, str]], file: str, key: str) -> list[Any]:
    built = []
    hints = _hints(cls)
    for number, row in enumerate(rows, start=2):
        values = {k: v for k, v in row.items() if k in hints and v is not None and v.strip() != ""}
        unknown = [k for k in row if k not in hints and k not in ("source", "unit", "note")]
        if unknown:
            raise ScenarioError(
                f"{file}: row {number}: unknown column '{unknown[0]}'; expected one of: "
                + ", ".join(hints)
            )
        label = row.get(key, f"row {number}")
        built.append(_build(cls, values, file, f"{label}"))
    return built


def _scenario_files(location: str | Path) -> tuple[Path, Path]:
    path = Path(location)
    if path.is_dir():
        return path / "scenario.toml", path
    return path, path.parent


def builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with relocsim."""
    root = resources.files("relocsim") / "scenarios"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def load_scenario(name_or_path: str | Path = "brussels-metro", **overrides: Any) -> Scenario:
    """Load, validate and return a scenario.

    Args:
        name_or_path: a built-in scenario name (see :func:`builtin_scenarios`), a folder holding
            ``scenario.toml``, a path to a ``.toml`` file, or ``synthetic:key=value,...``.
        **overrides: dotted-path overrides written with ``__`` for dots
            (``policies__aid_portability__mode="clawback"``).

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: a file is missing or a value is invalid; the message names the file, the
            field, the value and what was expected.
    """
    text = str(name_or_path)
    if text.startswith("synthetic"):
        from relocsim.synthetic import synthetic_from_spec

        scenario = synthetic_from_spec(text)
    elif text in builtin_scenarios():
        root = resources.files("relocsim") / "scenarios" / text
        with resources.as_file(root) as folder:
            scenario = _load_files(*_scenario_files(folder))
    else:
        toml_path, folder = _scenario_files(text)
        if not toml_path.exists():
            raise ScenarioError(
                f"scenario '{text}': not a built-in scenario ({', '.join(builtin_scenarios())}), "
                "not 'synthetic:...', and no such file or folder"
            )
        scenario = _load_files(toml_path, folder)
    if overrides:
        scenario = apply_overrides(
            scenario, {k.replace("__", "."): v for k, v in overrides.items()}
        )
    return scenario


def _load_files(toml_path: Path, folder: Path) -> Scenario:
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{toml_path}: not valid TOML: {exc}") from exc
    file = str(toml_path)
    raw_regions = raw.pop("regions", {})
    raw_plants = raw.pop("plants", [])
    scenario = _build(Scenario, raw, file, "")
    scenario.regions = {
        name: _build(Region, {"name": name, **values}, file, f"regions.{name}")
        for name, values in raw_regions.items()
    }
    scenario.plants = [
        _build(Plant, item, file, f"plants[{i}]") for i, item in enumerate(raw_plants)
    ]
    sectors = _rows_to(
        Sector, _read_csv(folder / "sectors.csv"), str(folder / "sectors.csv"), "name"
    )
    scenario.sectors = {s.name: s for s in sectors}
    zones = _rows_to(Zone, _read_csv(folder / "zones.csv"), str(folder / "zones.csv"), "name")
    scenario.zones = {z.name: z for z in zones}
    pools = _rows_to(LandPool, _read_csv(folder / "land.csv"), str(folder / "land.csv"), "zone")
    scenario.land = {}
    for pool in pools:
        scenario.land.setdefault(pool.zone, {})[pool.land_use] = pool
    population_file = folder / "population.csv"
    scenario.population = _rows_to(
        PopulationCell, _read_csv(population_file), str(population_file), "region"
    )
    scenario.source_dir = str(folder)
    validate(scenario)
    return scenario


# --------------------------------------------------------------------------------------------
# Validation


def _check(ok: bool, where: str, value: Any, expected: str) -> None:
    if not ok:
        raise ScenarioError(f"{where}: value {value!r} is invalid; expected {expected}")


def _check_member(value: Any, allowed: Iterable[Any], where: str) -> None:
    allowed = list(allowed)
    _check(value in allowed, where, value, "one of " + ", ".join(map(str, allowed)))


def _check_range(obj: Any, fields: Mapping[str, tuple[float, float]], where: str) -> None:
    for name, (low, high) in fields.items():
        value = getattr(obj, name)
        _check(low <= value <= high, f"{where}.{name}", value, f"a number in [{low}, {high}]")


def validate(scenario: Scenario) -> None:
    """Check cross-references and ranges; raise ScenarioError naming the offending field."""
    src = scenario.source_dir or scenario.name
    _check(bool(scenario.regions), f"{src}: field 'regions'", {}, "at least one region")
    _check(bool(scenario.sectors), f"{src}: sectors.csv", {}, "at least one sector")
    _check(bool(scenario.zones), f"{src}: zones.csv", {}, "at least one zone")
    _check(scenario.years >= 0, f"{src}: field 'years'", scenario.years, "a count >= 0")
    _check(
        1900 <= scenario.start_year <= 2200,
        f"{src}: field 'start_year'",
        scenario.start_year,
        "a calendar year between 1900 and 2200",
    )
    behaviour = scenario.behaviour
    _check(
        behaviour.max_employees >= 1,
        f"{src}: field 'behaviour.max_employees'",
        behaviour.max_employees,
        "at least 1 employee",
    )
    _check(
        behaviour.money_scale_eur > 0,
        f"{src}: field 'behaviour.money_scale_eur'",
        behaviour.money_scale_eur,
        "a positive amount of EUR",
    )
    _check_range(
        behaviour,
        {
            "growth_stress_penalty": (0, 1),
            "aid_growth_semi_elasticity": (0, 5),
            "aid_growth_max_employees": (1, 1e6),
            "exit_incentive_semi_elasticity": (0, 10),
            "exit_tax_semi_elasticity": (0, 10),
            "birth_vacancy_elasticity": (0, 5),
            "birth_price_elasticity": (0, 5),
        },
        f"{src}: field 'behaviour",
    )
    _check(scenario.n_sampled >= 0, f"{src}: field 'n_sampled'", scenario.n_sampled, ">= 0")
    _check(
        scenario.travel_speed_kmh > 0,
        f"{src}: field 'travel_speed_kmh'",
        scenario.travel_speed_kmh,
        "a speed > 0",
    )
    for name, region in scenario.regions.items():
        where = f"{src}: field 'regions.{name}"
        aid = region.aid
        _check_range(
            aid,
            {
                "intensity_small": (0, 1),
                "intensity_medium": (0, 1),
                "intensity_large": (0, 1),
                "take_up": (0, 1),
                "investment_per_job_eur": (0, 1e8),
                "jobs_commitment_share": (0, 1),
                "commitment_years_buildings": (1, 100),
                "development_zone_bonus": (0, 1),
            },
            where + ".aid'",
        )
        _check(
            aid.commitment_years >= 1,
            where + ".aid.commitment_years'",
            aid.commitment_years,
            "at least 1 year",
        )
        _check_range(
            region,
            {
                "incentive_take_up": (0, 1),
                "local_tax_eur_m2_year": (0, 1e4),
                "incentive_eur_per_job_year": (0, 1e6),
            },
            where + "'",
        )
        _check(
            region.incentive_years >= 1,
            where + ".incentive_years'",
            region.incentive_years,
            "at least 1 year",
        )
    for name, sector in scenario.sectors.items():
        where = f"{src}/sectors.csv: field 'sectors.{name}"
        _check(
            sector.land_per_job_m2 > 0,
            where + ".land_per_job_m2'",
            sector.land_per_job_m2,
            "a positive area (m2 per job)",
        )
        _check_range(
            sector,
            {
                "low_skilled_share": (0, 1),
                "exit_hazard": (0, 1),
                "birth_rate": (0, 1),
                "growth_volatility": (0, 5),
                "nest_scale": (0.01, 1),
                "equipment_per_job_eur": (0, 1e8),
            },
            where,
        )
        for use in sector.land_uses:
            _check_member(use, LAND_USES, where + ".land_uses'")
        for coef in ("b_land", "b_dist", "b_claw"):
            _check(
                getattr(sector, coef) >= 0,
                f"{where}.{coef}'",
                getattr(sector, coef),
                "a non-negative sensitivity (it is subtracted)",
            )
    for name, zone in scenario.zones.items():
        where = f"{src}/zones.csv: field 'zones.{name}"
        _check_member(zone.region, scenario.regions, where + ".region'")
        _check(
            zone.price_eur_m2 > 0,
            where + ".price_eur_m2'",
            zone.price_eur_m2,
            "a positive price in EUR/m2",
        )
        _check_member(zone.site_option, SITE_OPTIONS, where + ".site_option'")
        _check_range(
            zone,
            {
                "access_road": (0, 1),
                "access_rail": (0, 1),
                "access_water": (0, 1),
                "labour_access": (0, 1),
                "land_subsidy": (0, 1),
                "densification": (0.1, 2),
                "congestion": (0.1, 10),
                "radius_km": (0, 500),
            },
            where,
        )
        if zone.site_option == "single" and zone.site_investor_jobs > 0:
            _check_member(
                zone.site_investor_sector, scenario.sectors, where + ".site_investor_sector'"
            )
    for zone_name, pools in scenario.land.items():
        for use, pool in pools.items():
            where = f"{src}/land.csv: field 'land.{zone_name}.{use}"
            _check_member(zone_name, scenario.zones, where + ".zone'")
            _check_member(use, LAND_USES, where + ".land_use'")
            _check(pool.vacant_ha >= 0, where + ".vacant_ha'", pool.vacant_ha, "an area >= 0 ha")
            _check(pool.firm_share >= 0, where + ".firm_share'", pool.firm_share, "a share >= 0")
            _check(
                pool.new_ha_per_year >= 0,
                where + ".new_ha_per_year'",
                pool.new_ha_per_year,
                "an area >= 0 ha per year",
            )
    for cell in scenario.population:
        where = f"{src}/population.csv: field 'population.{cell.region}.{cell.sector}"
        _check_member(cell.region, scenario.regions, where + ".region'")
        _check_member(cell.sector, scenario.sectors, where + ".sector'")
        _check(cell.firms >= 0, where + ".firms'", cell.firms, "a count >= 0")
        _check(
            cell.jobs >= cell.firms,
            where + ".jobs'",
            cell.jobs,
            f"at least one job per firm (>= {cell.firms})",
        )
    portability = scenario.policies.aid_portability
    _check_member(
        portability.mode, PORTABILITY_MODES, f"{src}: field 'policies.aid_portability.mode'"
    )
    _check_range(
        portability,
        {"repayment_share": (0, 1), "compensation_share": (0, 1)},
        f"{src}: field 'policies.aid_portability",
    )
    _check_range(
        scenario.policies,
        {"speculation_tax": (0, 1), "monitoring": (0, 1)},
        f"{src}: field 'policies",
    )
    _check_range(
        scenario.land_market,
        {
            "target_occupancy": (0.05, 1),
            "retained_share": (0, 1),
            "conversion_rate": (0, 1),
            "max_price_change": (0, 1),
            "price_reversion": (0, 1),
            "price_elasticity": (0, 100),
        },
        f"{src}: field 'land_market",
    )
    for i, plant in enumerate(scenario.plants):
        where = f"{src}: field 'plants[{i}]"
        _check_member(plant.zone, scenario.zones, where + ".zone'")
        _check_member(plant.sector, scenario.sectors, where + ".sector'")
        _check_member(plant.land_use, LAND_USES, where + ".land_use'")
        _check(plant.jobs >= 1, where + ".jobs'", plant.jobs, "at least 1 job")
        _check(plant.land_ha > 0, where + ".land_ha'", plant.land_ha, "a positive area in ha")


# --------------------------------------------------------------------------------------------
# Overrides by dotted path


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
                )
            node = node[part]
        elif dataclasses.is_dataclass(node) and part in _hints(type(node)):
            node = getattr(node, part)
        else:
            raise ScenarioError(f"override '{path}': '{prefix}' is not a field of the scenario")
    last = parts[-1]
    if isinstance(node, dict) or not dataclasses.is_dataclass(node):
        raise ScenarioError(f"override '{path}': '{path}' names a table, not a value")
    hints = _hints(type(node))
    if last in hints and typing.get_origin(hints[last]) in (dict, list):
        raise ScenarioError(f"override '{path}': '{path}' names a table, not a value")
    if last not in hints or dataclasses.is_dataclass(hints[last]):
        fields = [k for k, h in hints.items() if not dataclasses.is_dataclass(h)]
        raise ScenarioError(
            f"override '{path}': unknown field '{last}'; expected one of: {', '.join(fields)}"
        )
    return node, last, hints[last]


def check_path(scenario: Scenario, path: str) -> None:
    """Raise ScenarioError if ``path`` does not name a settable scenario value."""
    _resolve(scenario, path)


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
        if isinstance(hint, types.UnionType):
            hint = typing.get_args(hint)[0]
        setattr(node, attr, _coerce(value, hint, "", path))
    validate(changed)
    return changed
