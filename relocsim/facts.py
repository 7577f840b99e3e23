"""The fact registry: every sourced fact as data, and the functions that measure it on a run.

A :class:`Fact` (read from ``relocsim/data/facts.toml``) is a range from a cited source, its
unit, its definition as the model measures it, whether it is a calibration ``target`` or
``held_out``, and the name of its measuring function here with that function's arguments.
:func:`measure_facts` measures every fact on a run's tables (:class:`~relocsim.records.Results`)
in windows of years (by default the decades 2025-34, 2035-44, ... from the first simulated year).
Measuring functions take a :class:`Window` and return a float (NaN when the run holds nothing to
measure, e.g. no Brussels region in a synthetic scenario).
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relocsim.records import Results
from relocsim.toml_types import is_finite_number, is_integer

ROLES = ("target", "held_out")
MOVE_EVENTS = ("moved", "delocalised")
EXIT_EVENTS = ("exited", "closed")
SURVIVAL_YEARS = 5


class FactError(ValueError):
    """A fact file holds an entry the registry cannot use."""


@dataclass(frozen=True)
class Fact:
    """A sourced fact as a range the model should reproduce.

    Attributes:
        id: short key.
        label: what it is, in words.
        low: lower end of the range.
        high: upper end of the range.
        unit: unit of the value.
        definition: what the model measures (tables, events, zones standing in for
            municipalities).
        source: the citation(s).
        role: ``target`` (a calibration moment) or ``held_out`` (reported, never fitted).
        measure: name of the measuring function in :data:`MEASURES`.
        args: keyword arguments of that function.
        value: the point value a source gives, if one (else NaN).
    """

    id: str
    label: str
    low: float
    high: float
    unit: str
    definition: str
    source: str
    role: str
    measure: str
    args: Mapping[str, Any] = field(default_factory=dict)
    value: float = float("nan")

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return bool(np.isfinite(value) and self.low <= value <= self.high)


DEFAULT_FACTS = "facts.toml"


def load_facts(path: str | Path | None = None) -> tuple[Fact, ...]:
    """Read and check a fact file (default: the registry shipped in ``relocsim/data``).

    Raises:
        FactError: naming the file, the fact and the field that is wrong.
    """
    if path is None:
        text = (resources.files("relocsim") / "data" / DEFAULT_FACTS).read_text("utf-8")
        where = f"relocsim/data/{DEFAULT_FACTS}"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FactError(f"{where}: cannot read the fact file: {exc}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FactError(f"{where}: not valid TOML: {exc}") from exc
    facts = [_fact(item, where, i) for i, item in enumerate(raw.get("fact", []))]
    ids = [f.id for f in facts]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise FactError(f"{where}: fact id {duplicates[0]!r} appears more than once")
    if not facts:
        raise FactError(f"{where}: no [[fact]] entries")
    return tuple(facts)


def _check_args(name: str, measure: str, args: Any) -> None:
    """The fact's ``args`` must be the measuring function's arguments, of their types (from its
    annotations: a region or class name, a km distance, zone-name prefixes, a count of years)."""
    if not isinstance(args, Mapping):
        raise FactError(f"{name}: field 'args': value {args!r}; expected a table")
    fn = MEASURES[measure]
    try:
        inspect.signature(fn).bind(None, **args)
    except TypeError as exc:
        raise FactError(
            f"{name}: field 'args' {dict(args)!r} does not fit {measure}: {exc}"
        ) from exc
    for key, value in args.items():
        hint = str(fn.__annotations__.get(key, ""))
        if value is None and hint.endswith("| None"):
            continue
        if hint.startswith("Sequence[str]"):
            ok, expected = (
                isinstance(value, list) and all(isinstance(v, str) for v in value),
                ("a list of names"),
            )
        elif hint.startswith("str"):
            ok, expected = isinstance(value, str), "a name"
        elif hint.startswith("float"):
            ok, expected = is_finite_number(value), "a finite number"
        elif hint.startswith("int"):
            ok, expected = is_integer(value) and value >= 1, "a whole number of at least 1"
        else:
            continue
        if not ok:
            raise FactError(f"{name}: field 'args.{key}': value {value!r}; expected {expected}")


def _fact(item: Mapping[str, Any], where: str, index: int) -> Fact:
    name = f"{where}: fact[{index}] ({item.get('id', '?')})"
    required = ("id", "label", "low", "high", "unit", "definition", "source", "role", "measure")
    for key in required:
        if key not in item:
            raise FactError(f"{name}: field '{key}' is missing")
    known = {*required, "args", "value"}
    unknown = sorted(set(item) - known)
    if unknown:
        raise FactError(f"{name}: unknown field '{unknown[0]}'; expected one of {sorted(known)}")
    for key in ("id", "label", "unit", "definition", "source", "role", "measure"):
        if not isinstance(item[key], str):
            raise FactError(f"{name}: field '{key}': value {item[key]!r}; expected text")
    if item["role"] not in ROLES:
        raise FactError(f"{name}: field 'role': value {item['role']!r}; expected one of {ROLES}")
    if item["measure"] not in MEASURES:
        raise FactError(
            f"{name}: field 'measure': value {item['measure']!r} is not a measuring function; "
            f"expected one of {sorted(MEASURES)}"
        )
    _check_args(name, item["measure"], item.get("args", {}))
    low, high = (_finite(name, key, item[key]) for key in ("low", "high"))
    value = _finite(name, "value", item["value"]) if "value" in item else float("nan")
    if not low <= high:
        raise FactError(f"{name}: field 'low' ({low}) is above field 'high' ({high})")
    return Fact(
        id=str(item["id"]),
        label=str(item["label"]),
        low=low,
        high=high,
        unit=str(item["unit"]),
        definition=str(item["definition"]),
        source=str(item["source"]),
        role=str(item["role"]),
        measure=str(item["measure"]),
        args=dict(item.get("args", {})),
        value=value,
    )


def _finite(name: str, key: str, value: Any) -> float:
    """A fact's number: a finite TOML integer or float (not a boolean or text)."""
    if not is_finite_number(value):
        raise FactError(f"{name}: field '{key}': value {value!r}; expected a finite number")
    return float(value)


# --------------------------------------------------------------------------------------------
# Windows of years


@dataclass
class Window:
    """A run's tables restricted to the years ``first``-``last`` (``full`` keeps them all).

    Attributes:
        label: e.g. ``2025-2034``.
        first: first year.
        last: last year.
        tables: the tables of those years (yearly, flows, zones, accounts, events, sizes).
        full: the whole run (for measures that follow firms beyond the window).
        radius_km: zone radius by zone name (distance of a move inside a zone); empty: 0 km.
    """

    label: str
    first: int
    last: int
    tables: dict[str, pd.DataFrame]
    full: dict[str, pd.DataFrame]
    radius_km: Mapping[str, float] = field(default_factory=dict)

    def __getattr__(self, name: str) -> pd.DataFrame:
        try:
            return self.__dict__["tables"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    @property
    def n_years(self) -> int:
        return self.last - self.first + 1


def decades(first: int, last: int, length: int = 10) -> list[tuple[int, int]]:
    """Windows of ``length`` years from ``first`` (the last one may be shorter)."""
    return [(y, min(y + length - 1, last)) for y in range(first, last + 1, length)]


def window(
    results: Results, first: int, last: int, radius_km: Mapping[str, float] | None = None
) -> Window:
    """Cut a run's tables to the years ``first``-``last``."""
    full = results.tables()
    tables = {
        name: table[(table["year"] >= first) & (table["year"] <= last)]
        if "year" in table
        else table
        for name, table in full.items()
    }
    return Window(f"{first}-{last}", first, last, tables, full, dict(radius_km or {}))


def measure_facts(
    results: Results,
    years: Sequence[tuple[int, int]] | None = None,
    facts: Sequence[Fact] | None = None,
    radius_km: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Measure every fact on a run's tables, per window of years.

    Args:
        results: the run's tables.
        years: windows as ``(first, last)`` year pairs; default: decades from the first year.
        facts: the facts (default: the shipped registry).
        radius_km: zone radius by zone name (for the distance of moves inside a zone), e.g.
            ``{z: zone.radius_km for z, zone in scenario.zones.items()}``; default 0 km.

    Returns:
        One row per fact and window: ``fact, window, first_year, last_year, value``.
    """
    facts = load_facts() if facts is None else facts
    run_years = results.yearly["year"] if not results.yearly.empty else pd.Series([], dtype=int)
    if years is None:
        years = decades(int(run_years.min()), int(run_years.max())) if len(run_years) else []
    rows = []
    for first, last in years:
        w = window(results, first, last, radius_km)
        for fact in facts:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = float(MEASURES[fact.measure](w, **fact.args))
            rows.append(
                {
                    "fact": fact.id,
                    "window": w.label,
                    "first_year": first,
                    "last_year": last,
                    "value": value,
                }
            )
    return pd.DataFrame(rows, columns=["fact", "window", "first_year", "last_year", "value"])


def radius_of(scenario: Any) -> dict[str, float]:
    """Zone radius by zone name of a scenario (the distance of a move inside a zone)."""
    return {name: zone.radius_km for name, zone in scenario.zones.items()}


# --------------------------------------------------------------------------------------------
# Measuring functions

Measure = Callable[..., float]
MEASURES: dict[str, Measure] = {}


def _measure(fn: Measure) -> Measure:
    MEASURES[fn.__name__] = fn
    return fn


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


def _moves(w: Window) -> pd.DataFrame:
    return w.events[w.events["event"].isin(MOVE_EVENTS)]


def _zone_regions(w: Window) -> pd.Series:
    zones = w.full["zones"]
    return zones.drop_duplicates("zone").set_index("zone")["region"]


def _in_zones(names: pd.Series, prefixes: Sequence[str]) -> pd.Series:
    return names.astype(str).str.startswith(tuple(prefixes))


def _move_km(w: Window, moves: pd.DataFrame) -> np.ndarray:
    xy = w.full["zones"].drop_duplicates("zone").set_index("zone")[["x_km", "y_km"]]
    a = xy.reindex(moves["from_zone"]).to_numpy()
    b = xy.reindex(moves["to_zone"]).to_numpy()
    km = np.sqrt(((a - b) ** 2).sum(axis=1))
    inside = (moves["from_zone"] == moves["to_zone"]).to_numpy()
    radius = moves["from_zone"].map(w.radius_km).fillna(0.0).to_numpy()
    return np.where(inside, radius, km)


def _region_sum(table: pd.DataFrame, region: str, column: str) -> float:
    return float(table.loc[table["region"] == region, column].sum())


def _flow(w: Window, origin: str | None, destination: str | None) -> float:
    flows = w.flows
    mask = flows["origin_region"] != flows["destination_region"]
    if origin is not None:
        mask &= flows["origin_region"] == origin
    if destination is not None:
        mask &= flows["destination_region"] == destination
    return float(flows.loc[mask, "firms"].sum())


def _growth(series: pd.Series) -> float:
    """Geometric yearly growth of a series indexed by year, first to last year."""
    series = series.sort_index()
    if len(series) < 2 or series.iloc[0] <= 0:
        return float("nan")
    span = series.index[-1] - series.index[0]
    return float((series.iloc[-1] / series.iloc[0]) ** (1.0 / span) - 1.0)


@_measure
def move_rate(w: Window) -> float:
    """Moves (inside and across regions) per firm and year."""
    return _ratio(len(_moves(w)), w.yearly["firms"].sum())


@_measure
def short_move_share(w: Window, km: float) -> float:
    """Share of moves shorter than ``km``."""
    moves = _moves(w)
    return float((_move_km(w, moves) < km).mean()) if len(moves) else float("nan")


@_measure
def median_move_km(w: Window) -> float:
    """Median distance of a move (km)."""
    moves = _moves(w)
    return float(np.median(_move_km(w, moves))) if len(moves) else float("nan")


@_measure
def within_region_share(w: Window) -> float:
    """Relocations inside the region over all moves."""
    return _ratio(
        w.yearly["relocations"].sum(),
        w.yearly["relocations"].sum() + w.yearly["delocalisations"].sum(),
    )


@_measure
def region_out_rate(w: Window, region: str) -> float:
    """Firms leaving ``region`` per firm of the region and year."""
    return _ratio(
        _region_sum(w.yearly, region, "delocalisations"), _region_sum(w.yearly, region, "firms")
    )


@_measure
def region_in_out_ratio(w: Window, region: str) -> float:
    """Firms arriving in ``region`` over firms leaving it."""
    return _ratio(
        _region_sum(w.yearly, region, "arrivals"), _region_sum(w.yearly, region, "delocalisations")
    )


@_measure
def leavers_to_zones_share(w: Window, region: str, zones: Sequence[str]) -> float:
    """Share of ``region``'s leavers whose destination zone starts with one of ``zones``."""
    moves = w.events[w.events["event"] == "delocalised"]
    leavers = moves[moves["from_zone"].map(_zone_regions(w)) == region]
    return float(_in_zones(leavers["to_zone"], zones).mean()) if len(leavers) else float("nan")


@_measure
def entrants_from_zones_share(w: Window, region: str, zones: Sequence[str]) -> float:
    """Share of the firms arriving in ``region`` whose origin zone starts with one of ``zones``."""
    moves = w.events[w.events["event"] == "delocalised"]
    entrants = moves[moves["to_zone"].map(_zone_regions(w)) == region]
    return float(_in_zones(entrants["from_zone"], zones).mean()) if len(entrants) else float("nan")


@_measure
def moves_involving_share(w: Window, region: str) -> float:
    """Share of all moves (inside and across regions) with an origin or destination in
    ``region``."""
    moves = _moves(w)
    regions = _zone_regions(w)
    involved = (moves["from_zone"].map(regions) == region) | (
        moves["to_zone"].map(regions) == region
    )
    return float(involved.mean()) if len(moves) else float("nan")


@_measure
def involving_share(w: Window, region: str) -> float:
    """Share of interregional moves with ``region`` as origin or destination."""
    total = _flow(w, None, None)
    involved = _flow(w, region, None) + _flow(w, None, region)
    return _ratio(involved, total)


@_measure
def leavers_to_region_share(w: Window, region: str, destination: str) -> float:
    """Share of ``region``'s leavers going to ``destination``."""
    return _ratio(_flow(w, region, destination), _flow(w, region, None))


@_measure
def entrants_from_region_share(w: Window, region: str, origin: str) -> float:
    """Share of arrivals into ``region`` coming from ``origin``."""
    return _ratio(_flow(w, origin, region), _flow(w, None, region))


@_measure
def flow_ratio(w: Window, origin: str, destination: str) -> float:
    """Moves ``origin`` -> ``destination`` over moves the other way."""
    return _ratio(_flow(w, origin, destination), _flow(w, destination, origin))


@_measure
def intra_region_moves_per_leaver(w: Window, region: str) -> float:
    """Moves between two zones of ``region`` per firm leaving ``region``."""
    moved = w.events[w.events["event"] == "moved"]
    regions = _zone_regions(w)
    between = (moved["from_zone"] != moved["to_zone"]) & (moved["from_zone"].map(regions) == region)
    return _ratio(between.sum(), _region_sum(w.yearly, region, "delocalisations"))


def _size_rates(w: Window, region: str) -> pd.Series:
    sizes = w.sizes[w.sizes["region"] == region].groupby("size_class")[["firms", "delocalisations"]]
    totals = sizes.sum()
    return totals["delocalisations"] / totals["firms"].where(totals["firms"] > 0)


@_measure
def size_out_ratio(w: Window, region: str, large: str, small: str) -> float:
    """Out-rate of size class ``large`` over that of ``small`` in ``region``."""
    rates = _size_rates(w, region)
    if large not in rates or small not in rates:
        return float("nan")
    return _ratio(rates[large], rates[small])


@_measure
def size_out_per_1000(w: Window, region: str, size_class: str) -> float:
    """Firms of ``size_class`` leaving ``region`` per 1,000 such firms and year."""
    rates = _size_rates(w, region)
    return float(rates.get(size_class, np.nan)) * 1000.0


@_measure
def size_share(w: Window, region: str, size_class: str) -> float:
    """Share of ``region``'s firms in ``size_class`` (all years of the window pooled)."""
    sizes = w.sizes[w.sizes["region"] == region]
    return _ratio(sizes.loc[sizes["size_class"] == size_class, "firms"].sum(), sizes["firms"].sum())


@_measure
def birth_rate(w: Window) -> float:
    """Births per firm and year."""
    return _ratio(w.yearly["births"].sum(), w.yearly["firms"].sum())


@_measure
def exit_rate(w: Window) -> float:
    """Exits (plant closures included) per firm and year."""
    return _ratio(w.yearly["exits"].sum(), w.yearly["firms"].sum())


@_measure
def firm_growth(w: Window) -> float:
    """Geometric yearly growth of the number of firms."""
    return _growth(w.yearly.groupby("year")["firms"].sum())


@_measure
def five_year_survival(w: Window) -> float:
    """Share of the firms born in the window (with five simulated years after) alive 5 years on."""
    events = w.full["events"]
    last_year = int(w.full["yearly"]["year"].max())
    born = events[
        (events["event"] == "born")
        & (events["year"] >= w.first)
        & (events["year"] <= min(w.last, last_year - SURVIVAL_YEARS))
    ]
    if born.empty:
        return float("nan")
    ended = events[events["event"].isin(EXIT_EVENTS)].drop_duplicates("firm_id")
    exit_year = born["firm_id"].map(ended.set_index("firm_id")["year"])
    survived = exit_year.isna() | (exit_year > born["year"] + SURVIVAL_YEARS)
    return float(survived.mean())


@_measure
def jobs_growth(
    w: Window, region: str, sectors: Sequence[str] | None = None, years: int | None = None
) -> float:
    """Geometric yearly growth of ``region``'s jobs (in ``sectors``, default all), over the
    window or over its first ``years`` years."""
    yearly = w.yearly[w.yearly["region"] == region]
    if sectors is not None:
        yearly = yearly[yearly["sector"].isin(list(sectors))]
    if years is not None:
        yearly = yearly[yearly["year"] <= w.first + years]
    return _growth(yearly.groupby("year")["jobs"].sum())


def _zone_rows(w: Window, region: str | None = None, zones: Sequence[str] = ()) -> pd.DataFrame:
    table = w.zones
    if region is not None:
        table = table[table["region"] == region]
    if zones:
        table = table[_in_zones(table["zone"], zones)]
    return table


@_measure
def converted_ha_per_year(w: Window, region: str) -> float:
    """Productive land of ``region`` lost to housing/offices per year (ha)."""
    total = w.full["zones"]
    total = total[total["region"] == region].groupby("year")["converted_ha"].sum()
    before = total[total.index < w.first]
    start = before.iloc[-1] if len(before) else 0.0
    inside = total[(total.index >= w.first) & (total.index <= w.last)]
    if inside.empty:
        return float("nan")
    # converted_ha is cumulative: the window's conversions over its years
    return float((inside.iloc[-1] - start) / len(inside))


def _yearly_change(series: pd.Series) -> float:
    """Change per year of a series indexed by year, first to last year."""
    series = series.sort_index()
    if len(series) < 2:
        return float("nan")
    return float((series.iloc[-1] - series.iloc[0]) / (series.index[-1] - series.index[0]))


@_measure
def vacant_change_ha(w: Window, region: str) -> float:
    """Yearly change of ``region``'s vacant land for firms (ha/yr), first to last year."""
    return _yearly_change(_zone_rows(w, region).groupby("year")["vacant_ha"].sum())


@_measure
def developable_change_ha(w: Window, zones: Sequence[str]) -> float:
    """Yearly change of the land for firms of ``zones`` (ha/yr), first to last year: land newly
    zoned and equipped, less land converted to other uses."""
    return _yearly_change(_zone_rows(w, zones=zones).groupby("year")["developable_ha"].sum())


@_measure
def occupied_change_ha(w: Window, zones: Sequence[str]) -> float:
    """Yearly change of the land firms occupy in ``zones`` (ha/yr), first to last year: land
    taken up net of land vacated."""
    return _yearly_change(_zone_rows(w, zones=zones).groupby("year")["occupied_ha"].sum())


@_measure
def zone_vacant_ha(w: Window, zones: Sequence[str]) -> float:
    """Mean over the window's years of the vacant land of ``zones`` (ha)."""
    series = _zone_rows(w, zones=zones).groupby("year")["vacant_ha"].sum()
    return float(series.mean()) if len(series) else float("nan")


def _weighted_price(w: Window, zones: Sequence[str]) -> pd.Series:
    rows = _zone_rows(w, zones=zones)
    weighted = (rows["price_eur_m2"] * rows["developable_ha"]).groupby(rows["year"]).sum()
    return weighted / rows.groupby("year")["developable_ha"].sum().replace(0, np.nan)


@_measure
def zone_price(w: Window, zones: Sequence[str]) -> float:
    """Mean over the window's years of the land price of ``zones`` (EUR/m2)."""
    price = _weighted_price(w, zones)
    return float(price.mean()) if len(price) else float("nan")


@_measure
def zone_price_growth(w: Window, zones: Sequence[str]) -> float:
    """Geometric yearly change of the land price of ``zones``."""
    return _growth(_weighted_price(w, zones).dropna())


@_measure
def zone_occupancy(w: Window, zones: Sequence[str]) -> float:
    """Mean over the window's years of occupied over developable land in ``zones``."""
    rows = _zone_rows(w, zones=zones).groupby("year")[["occupied_ha", "developable_ha"]].sum()
    share = rows["occupied_ha"] / rows["developable_ha"].replace(0, np.nan)
    return float(share.mean()) if len(share) else float("nan")


@_measure
def zone_jobs_per_ha(w: Window, zones: Sequence[str]) -> float:
    """Mean over the window's years of jobs per occupied ha in ``zones``."""
    rows = _zone_rows(w, zones=zones).groupby("year")[["jobs", "occupied_ha"]].sum()
    density = rows["jobs"] / rows["occupied_ha"].replace(0, np.nan)
    return float(density.mean()) if len(density) else float("nan")
