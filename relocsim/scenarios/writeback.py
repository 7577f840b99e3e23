"""Write override values into a scenario folder's files, in place.

The calibrator's estimates (``calibrated.toml`` of ``relocsim calibrate``) become the values of a
scenario folder: each dotted path is written into the file that holds it (``scenario.toml``
keys, or the cells of ``sectors.csv``, ``land.csv``, ``population.csv``, ``zones.csv``), keeping
every comment, every other cell and the row order. A TOML value's comment and a CSV row's
``source`` cell say that the value was calibrated and where its estimate and SE are (in a TOML
comment, the unit and meaning before it are kept and an earlier ``[calibrated ...]`` note is
replaced). Every path
must name an existing key or cell: nothing is added.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from relocsim.scenarios.files import TOML_FILE, _tables, read_text
from relocsim.scenarios.schema import ScenarioError


def read_overrides(calibrated: Path) -> dict[str, float]:
    """The ``[overrides]`` table of a ``calibrated.toml``."""
    table = tomllib.loads(read_text(calibrated)).get("overrides")
    if not isinstance(table, dict) or not table:
        raise ScenarioError(f"{calibrated}: no [overrides] table; expected relocsim calibrate's")
    return {str(path): float(value) for path, value in table.items()}


def write_overrides(folder: Path, overrides: Mapping[str, float], note: str) -> list[Path]:
    """Write ``overrides`` into the files of the scenario ``folder``; ``note`` goes into the
    comment of each TOML value and the ``source`` cell of each CSV row written.

    Returns:
        The files changed.
    """
    tables = _tables()
    by_file: dict[str, dict[str, float]] = {}
    for path, value in overrides.items():
        head = path.split(".", 1)[0]
        file = tables[head][0] if head in tables else TOML_FILE
        by_file.setdefault(file, {})[path] = value
    changed = []
    for file, values in by_file.items():
        target = folder / file
        if file == TOML_FILE:
            text = _write_toml(read_text(target), values, note, target)
        else:
            head = next(iter(values)).split(".", 1)[0]
            text = _write_csv(read_text(target), values, tables[head][2], note, target)
        target.write_text(text, encoding="utf-8")
        changed.append(target)
    return changed


def _number(value: float) -> str:
    """The shortest text that reads back as the same double: the written scenario then runs the
    very simulations the calibrator measured at its estimates (rounding a value in its sixth digit
    flips some firms' draws, and a finite-firm simulation's facts move with them)."""
    return repr(float(value))


def _write_toml(text: str, values: Mapping[str, float], note: str, file: Path) -> str:
    lines = text.splitlines(keepends=True)
    for path, value in values.items():
        section, _, key = path.rpartition(".")
        line = _toml_line(lines, section, key)
        if line is None:
            raise ScenarioError(f"{file}: no key '{key}' in [{section}] to write {path} into")
        indent = re.match(r"\s*", lines[line]).group(0)
        comment = lines[line].split("#", 1)[1].strip() if "#" in lines[line] else ""
        comment = re.sub(r"\s*\[calibrated[^\]]*\]", "", comment).strip()
        lines[line] = f"{indent}{key} = {_number(value)}  # {comment} [{note}]\n".replace(
            "#  [", "# ["
        )
    return "".join(lines)


def _toml_line(lines: list[str], section: str, key: str) -> int | None:
    current = ""
    for number, line in enumerate(lines):
        header = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if header:
            current = header.group(1).strip()
        elif current == section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _write_csv(
    text: str, values: Mapping[str, float], key: tuple[str, ...], note: str, file: Path
) -> str:
    lines = text.splitlines(keepends=True)
    data = [n for n, line in enumerate(lines) if line.strip() and not line.startswith("#")]
    header = next(csv.reader([lines[data[0]]]))
    rows = {n: next(csv.reader([lines[n]])) for n in data[1:]}
    written = set()
    for path, value in values.items():
        parts = path.split(".")[1:]
        keys, column = parts[: len(key)], parts[len(key)]
        if column not in header:
            raise ScenarioError(f"{file}: no column '{column}' to write {path} into")
        found = [n for n, row in rows.items() if [row[header.index(k)] for k in key] == keys]
        if not found:
            raise ScenarioError(f"{file}: no row {'/'.join(keys)} to write {path} into")
        row = rows[found[0]]
        row[header.index(column)] = _number(value)
        if "source" in header:
            source = header.index("source")
            row[source] = _with_note(row[source], column, note)
        written.add(found[0])
    for n in written:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(rows[n])
        lines[n] = out.getvalue()
    return "".join(lines)


def _with_note(source: str, column: str, note: str) -> str:
    """A source cell with ``column``'s earlier calibration notes replaced by ``note`` (a cell
    written by every calibration would otherwise pile up one note per run)."""
    kept = [part for part in source.split("; ") if not part.startswith(f"{column}: calibrated")]
    return "; ".join([*kept, f"{column}: {note}"])
