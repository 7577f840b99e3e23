"""Scenario files: the default loads, bad values are named, every number has unit and source."""

from __future__ import annotations

import copy
import csv
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from relocsim import ScenarioError, apply_overrides, load_scenario
from relocsim.scenarios import PORTABILITY_MODES, Scenario, synthetic, validate
from relocsim.scenarios.validation import walk

DEFAULT = Path(str(resources.files("relocsim") / "scenarios" / "brussels-metro"))


@pytest.fixture()
def scenario_copy(tmp_path: Path) -> Path:
    target = tmp_path / "scenario"
    shutil.copytree(DEFAULT, target)
    return target


def test_default_has_the_three_regions_and_six_sectors(default_scenario):
    assert list(default_scenario.regions) == ["Brussels", "Flanders", "Wallonia"]
    assert set(default_scenario.sectors) == {
        "heavy_industry",
        "material_production",
        "immaterial_production",
        "high_tech",
        "green_circular",
        "logistics",
    }
    for site in (
        "bxl_audi_vorst",
        "bxl_schaerbeek_formation",
        "bxl_tir",
        "bxl_solvay_noh",
        "bxl_canal_port",
    ):
        assert default_scenario.zones[site].region == "Brussels"


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bad_toml_value_names_file_field_value_and_expectation(scenario_copy):
    _replace(scenario_copy / "scenario.toml", "years = 30", 'years = "thirty"')
    with pytest.raises(ScenarioError) as err:
        load_scenario(scenario_copy)
    message = str(err.value)
    assert "scenario.toml" in message and "'years'" in message and "thirty" in message
    assert "integer" in message


def test_unknown_toml_field_is_rejected_with_the_known_ones(scenario_copy):
    _replace(scenario_copy / "scenario.toml", "[behaviour]", "[behaviour]\nb_strss = 1.0")
    with pytest.raises(ScenarioError, match=r"behaviour\.b_strss.*unknown field.*mean 'b_stress'"):
        load_scenario(scenario_copy)


def test_bad_csv_value_names_the_file_and_the_zone(scenario_copy):
    _replace(scenario_copy / "zones.csv", "bxl_tir,Brussels", "bxl_tir,Brusels")
    with pytest.raises(ScenarioError) as err:
        load_scenario(scenario_copy)
    assert "zones.csv" in str(err.value) and "bxl_tir" in str(err.value)
    assert "Brusels" in str(err.value) and "Brussels" in str(err.value)


def test_negative_price_is_rejected(scenario_copy):
    text = (scenario_copy / "zones.csv").read_text().replace(",300,0.7,0.6,1.0", ",-5,0.7,0.6,1.0")
    (scenario_copy / "zones.csv").write_text(text)
    with pytest.raises(ScenarioError, match=r"price_eur_m2.*-5"):
        load_scenario(scenario_copy)


def test_missing_table_is_named(scenario_copy):
    (scenario_copy / "land.csv").unlink()
    with pytest.raises(ScenarioError, match=r"land\.csv: file not found"):
        load_scenario(scenario_copy)


def test_overrides_by_dotted_path(default_scenario):
    changed = apply_overrides(
        default_scenario,
        {
            "policies.aid_portability.mode": "compensation",
            "zones.bxl_audi_vorst.open_year": "2030",
            "sectors.logistics.b_land": 2.5,
            "land.bxl_canal_port.ghta.vacant_ha": "12",
            "regions.Brussels.aid.commitment_years": 7,
        },
    )
    assert changed.policies.aid_portability.mode == "compensation"
    assert changed.zones["bxl_audi_vorst"].open_year == 2030
    assert changed.sectors["logistics"].b_land == 2.5
    assert changed.land["bxl_canal_port"]["ghta"].vacant_ha == 12.0
    assert changed.regions["Brussels"].aid.commitment_years == 7
    assert default_scenario.policies.aid_portability.mode == "clawback"


@pytest.mark.parametrize(
    ("path", "value", "pattern"),
    [
        ("policies.aid_portability.mode", "sometimes", "one of none, clawback, compensation"),
        ("policies.aid_portability.repayment_share", "1.5", r"in \[0, 1\]"),
        ("zones.nowhere.open_year", "2030", "unknown key 'nowhere'"),
        ("sectors.logistics.b_lnd", "1", "unknown field 'b_lnd'"),
        ("zones.bxl_tir.open_year", "soon", "not an integer"),
        ("zones", "1", "names a table"),
    ],
)
def test_bad_overrides_name_the_path(default_scenario, path, value, pattern):
    with pytest.raises(ScenarioError, match=pattern) as err:
        apply_overrides(default_scenario, {path: value})
    assert path.split(".")[0] in str(err.value)


def _rows(name: str) -> list[dict[str, str]]:
    with (DEFAULT / name).open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


@pytest.mark.parametrize("table", ["zones.csv", "land.csv", "sectors.csv", "population.csv"])
def test_every_row_has_a_source_and_every_column_a_unit(table):
    documented = {(r["table"], r["column"]) for r in _rows("columns.csv")}
    rows = _rows(table)
    name = table.removesuffix(".csv")
    for row in rows:
        assert row["source"].strip(), f"{table}: a row without source: {row}"
    numeric = [
        c
        for c, v in rows[0].items()
        if c != "source" and re.fullmatch(r"-?[0-9.]+", v or "") and c not in ("firms", "jobs")
    ]
    for column in numeric:
        assert (name, column) in documented, f"{table}: column {column} has no unit"


def test_every_number_in_the_toml_has_a_comment():
    for number, line in enumerate((DEFAULT / "scenario.toml").read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "[")) or "=" not in stripped:
            continue
        key, _, value = stripped.partition("=")
        value = value.split("#")[0].strip()
        if re.fullmatch(r"-?[0-9._]+", value):
            assert "#" in line, f"scenario.toml line {number} has no unit/source: {line}"


def test_synthetic_scenario_has_the_requested_size():
    scenario = synthetic(n_firms=3000, n_zones=40, n_regions=4, seed=1)
    assert len(scenario.zones) == 40 and len(scenario.regions) == 4
    assert abs(sum(c.firms for c in scenario.population) - 3000) < 30
    assert load_scenario("synthetic:n_firms=600,n_zones=12,n_regions=2").name.startswith(
        "synthetic"
    )
    with pytest.raises(ScenarioError, match="n_zone"):
        load_scenario("synthetic:n_zone=3")


# --------------------------------------------------------------------------------------------
# Declarative rules: every value is checked before any arithmetic


def test_every_field_of_the_schema_has_a_rule(default_scenario):
    paths = [path for path, _, _, fld in walk(default_scenario) if "rule" not in fld.metadata]
    assert paths == []


@pytest.mark.parametrize(
    ("file", "old", "new", "path", "expected"),
    [
        (
            "scenario.toml",
            "commitment_years = 5             # years; EU CPR 2021/1060 art. 65\n",
            "commitment_years = 1e300\n",
            "regions.Wallonia.aid.commitment_years",
            r"\[1, 100\]",
        ),
        ("scenario.toml", "jobs = 3000", "jobs = 1e308", "plants[0].jobs", r"\[1, 1e6\]"),
        ("scenario.toml", "detour_factor = 1.3", "detour_factor = 0", "detour_factor", r"\[1, 5\]"),
        (
            "scenario.toml",
            "mixed_price_premium = 1.5",
            "mixed_price_premium = -1",
            "land_market.mixed_price_premium",
            r"\[0.1, 10\]",
        ),
        (
            "scenario.toml",
            'language = "nl"',
            'language = "xx"',
            "regions.Flanders.language",
            "one of nl, fr, de, both",
        ),
        (
            "scenario.toml",
            "start_year = 2025",
            "start_year = " + "9" * 400,
            "start_year",
            r"\[1900, 2200\]",
        ),
        (
            "sectors.csv",
            "gsi;ghta;park,true,1.0,0.0370,3.0",
            "gsi;ghta;park,true,1.0,0.0370,1e308",
            "sectors.heavy_industry.b_claw",
            r"\[0, 100\]",
        ),
        (
            "zones.csv",
            "1.0,1.0,-1.1,0,subdivided",
            "1.0,1.0,-1.1,1e308,subdivided",
            "zones.bxl_canal_port.open_year",
            "0 \\(always open\\) or a year",
        ),
        (
            "zones.csv",
            "1.0,1.0,-1.1,0,subdivided",
            "1.0,1.0,-1.1,-5,subdivided",
            "zones.bxl_canal_port.open_year",
            "or a year in",
        ),
        (
            "land.csv",
            "bxl_canal_port,ghta,8,0.10,0,",
            "bxl_canal_port,ghta,8,0.10,1e308,",
            "land.bxl_canal_port.ghta.new_ha_per_year",
            r"\[0, 10000\]",
        ),
        (
            "population.csv",
            "Brussels,heavy_industry,15,1200,1.3",
            "Brussels,heavy_industry,15,1200,-1",
            "population[0].size_sigma",
            r"\[0, 5\]",
        ),
    ],
)
def test_absurd_numbers_are_errors_naming_file_path_value_and_bounds(
    scenario_copy, file, old, new, path, expected
):
    _replace(scenario_copy / file, old, new)
    with pytest.raises(ScenarioError, match=expected) as err:
        load_scenario(scenario_copy)
    message = str(err.value)
    assert str(scenario_copy / file) in message and f"field '{path}'" in message
    assert "value " in message


def test_a_python_built_scenario_is_checked_by_the_same_walker(default_scenario):
    scenario = copy.deepcopy(default_scenario)
    scenario.regions["Brussels"].aid.take_up = 1.5
    with pytest.raises(ScenarioError, match=r"field 'regions\.Brussels\.aid\.take_up'.*1\.5"):
        validate(scenario)


def test_choices_come_from_the_schema():
    from relocsim.dashboard.state import LEVERS

    aid_mode = next(lever for lever in LEVERS if lever.key == "aid_mode")
    assert aid_mode.options == PORTABILITY_MODES


# --------------------------------------------------------------------------------------------
# No silent defaults, no silent data loss


def test_a_typo_in_a_region_section_is_an_error_with_a_suggestion(scenario_copy):
    _replace(scenario_copy / "scenario.toml", "[regions.Brussels.aid]", "[regions.Brusels.aid]")
    with pytest.raises(ScenarioError, match=r"\[regions\.Brusels\].*did you mean 'Brussels'"):
        load_scenario(scenario_copy)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_a_truncated_toml_is_an_error_naming_what_is_missing(scenario_copy, cut):
    path = scenario_copy / "scenario.toml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: int(len(lines) * cut)]))
    with pytest.raises(ScenarioError, match="lacks .*sets every field"):
        load_scenario(scenario_copy)


def _without_sections(text: str, prefix: str) -> str:
    """The TOML text without its sections whose header starts with ``prefix``."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("["):
            skipping = line.lstrip("[").startswith(prefix)
        if not skipping:
            kept.append(line)
    return "".join(kept)


@pytest.mark.parametrize(
    ("section", "value", "pattern"),
    [
        ("plants", "5", r"'plants' is 5; expected an array of tables \[\[plants\]\]"),
        ("regions", "3", r"'regions' is 3; expected tables \[regions\.NAME\]"),
    ],
)
def test_toml_structure_errors_are_clear(scenario_copy, section, value, pattern):
    path = scenario_copy / "scenario.toml"
    path.write_text(f"{section} = {value}\n" + _without_sections(path.read_text(), section))
    with pytest.raises(ScenarioError, match=pattern):
        load_scenario(scenario_copy)


def test_a_region_that_is_not_a_table_is_an_error(scenario_copy):
    path = scenario_copy / "scenario.toml"
    text = path.read_text()
    head, _, rest = text.partition("[regions.Brussels]\n")
    _, _, rest = rest.partition("[regions.Flanders]\n")
    path.write_text(head + "[regions]\nBrussels = 1\n\n[regions.Flanders]\n" + rest)
    with pytest.raises(ScenarioError, match=r"'regions\.Brussels' is 1; expected a table"):
        load_scenario(scenario_copy)


def test_missing_firms_column_and_header_only_population_are_errors(scenario_copy):
    path = scenario_copy / "population.csv"
    rows = [line.split(",") for line in path.read_text().splitlines() if not line.startswith("#")]
    header = rows[0]
    cut = header.index("firms")
    path.write_text("\n".join(",".join(r[:cut] + r[cut + 1 :]) for r in rows) + "\n")
    with pytest.raises(ScenarioError, match="population.csv: missing column.*firms"):
        load_scenario(scenario_copy)
    path.write_text(",".join(header) + "\n")
    with pytest.raises(ScenarioError, match="population.csv: no data rows"):
        load_scenario(scenario_copy)


def test_an_emptied_cell_is_an_error_naming_file_line_and_column(scenario_copy):
    _replace(scenario_copy / "zones.csv", "bxl_tir,Brussels", "bxl_tir,")
    with pytest.raises(ScenarioError, match=r"zones\.csv: line \d+: column 'region' is empty"):
        load_scenario(scenario_copy)


@pytest.mark.parametrize(
    ("file", "prefix"),
    [
        ("zones.csv", "bxl_canal_port,"),
        ("population.csv", "Brussels,heavy_industry,"),
        ("land.csv", "bxl_canal_port,ghta,"),
    ],
)
def test_a_duplicated_row_is_an_error_naming_both_lines(scenario_copy, file, prefix):
    path = scenario_copy / file
    row = next(line for line in path.read_text().splitlines() if line.startswith(prefix))
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(ScenarioError, match=rf"{file}: line \d+: duplicate row .*first on line"):
        load_scenario(scenario_copy)


@pytest.mark.parametrize("file", ["scenario.toml", "zones.csv", "columns.csv"])
def test_non_utf8_bytes_are_an_error_naming_the_byte_offset(scenario_copy, file):
    path = scenario_copy / file
    path.write_bytes(b"# caf\xe9\n" + path.read_bytes())
    with pytest.raises(ScenarioError, match=rf"{file}: byte 5 \(0xe9\) is not UTF-8"):
        load_scenario(scenario_copy)


@pytest.mark.parametrize("file", ["scenario.toml", "zones.csv"])
def test_a_directory_in_place_of_a_file_is_an_error(scenario_copy, file):
    (scenario_copy / file).unlink()
    (scenario_copy / file).mkdir()
    with pytest.raises(ScenarioError, match=rf"{file}: is a directory"):
        load_scenario(scenario_copy)


def test_only_synthetic_with_a_colon_is_a_synthetic_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError, match="no such file or folder"):
        load_scenario("synthetic-v2")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("synthetic:seed=-1", r"'seed': value -1 .*\[0, 1e18\]"),
        ("synthetic:n_firms=inf", "not an integer"),
        ("synthetic:n_firms=1e12", r"'n_firms': value 1000000000000 .*\[1, 1e7\]"),
        ("synthetic:n_zones=2,n_regions=3", "a zone per region"),
    ],
)
def test_bad_synthetic_specs_are_errors(spec, pattern):
    with pytest.raises(ScenarioError, match=pattern):
        load_scenario(spec)


def test_columns_csv_units_are_checked_against_the_schema(scenario_copy):
    _replace(
        scenario_copy / "columns.csv", "zones,price_eur_m2,EUR/m2", "zones,price_eur_m2,USD/m2"
    )
    with pytest.raises(ScenarioError, match="unit 'USD/m2'.*expected the unit 'EUR/m2'"):
        load_scenario(scenario_copy)


def test_an_undocumented_numeric_column_is_an_error(scenario_copy):
    path = scenario_copy / "columns.csv"
    path.write_text("".join(
        line for line in path.read_text().splitlines(keepends=True)
        if not line.startswith("zones,amenity,")
    ))  # fmt: skip
    with pytest.raises(ScenarioError, match="zones.amenity is not documented"):
        load_scenario(scenario_copy)


def test_the_default_scenario_is_loaded_without_defaults(default_scenario):
    fresh = Scenario()
    assert default_scenario.behaviour != fresh.behaviour
    assert default_scenario.travel_speed_kmh == 55.0 != fresh.travel_speed_kmh


RESTRICTED_AFTER_CALIBRATION = {"land_market.shortfall_price_elasticity": 0.0}
"""Values set after a calibration that estimated them, each comment in the files says why (the
session-5 estimate of the price response to rationing cannot be told from zero)."""


def test_the_default_cites_calibrations_that_hold_its_values():
    """Every calibration the default's files cite for a value is in the repository, and each
    set-mode estimate in them is the value in the files (where several cited calibrations
    estimated a parameter, one of them): a value moved by hand, or estimates moved away from
    where the files point, fails here."""
    import pandas as pd

    from relocsim.calibrate import _value_at, expand_path

    project = Path(__file__).resolve().parents[1]
    folder = project / "relocsim" / "scenarios" / "brussels-metro"
    text = "\n".join(path.read_text() for path in sorted(folder.iterdir()))
    cited = sorted(set(re.findall(r"calibrations/[\w/-]+?/estimates\.csv", text)))
    assert cited
    scenario = load_scenario("brussels-metro")
    estimates: dict[str, list[float]] = {}
    for path in cited:
        assert (project / path).is_file(), f"{path} is cited by the default's files"
        table = pd.read_csv(project / path)
        for row in table[table["mode"] == "set"].itertuples():
            for pattern in row.paths.split(", "):
                for field_path in expand_path(scenario, pattern):
                    estimates.setdefault(field_path, []).append(row.estimate)
    assert estimates
    for field_path, values in estimates.items():
        value = _value_at(scenario, field_path)
        if field_path in RESTRICTED_AFTER_CALIBRATION:
            assert value == RESTRICTED_AFTER_CALIBRATION[field_path]
            continue
        assert any(value == pytest.approx(v, rel=1e-12) for v in values), (field_path, values)
