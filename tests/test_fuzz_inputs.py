"""Fuzzing the inputs: mutated scenario files, folders and command lines never end in a traceback.

A seeded generator (deterministic: the same cases on every run) mutates a copy of the built-in
scenario: ``scenario.toml`` (deleted, renamed or retyped keys, absurd numbers, dropped or
duplicated section headers, cuts), every CSV (blanked cells, duplicated or deleted rows, dropped
or added columns, garbage, non-UTF-8 bytes, cuts), the folder (missing files, directories in their
place, empty files) and the arguments of ``relocsim run``. Each case must either load or raise a
:class:`ScenarioError` naming the file; a mutation that removes information the model needs (a
key, a column, a cell, a file) or duplicates a row must be an error, never a silent default; a
sample of the mutated scenarios that still load is simulated for a year. The command line must
answer a bad argument with exit code 2 and a one-line ``relocsim: error:``.
"""

from __future__ import annotations

import csv
import io
import random
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from relocsim import RelocationModel, ScenarioError, load_scenario
from relocsim.cli import main

DEFAULT = Path(str(resources.files("relocsim") / "scenarios" / "brussels-metro"))
FILES = ("scenario.toml", "sectors.csv", "zones.csv", "land.csv", "population.csv", "columns.csv")
SEED = 20261129
ABSURD = (
    "-1", "0", "-0.5", "2.5", "1e308", "-1e308", "1e300", "nan", "inf", "-inf", "1e999",
    "9" * 400, "0.0001", "3", "100", "-100",
)  # fmt: skip
GARBAGE = ("abc", "x@#!", "", " ", "true", "null", "1,5", "[1]", '"', "NaN", "é", "\t")
DIRECTORY = b"<a directory>"
MISSING = b"<missing>"
OPTIONAL_CELLS = {"site_investor_sector"}
"""The only CSV column whose cells may be empty."""


@dataclass
class Case:
    """One mutated scenario folder.

    Attributes:
        label: what was mutated, for failure messages.
        files: file name -> new content (or DIRECTORY / MISSING) for the files that changed.
        must_fail: the mutation removes or duplicates information, so loading must be an error.
    """

    label: str
    files: dict[str, bytes]
    must_fail: bool


ORIGINAL = {name: (DEFAULT / name).read_bytes() for name in FILES}


def _toml_case(rng: random.Random) -> Case:
    lines = ORIGINAL["scenario.toml"].decode().splitlines(keepends=True)
    keys = [i for i, line in enumerate(lines) if re.match(r"\s*[A-Za-z_]+\s*=", line)]
    headers = [i for i, line in enumerate(lines) if line.startswith("[")]
    kind = rng.choice(
        ["delete", "rename", "retype", "absurd", "absurd", "cut", "drop_header", "dup_header"]
    )
    must_fail = kind in ("delete", "rename", "drop_header", "dup_header")
    if kind == "delete":
        i = rng.choice(keys)
        lines[i] = ""
    elif kind == "rename":
        i = rng.choice(keys)
        lines[i] = re.sub(r"^(\s*[A-Za-z_]+)", lambda m: m.group(1) + rng.choice("xs_"), lines[i])
    elif kind in ("retype", "absurd"):
        i = rng.choice(keys)
        pool = ('"text"', "true", "[1, 2]", "{ a = 1 }", '""', "1.5", '"5"') + ABSURD
        value = rng.choice(pool if kind == "retype" else ABSURD)
        lines[i] = re.sub(r"=\s*[^#\n]*", f"= {value} ", lines[i], count=1)
    elif kind == "cut":
        text = "".join(lines)
        return Case(
            "scenario.toml cut", {"scenario.toml": text[: rng.randrange(len(text))].encode()}, False
        )
    elif kind == "drop_header":
        i = rng.choice(headers)
        lines[i] = ""
    else:
        i = rng.choice(headers)
        lines.insert(i, lines[i])
    label = f"scenario.toml {kind} line {i + 1}: {lines[i].strip()[:50]!r}"
    return Case(label, {"scenario.toml": "".join(lines).encode()}, must_fail)


def _split(name: str) -> tuple[list[str], list[list[str]]]:
    text = ORIGINAL[name].decode()
    comments = [line for line in text.splitlines(keepends=True) if line.startswith("#")]
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    return comments, list(csv.reader(io.StringIO(body)))


def _join(comments: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return ("".join(comments) + out.getvalue()).encode()


def _csv_case(rng: random.Random) -> Case:
    name = rng.choice(FILES[1:])
    comments, rows = _split(name)
    header, data = rows[0], rows[1:]
    kind = rng.choice(
        ["blank", "blank", "dup_row", "garbage", "absurd", "non_utf8", "drop_column",
         "add_column", "delete_row", "cut", "swap_columns"]
    )  # fmt: skip
    must_fail = kind in ("dup_row", "non_utf8", "drop_column", "add_column")
    r, c = rng.randrange(len(data)), rng.randrange(len(header))
    label = f"{name} {kind} row {r} column {header[c]}"
    if kind == "blank":
        must_fail = bool(data[r][c].strip()) and header[c] not in OPTIONAL_CELLS
        data[r][c] = ""
    elif kind == "dup_row":
        data.insert(rng.randrange(len(data) + 1), list(data[r]))
    elif kind in ("garbage", "absurd"):
        data[r][c] = rng.choice(GARBAGE if kind == "garbage" else ABSURD)
        label += f" = {data[r][c][:20]!r}"
    elif kind == "non_utf8":
        raw = bytearray(_join(comments, [header, *data]))
        raw.insert(rng.randrange(len(raw)), rng.choice([0xFF, 0xE9, 0x80, 0xC3]))
        return Case(label, {name: bytes(raw)}, True)
    elif kind == "drop_column":
        header, data = header[:c] + header[c + 1 :], [row[:c] + row[c + 1 :] for row in data]
    elif kind == "add_column":
        header = [*header, rng.choice(["extra", "prices", "b_lnd", "zone_name"])]
        data = [[*row, "1"] for row in data]
    elif kind == "delete_row":
        del data[r]
    elif kind == "cut":
        raw = _join(comments, [header, *data])
        return Case(label, {name: raw[: rng.randrange(len(raw))]}, False)
    else:
        d = rng.randrange(len(header))
        header[c], header[d] = header[d], header[c]
    return Case(label, {name: _join(comments, [header, *data])}, must_fail)


def _folder_case(rng: random.Random) -> Case:
    name = rng.choice(FILES)
    content = rng.choice([MISSING, DIRECTORY, b"", b"\n\n", b"# only a comment\n"])
    return Case(f"{name} replaced by {content[:20]!r}", {name: content}, True)


def file_cases(n: int) -> list[Case]:
    """``n`` mutated scenario folders, the same on every run."""
    rng = random.Random(SEED)
    makers = [_toml_case] * 8 + [_csv_case] * 10 + [_folder_case]
    return [rng.choice(makers)(rng) for _ in range(n)]


def _write(case: Case, folder: Path) -> None:
    shutil.copytree(DEFAULT, folder)
    for name, content in case.files.items():
        path = folder / name
        path.unlink()
        if content == DIRECTORY:
            path.mkdir()
        elif content != MISSING:
            path.write_bytes(content)


N_FILE_CASES = 900
N_RUNS = 12
"""Mutated scenarios that still load and are simulated for one year (a fixed sample)."""


def test_mutated_scenarios_load_or_fail_clearly(tmp_path):
    loaded, problems, errors = [], [], 0
    for i, case in enumerate(file_cases(N_FILE_CASES)):
        folder = tmp_path / f"c{i}"
        _write(case, folder)
        try:
            scenario = load_scenario(folder)
        except ScenarioError as exc:
            errors += 1
            message = str(exc)
            if str(folder) not in message or "\n" in message:
                problems.append(f"{case.label}: unclear message {message!r}")
            continue
        except Exception as exc:  # noqa: BLE001 - any other exception is the failure we look for
            problems.append(f"{case.label}: {type(exc).__name__}: {exc}")
            continue
        if case.must_fail:
            problems.append(f"{case.label}: loaded although information was removed")
        else:
            loaded.append((case.label, scenario))
    assert not problems, "\n".join(problems[:20])
    assert errors > N_FILE_CASES // 2 and len(loaded) > N_RUNS  # the fuzzer exercises both
    for label, scenario in random.Random(SEED).sample(loaded, N_RUNS):
        try:
            model = RelocationModel(scenario, seed=0, threads=1)
            model.step()
        except ScenarioError:
            continue  # a clear error at set-up (e.g. a region left without land) is allowed
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{label}: loads but the run fails: {type(exc).__name__}: {exc}")
        else:
            assert set(model.results().yearly["year"]) == {scenario.start_year}
    assert not problems, "\n".join(problems)


SYNTHETIC = {"n_firms": "200", "n_zones": "4", "n_regions": "2", "seed": "0"}
CLI_BASE = {
    "--scenario": "synthetic:" + ",".join(f"{k}={v}" for k, v in SYNTHETIC.items()),
    "--years": "0",
    "--seed": "0",
    "--threads": "1",
}
SYNTHETIC_KEYS = ("n_firms", "n_zones", "n_regions", "seed", "n_firm", "zones")
SET_PATHS = (
    "policies.aid_portability.mode",
    "policies.monitoring",
    "behaviour.b_stress",
    "behaviour.max_employees",
    "land_market.mixed_price_premium",
    "regions.R0.aid.commitment_years",
    "regions.R0.language",
    "sectors.logistics.b_claw",
    "zones.z0000.open_year",
    "zones.z0000.site_option",
    "land.z0000.park.new_ha_per_year",
    "regions.R9.aid.take_up",
    "zones",
    "detour_factor",
    "start_year",
)


def cli_cases(n: int) -> list[list[str]]:
    """``n`` mutated ``relocsim run`` command lines, the same on every run."""
    rng = random.Random(SEED + 1)
    cases = []
    for _ in range(n):
        options = dict(CLI_BASE)
        extra: list[str] = []
        kind = rng.choice(["option", "option", "synthetic", "set", "set", "unknown", "missing"])
        if kind == "option":
            options[rng.choice(["--years", "--seed", "--threads"])] = rng.choice(
                [*ABSURD, *GARBAGE, "2", "-3", "99999999999999999999999"]
            )
        elif kind == "synthetic":
            spec = dict(SYNTHETIC)
            spec[rng.choice(SYNTHETIC_KEYS)] = rng.choice([*ABSURD, *GARBAGE, "10000001", "2"])
            options["--scenario"] = "synthetic:" + ",".join(f"{k}={v}" for k, v in spec.items())
        elif kind == "set":
            extra = ["--set", f"{rng.choice(SET_PATHS)}={rng.choice([*ABSURD, *GARBAGE])}"]
        elif kind == "unknown":
            extra = [rng.choice(["--yeras", "--seeds", "-x", "--set"])]
        else:
            options.pop(rng.choice(list(options)))
            extra = [rng.choice(list(CLI_BASE))]  # an option without its value
        argv = ["run", *[part for item in options.items() for part in item], *extra]
        cases.append(argv)
    return cases


N_CLI_CASES = 200


def test_mutated_command_lines_exit_2_with_one_line(tmp_path, capsys):
    problems = []
    for i, argv in enumerate(cli_cases(N_CLI_CASES)):
        full = [*argv, "--no-progress", "--out", str(tmp_path / f"o{i}")]
        try:
            code = main(full)
        except SystemExit as exc:
            code = exc.code
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{argv}: {type(exc).__name__}: {exc}")
            continue
        err = capsys.readouterr().err
        if code == 2:
            if not err.startswith("relocsim: error:") or err.count("\n") != 1:
                problems.append(f"{argv}: exit 2 with {err!r}")
        elif code != 0:
            problems.append(f"{argv}: exit code {code}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("count", [N_FILE_CASES + N_CLI_CASES])
def test_the_fuzzer_covers_at_least_1000_cases_and_is_deterministic(count):
    assert count >= 1000
    assert [c.label for c in file_cases(50)] == [c.label for c in file_cases(50)]
    assert cli_cases(20) == cli_cases(20)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "-1"], "--seed -1: expected an integer in [0, "),
        (["--threads", "-1"], "--threads -1: expected an integer in [1, 1024]"),
        (["--years", "5000"], "--years 5000: expected an integer in [0, 1000]"),
        (["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
        (["--scenario", "synthetic:seed=-1"], "'seed': value -1 is invalid"),
        (["--scenario", "synthetic:n_firms=inf"], "n_firms: value 'inf' is not an integer"),
        (["--scenario", "synthetic:n_firms=1e12"], "expected a number in [1, 1e7]"),
        (["--scenario", "synthetic-v2"], "no such file or folder"),
    ],
)
def test_named_bad_arguments_exit_2_with_one_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["run", *argv, "--no-progress", "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("relocsim: error:") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out").exists()
