"""Calibrated values written into a scenario folder's files: the values land where the scenario
reads them, and nothing else changes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import relocsim
from relocsim import apply_overrides, load_scenario
from relocsim.scenarios import ScenarioError, writeback

DEFAULT = Path(relocsim.__file__).parent / "scenarios" / "brussels-metro"
VALUES = {
    "behaviour.b_size": 0.3 / 7,  # all 17 digits must survive: the scenario runs the same draws
    "sectors.logistics.birth_rate": 0.0987654,
    "population.Brussels.logistics.growth_drift_shift": 0.0111111,
    "land.wa_rest.park.new_ha_per_year": 4.56789,
}


def test_written_values_are_read_back_and_nothing_else_changes(tmp_path):
    folder = tmp_path / "scenario"
    shutil.copytree(DEFAULT, folder)
    changed = writeback.write_overrides(folder, VALUES, "calibrated (test)")
    assert {p.name for p in changed} == {
        "scenario.toml",
        "sectors.csv",
        "population.csv",
        "land.csv",
    }
    written = load_scenario(folder)
    expected = apply_overrides(load_scenario(DEFAULT), VALUES)
    for field in dataclasses.fields(written):
        if field.name not in ("name", "source_dir"):
            assert getattr(written, field.name) == getattr(expected, field.name), field.name
    line = next(
        line
        for line in (folder / "scenario.toml").read_text().splitlines()
        if line.startswith("b_size")
    )
    assert line.startswith("b_size = 0.04285714285714286  # utility per log(employees)")
    assert line.endswith("[calibrated (test)]")
    again_values = {"behaviour.b_size": 0.5, "sectors.logistics.birth_rate": 0.1}
    writeback.write_overrides(folder, again_values, "calibrated (again)")
    writeback.write_overrides(folder, again_values, "calibrated (again)")
    again = (folder / "scenario.toml").read_text()
    assert "b_size = 0.5  # utility per log(employees)" in again
    assert "calibrated (test)" not in again and again.count("[calibrated (again)]") == 1
    logistics = [
        line
        for line in (folder / "sectors.csv").read_text().splitlines()
        if line.startswith("logistics,")
    ]
    assert "birth_rate: calibrated (test)" not in logistics[0]
    assert logistics[0].count("birth_rate: calibrated (again)") == 1
    untouched = [line for line in (DEFAULT / "zones.csv").read_text().splitlines()]
    assert (folder / "zones.csv").read_text().splitlines() == untouched


@pytest.mark.parametrize(
    "path", ["behaviour.b_sise", "sectors.logistic.birth_rate", "land.wa_rest.park.new_ha"]
)
def test_a_path_that_names_no_key_or_cell_is_an_error(tmp_path, path):
    folder = tmp_path / "scenario"
    shutil.copytree(DEFAULT, folder)
    with pytest.raises(ScenarioError, match="to write"):
        writeback.write_overrides(folder, {path: 1.0}, "calibrated (test)")
