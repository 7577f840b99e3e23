"""Scenario files: the default loads, bad values are named, every number has unit and source."""

from __future__ import annotations

import csv
import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from relocsim import ScenarioError, apply_overrides, load_scenario
from relocsim.scenarios import synthetic

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
    with pytest.raises(ScenarioError, match=r"behaviour\.b_strss.*unknown field.*b_stress"):
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
