"""Scenario files: ``scenario.toml`` and the CSV tables read into the schema's dataclasses.

A scenario folder holds ``scenario.toml`` (run settings, regions, policies, behaviour, land
market, plants), ``sectors.csv``, ``zones.csv``, ``land.csv``, ``population.csv`` and
``columns.csv`` (the unit and meaning of every CSV column, checked against the units the schema
declares). Nothing is filled in silently: every TOML key and every CSV cell of the schema must be
present (only ``zones.site_investor_sector`` may be empty), a key or column the schema does not
know is an error with the closest known name, a duplicated row is an error naming both lines, and
a file that is not UTF-8 is an error naming the byte offset.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relocsim.scenarios.schema import Scenario, ScenarioError, did_you_mean, hints, show
from relocsim.scenarios.validation import validate

TOML_FILE = "scenario.toml"
COLUMNS_FILE = "columns.csv"
NOTE_COLUMNS = ("source", "note", "unit")
"""Columns a CSV may carry besides the schema's fields; ``source`` is required on every row."""


def read_text(path: Path) -> str:
    """Read a UTF-8 text file, or raise a ScenarioError naming the file and the problem."""
    if not path.exists():
        raise ScenarioError(f"{path}: file not found (every scenario needs it)")
    if not path.is_file():
        raise ScenarioError(f"{path}: is a directory or special file; expected a text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"{path}: byte {exc.start} (0x{data[exc.start]:02x}) is not UTF-8; save the file "
            "as UTF-8"
        ) from exc


# --------------------------------------------------------------------------------------------
# Coercion of raw TOML/CSV/command-line values into typed fields


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a raw TOML/CSV/CLI value to the field's type, or raise naming ``where``."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ScenarioError(f"{where}: value {show(value)} is not a boolean (true/false)")
    if hint is int:
        number = _integer(value)
        if number is None:
            raise ScenarioError(f"{where}: value {show(value)} is not an integer")
        return number
    if hint is float:
        number = _finite(value)
        if number is None:
            raise ScenarioError(f"{where}: value {show(value)} is not a finite number")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: value {show(value)} is not text")
        return value.strip()
    if typing.get_origin(hint) is tuple:
        if isinstance(value, str):
            items = value.split(";")
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            items = list(value)
        else:
            raise ScenarioError(f"{where}: value {show(value)} is not a list of names")
        return tuple(item.strip() for item in items if item.strip())
    raise ScenarioError(f"{where}: cannot set a value of type {hint}")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _finite(value)
    return int(number) if number is not None and number == int(number) else None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------------------------
# scenario.toml


def _toml_fields(cls: type) -> dict[str, dataclasses.Field]:
    """Fields a TOML table of ``cls`` sets (not the CSV tables, not internal bookkeeping)."""
    return {
        f.name: f
        for f in dataclasses.fields(cls)
        if not f.metadata.get("internal") and "file" not in f.metadata
    }


def build(cls: type, raw: Any, file: str, path: str, fixed: Mapping[str, Any] | None = None) -> Any:
    """Build dataclass ``cls`` from a TOML table: every field required, unknown keys rejected.

    Args:
        cls: the dataclass.
        raw: the parsed TOML table.
        file: the file, for messages.
        path: dotted path of the table (``regions.Brussels``), for messages.
        fixed: fields given by the table's key rather than inside it (a region's ``name``).
    """
    section = f"[{path}]" if path else "the top level"
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{file}: '{path}' is {show(raw)}; expected a table {section}")
    fixed = fixed or {}
    fields = _toml_fields(cls)
    settable = [name for name in fields if name not in fixed]
    for key in raw:
        if key not in settable:
            raise ScenarioError(
                f"{file}: field '{_join(path, key)}': unknown field in {section}; expected one "
                f"of: {', '.join(settable)}{did_you_mean(key, settable)}"
            )
    missing = [name for name in settable if name not in raw]
    if missing:
        raise ScenarioError(
            f"{file}: {section} lacks {', '.join(missing)}; a scenario file sets every field "
            "(is the file cut short?)"
        )
    types = hints(cls)
    values = {name: _build_value(types[name], raw[name], file, _join(path, name)) for name in raw}
    return cls(**values, **fixed)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build_value(hint: Any, raw: Any, file: str, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, raw, file, path)
    if origin is dict:
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{file}: '{path}' is {show(raw)}; expected tables [{path}.NAME]")
        item = typing.get_args(hint)[1]
        return {
            str(key): build(item, value, file, f"{path}.{key}", {"name": str(key)})
            for key, value in raw.items()
        }
    if origin is list:
        if not isinstance(raw, list):
            raise ScenarioError(
                f"{file}: '{path}' is {show(raw)}; expected an array of tables [[{path}]]"
            )
        item = typing.get_args(hint)[0]
        return [build(item, value, file, f"{path}[{i}]") for i, value in enumerate(raw)]
    return coerce(raw, hint, f"{file}: field '{path}'")


def parse_toml(path: Path) -> dict[str, Any]:
    """Parse ``scenario.toml`` into plain data (no checks of its content yet)."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer literal of thousands of digits
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from exc


# --------------------------------------------------------------------------------------------
# CSV tables


@dataclass
class CsvTable:
    """A CSV file as read: its header and its data rows with their line numbers.

    Attributes:
        path: the file.
        header: column names.
        rows: (line number, {column: cell}) of every non-blank data row.
    """

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


def read_csv(path: Path) -> CsvTable:
    """Read a CSV table; ``#`` lines are comments; every row must match the header."""
    lines = [
        (number, line)
        for number, line in enumerate(read_text(path).splitlines(keepends=True), start=1)
        if not line.startswith("#")
    ]
    reader = csv.reader(line for _, line in lines)
    try:
        records = [(lines[reader.line_num - 1][0], row) for row in reader]
    except csv.Error as exc:
        raise ScenarioError(f"{path}: line {lines[reader.line_num - 1][0]}: {exc}") from exc
    if not records:
        raise ScenarioError(f"{path}: empty; expected a header row and data rows")
    header = [name.strip() for name in records[0][1]]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise ScenarioError(f"{path}: column '{duplicated[0]}' appears twice in the header")
    rows = []
    for number, cells in records[1:]:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise ScenarioError(
                f"{path}: line {number}: {len(cells)} cells where the header has {len(header)}"
            )
        rows.append((number, dict(zip(header, cells, strict=True))))
    if not rows:
        raise ScenarioError(f"{path}: no data rows (only the header); expected at least one row")
    return CsvTable(path, header, rows)


def _check_header(table: CsvTable, columns: list[str], required: tuple[str, ...]) -> None:
    extra = NOTE_COLUMNS if "source" in required else ()
    for name in table.header:
        if name not in columns and name not in extra:
            known = [*columns, *extra]
            raise ScenarioError(
                f"{table.path}: unknown column '{name}'; expected the columns "
                f"{', '.join(known)}{did_you_mean(name, known)}"
            )
    missing = [name for name in (*columns, *required) if name not in table.header]
    if missing:
        raise ScenarioError(f"{table.path}: missing column(s) {', '.join(missing)}")


def build_rows(cls: type, table: CsvTable, name: str, key: tuple[str, ...]) -> list[Any]:
    """Build one ``cls`` per row: every cell required, ``source`` too; duplicated keys rejected."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_header(table, list(fields), ("source",))
    types = hints(cls)
    built, seen = [], {}
    for number, row in table.rows:
        where = f"{table.path}: line {number}"
        values = {}
        for column, fld in fields.items():
            text = row[column].strip()
            if not text and not getattr(fld.metadata.get("rule"), "may_be_empty", False):
                raise ScenarioError(
                    f"{where}: column '{column}' is empty; every cell of the table is required"
                )
            values[column] = coerce(text, types[column], f"{where}: field '{name}.{column}'")
        if not row["source"].strip():
            raise ScenarioError(f"{where}: column 'source' is empty; every row needs its source")
        identity = tuple(values[k] for k in key)
        if identity in seen:
            raise ScenarioError(
                f"{where}: duplicate row {', '.join(map(str, identity))} (first on line "
                f"{seen[identity]}); expected one row per {' x '.join(key)}"
            )
        seen[identity] = number
        built.append(cls(**values))
    return built


def check_documented(columns: CsvTable, tables: Mapping[str, type]) -> None:
    """Check ``columns.csv`` against the schema: known tables and columns, the schema's units.

    Every numeric column of every table must have a row, and where the schema declares a unit the
    documented unit must be the same.
    """
    _check_header(columns, ["table", "column", "unit", "meaning"], ())
    documented: dict[tuple[str, str], int] = {}
    for number, row in columns.rows:
        where = f"{columns.path}: line {number}"
        table, column, unit = row["table"].strip(), row["column"].strip(), row["unit"].strip()
        if table not in tables:
            raise ScenarioError(
                f"{where}: unknown table '{table}'; expected one of: {', '.join(tables)}"
                + did_you_mean(table, tables)
            )
        fields = {f.name: f for f in dataclasses.fields(tables[table])}
        if column not in fields:
            raise ScenarioError(
                f"{where}: table '{table}' has no column '{column}'; its columns: "
                f"{', '.join(fields)}{did_you_mean(column, fields)}"
            )
        if (table, column) in documented:
            raise ScenarioError(
                f"{where}: {table}.{column} documented twice (first on line "
                f"{documented[table, column]})"
            )
        expected = fields[column].metadata.get("unit", "")
        if not unit or not row["meaning"].strip() or (expected and unit != expected):
            raise ScenarioError(
                f"{where}: {table}.{column}: unit {unit!r} with meaning "
                f"{row['meaning'].strip()!r}; expected the unit '{expected or 'any'}' and a "
                "meaning"
            )
        documented[table, column] = number
    for table, cls in tables.items():
        for fld in dataclasses.fields(cls):
            numeric = hints(cls)[fld.name] in (int, float)
            if (numeric or fld.metadata.get("unit")) and (table, fld.name) not in documented:
                raise ScenarioError(
                    f"{columns.path}: column {table}.{fld.name} is not documented; expected a "
                    f"row '{table},{fld.name},{fld.metadata.get('unit', 'UNIT')},MEANING'"
                )


# --------------------------------------------------------------------------------------------
# A scenario folder


def scenario_files(location: str | Path) -> tuple[Path, Path]:
    """(``scenario.toml``, folder of the CSV tables) of a folder or a ``.toml`` path."""
    path = Path(location)
    if path.is_dir():
        return path / TOML_FILE, path
    return path, path.parent


def _tables() -> dict[str, tuple[str, type, tuple[str, ...]]]:
    """CSV tables of a scenario: {field name: (file, row class, key columns)}."""
    types = hints(Scenario)
    tables = {}
    for fld in dataclasses.fields(Scenario):
        if "file" in fld.metadata:
            row = typing.get_args(types[fld.name])[-1]
            while typing.get_origin(row) is dict:
                row = typing.get_args(row)[1]
            tables[fld.name] = (fld.metadata["file"], row, fld.metadata["key"])
    return tables


def _check_region_names(raw: Mapping[str, Any], zones: CsvTable, file: str) -> None:
    """Every ``[regions.X]`` must be a region of zones.csv: a typo must not make a new region."""
    regions = raw.get("regions")
    if not isinstance(regions, Mapping) or "region" not in zones.header:
        return
    used = sorted({row["region"].strip() for _, row in zones.rows} - {""})
    for name in regions:
        if name not in used:
            raise ScenarioError(
                f"{file}: section [regions.{name}]: unknown region (no zone of "
                f"{zones.path.name} is in it); the regions of the zones: {', '.join(used)}"
                + did_you_mean(name, used)
            )


def load_folder(toml_path: Path, folder: Path) -> Scenario:
    """Read, build and validate the scenario of ``toml_path`` and the CSV tables in ``folder``."""
    file = str(toml_path)
    raw = parse_toml(toml_path)
    tables = _tables()
    read = {name: read_csv(folder / spec[0]) for name, spec in tables.items()}
    check_documented(read_csv(folder / COLUMNS_FILE), {n: spec[1] for n, spec in tables.items()})
    _check_region_names(raw, read["zones"], file)
    scenario = build(Scenario, raw, file, "")
    rows = {name: build_rows(cls, read[name], name, key) for name, (_, cls, key) in tables.items()}
    scenario.sectors = {s.name: s for s in rows["sectors"]}
    scenario.zones = {z.name: z for z in rows["zones"]}
    scenario.land = {}
    for pool in rows["land"]:
        scenario.land.setdefault(pool.zone, {})[pool.land_use] = pool
    scenario.population = rows["population"]
    scenario.source_dir = str(folder)
    validate(scenario)
    return scenario
