"""The simulated-moments calibrator: it recovers parameters the "facts" were simulated with, and
an interrupted calibration run again simulates nothing twice."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

try:
    import estimagic  # noqa: F401
except ImportError:
    pytest.skip("estimagic (pip install 'relocsim[calibration]')", allow_module_level=True)
except TypeError as exc:  # some optimagic 0.5 wheels do not import with numpy 2.x on Python 3.12
    pytest.skip(f"estimagic does not import here: {exc}", allow_module_level=True)

from relocsim import RelocationModel, load_scenario  # noqa: E402
from relocsim.calibrate import (  # noqa: E402
    Calibrator,
    Parameter,
    StudyError,
    calibrate,
    estimate_covariance,
    load_overrides,
    load_study,
    main,
    parameter_overrides,
    resolve_starts,
)
from relocsim.facts import load_facts, measure_facts  # noqa: E402
from relocsim.parameter_draws import draw_parameters  # noqa: E402

SCENARIO = "synthetic:n_firms=3000,n_zones=12"
YEARS = 6
TRUTH = {"birth_scale": 1.3, "move_scale": 0.9}
DATA_SEEDS = range(100, 108)
SEEDS = (0, 1)
PARAMETERS = """
[[parameter]]
name = "birth_scale"
paths = "sectors.*.birth_rate"
mode = "scale"
start = 1.0
lower = 0.5
upper = 2.0

[[parameter]]
name = "move_scale"
paths = "sectors.*.asc_move"
mode = "scale"
start = 1.0
lower = 0.7
upper = 1.3
"""


def _facts_file(folder: Path) -> Path:
    """Facts produced by the model itself at TRUTH (eight other seeds): the mean, and a range
    of +- 2 standard deviations of the difference between that mean and a two-seed simulated
    mean (so that the calibrator's SEs cover both)."""
    base = load_scenario(SCENARIO)
    overrides = {
        **{
            f"sectors.{s}.birth_rate": v.birth_rate * TRUTH["birth_scale"]
            for s, v in base.sectors.items()
        },
        **{
            f"sectors.{s}.asc_move": v.asc_move * TRUTH["move_scale"]
            for s, v in base.sectors.items()
        },
    }
    values = []
    for seed in DATA_SEEDS:
        results = RelocationModel(base, seed=seed, overrides=overrides, threads=1).run(YEARS)
        table = measure_facts(results, years=[(2025, 2024 + YEARS)]).set_index("fact")["value"]
        values.append(table[["birth_rate", "relocation_rate"]])
    values = np.array(values)
    mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1)
    half = 2 * sd * np.sqrt(1 / len(DATA_SEEDS) + 1 / len(SEEDS))
    text = ""
    for i, (fact, measure) in enumerate(
        [("birth_rate", "birth_rate"), ("relocation_rate", "move_rate")]
    ):
        text += (
            f'[[fact]]\nid = "{fact}"\nlabel = "{fact}"\nlow = {float(mean[i] - half[i])!r}\n'
            f'high = {float(mean[i] + half[i])!r}\nvalue = {float(mean[i])!r}\nunit = "1/yr"\n'
            f'definition = "synthetic"\nsource = "the model at known parameters"\n'
            f'role = "target"\nmeasure = "{measure}"\n\n'
        )
    path = folder / "facts.toml"
    path.write_text(text)
    return path


def _study(folder: Path, extra: str = "") -> Path:
    facts = _facts_file(folder)
    path = folder / "study.toml"
    path.write_text(
        f'[calibration]\nname = "synthetic"\nscenario = "{SCENARIO}"\nyears = {YEARS}\n'
        f'seeds = {list(SEEDS)}\nfacts_file = "{facts.name}"\n{extra}\n{PARAMETERS}'
    )
    return path


@pytest.fixture(scope="module")
def study_path(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("calibrate"))


def test_parameters_expand_over_every_sector():
    base = load_scenario(SCENARIO)
    study = load_study(_write(PARAMETERS_ONLY))
    overrides = parameter_overrides(base, study.parameters, [2.0, 1.0])
    assert set(overrides) == {f"sectors.{s}.birth_rate" for s in base.sectors} | {
        f"sectors.{s}.asc_move" for s in base.sectors
    }
    for name, sector in base.sectors.items():
        assert overrides[f"sectors.{name}.birth_rate"] == pytest.approx(2 * sector.birth_rate)


PARAMETERS_ONLY = f'[calibration]\nscenario = "{SCENARIO}"\nyears = 2\n{PARAMETERS}'


def _write(text: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "study.toml"
    path.write_text(text)
    return path


def test_a_bad_study_names_the_field():
    with pytest.raises(StudyError, match="start within them"):
        load_study(
            _write(PARAMETERS_ONLY.replace("start = 1.0\nlower = 0.5", "start = 9.0\nlower = 0.5"))
        )
    with pytest.raises(StudyError, match="'mode'"):
        load_study(_write(PARAMETERS_ONLY.replace('mode = "scale"', 'mode = "times"', 1)))
    with pytest.raises(StudyError, match="calibration.yeers"):
        load_study(_write(PARAMETERS_ONLY.replace("years", "yeers")))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("years = 2", "years = true", "'calibration.years': value True; expected >= 1"),
        ("years = 2", "years = 2\nseeds = true", "'calibration.seeds': value True"),
        ("years = 2", "years = 2\nseeds = [0, 1.5]", "'calibration.seeds'"),
        ("years = 2", "years = 2\nalgo_options = nan", "'calibration.algo_options': value nan"),
        ("years = 2", "years = 2\nfixed = [1]", "'calibration.fixed': value [1]; expected a table"),
        ("years = 2", "years = 2\nfacts = [1]", "'calibration.facts': value [1]"),
        (f'scenario = "{SCENARIO}"', "scenario = 3", "'calibration.scenario': value 3"),
        ("years = 2", 'years = 2\njacobian_step = "x"', "'calibration.jacobian_step': value 'x'"),
        (
            'paths = "sectors.*.birth_rate"',
            "paths = 3",
            "field 'paths': value 3; expected a dotted",
        ),
        ('paths = "sectors.*.birth_rate"', "paths = []", "field 'paths': value []"),
        ("lower = 0.5", 'lower = ""', "field 'lower': value ''; expected a finite number"),
        ("upper = 2.0", 'upper = ["x"]', "field 'upper': value ['x']; expected a finite number"),
        ("start = 1.0", "start = inf", "field 'start': value inf; expected a finite number"),
        ("start = 1.0", "start = false", "field 'start': value False"),
    ],
)
def test_a_study_of_the_wrong_type_names_the_field_and_value(old, new, message):
    """Found by fuzzing the study files: these ended in a TypeError or ValueError traceback."""
    with pytest.raises(StudyError, match=re.escape(message)):
        load_study(_write(PARAMETERS_ONLY.replace(old, new, 1)))


def test_a_bad_path_stops_the_command_naming_the_study_file(capsys):
    path = _write(PARAMETERS_ONLY.replace("sectors.*.asc_move", "behaviour.nope"))
    assert main([str(path), "--dry-run", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: parameter move_scale: path 'behaviour.nope'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (("nope",), "path 'nope' (from 'nope') is not a numeric field"),
        (("sectors.*.nope",), "is not a numeric field"),
        (("policies.aid_portability.mode",), "is not a numeric field"),
        (("policies.aid_portability",), "is not a numeric field"),
    ],
)
def test_a_parameter_path_that_is_no_number_of_the_scenario_is_named(paths, message):
    base = load_scenario(SCENARIO)
    with pytest.raises(StudyError, match=re.escape(message)):
        resolve_starts(base, (Parameter("p", paths, "set", None, 0.0, 1.0),))


def test_the_standard_error_counts_the_simulation_noise_of_the_seeds():
    """One parameter, moments m_i = j_i x theta: the sandwich's variance is
    sum(j^2 w^2 (r^2 + s^2 / S)) / sum(j^2 w)^2 with w = 1 / r^2 (r the range's SD, s the
    moment's SD over S seeds), so the seeds' noise widens the SE and more seeds narrow it back
    towards the ranges' alone."""
    jac = np.array([[1.0], [2.0], [0.5]])
    range_sd = np.array([0.1, 0.2, 0.05])
    seed_sd = np.array([0.2, 0.1, np.nan])  # the last moment's spread unknown: no noise added
    w = 1.0 / range_sd**2
    j = jac[:, 0]

    def expected(noise: np.ndarray) -> float:
        return float(np.sum(j**2 * w**2 * (range_sd**2 + noise)) / np.sum(j**2 * w) ** 2)

    three = estimate_covariance(jac, range_sd, seed_sd, 3)
    np.testing.assert_allclose(three, [[expected(np.array([0.04, 0.01, 0.0]) / 3)]], rtol=1e-12)
    ranges_only = estimate_covariance(jac, range_sd, None, 3)
    np.testing.assert_allclose(ranges_only, [[1.0 / np.sum(j**2 * w)]], rtol=1e-12)
    twelve = estimate_covariance(jac, range_sd, seed_sd, 12)
    assert ranges_only[0, 0] < twelve[0, 0] < three[0, 0]


@pytest.mark.slow
def test_calibrator_recovers_the_parameters_the_facts_were_made_with(study_path, tmp_path):
    calibrator = Calibrator(load_study(study_path), tmp_path / "out")
    result = calibrate(calibrator)
    estimates = result.estimates.set_index("parameter")
    for name, truth in TRUTH.items():
        estimate, se = estimates.loc[name, "estimate"], estimates.loc[name, "se"]
        assert 0 < se < 0.2, (name, se)
        assert abs(estimate - truth) < 2 * se, (name, estimate, se, truth)
    assert result.moments["in_range"].all()
    # a moment rises with the parameter that drives it
    assert result.jacobian.loc["birth_rate@2025-2030", "birth_scale"] > 0
    assert result.jacobian.loc["relocation_rate@2025-2030", "move_scale"] < 0  # asc_move < 0


@pytest.mark.slow
def test_an_interrupted_calibration_simulates_nothing_twice(study_path, tmp_path):
    study = load_study(study_path)
    study.algo_options = {"stopping_maxfun": 4}
    out = tmp_path / "out"

    class InjectedError(RuntimeError):
        pass

    def stop_after(k: int):
        def check(done: int) -> None:
            if done >= k:
                raise InjectedError

        return check

    with pytest.raises(InjectedError):
        calibrate(Calibrator(study, out, on_simulation=stop_after(5)))
    first = (out / "simulations" / "simulations.log").read_text().split()
    assert len(first) == 5
    again = Calibrator(study, out)
    result = calibrate(again)
    keys = (out / "simulations" / "simulations.log").read_text().split()
    assert len(keys) == len(set(keys)), "a simulation ran twice"
    assert again.reused >= 5 and again.simulated == len(keys) - 5
    # the same calibration uninterrupted, from an empty store, reaches the same estimate
    fresh = calibrate(Calibrator(study, tmp_path / "fresh"))
    np.testing.assert_allclose(fresh.estimates["estimate"], result.estimates["estimate"])


@pytest.mark.slow
def test_calibrate_command_writes_estimates_and_overrides(study_path, tmp_path):
    study = study_path.read_text().replace(
        "[calibration]", "[calibration]\nalgo_options = { stopping_maxfun = 4 }"
    )
    path = study_path.parent / "short.toml"
    path.write_text(study)
    out = tmp_path / "cal"
    out.mkdir()
    other_study = "other_parameter,criterion,in_range,moments\n0.5,10.0,3,4\n"
    (out / "evaluations.csv").write_text(other_study)
    assert main([str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    for name in ("estimates.csv", "moments.csv", "sensitivity.csv", "jacobian.csv", "summary.md"):
        assert (out / name).exists()
    # the covariance whose diagonal the SEs are, for --parameter-draws
    estimates = pd.read_csv(out / "estimates.csv").set_index("parameter")
    cov = pd.read_csv(out / "covariance.csv", index_col=0)
    assert list(cov.index) == list(cov.columns) == list(estimates.index)
    np.testing.assert_allclose(np.sqrt(np.diag(cov.to_numpy())), estimates["se"], rtol=1e-9)
    # another study's log in the same folder is set aside, not appended to under its header
    assert (out / "evaluations.1.csv").read_text() == other_study
    evaluations = pd.read_csv(out / "evaluations.csv")
    assert {"birth_scale", "move_scale", "criterion", "in_range"} <= set(evaluations.columns)
    assert len(evaluations) >= 3 and (evaluations["criterion"] >= 0).all()
    overrides = load_overrides(out / "calibrated.toml")
    assert any(k.endswith(".birth_rate") for k in overrides)
    RelocationModel(SCENARIO, overrides=overrides).run(1)
    # its scale parameters are drawn onto the fields calibrated.toml gives at the estimate
    drawn = draw_parameters(out, load_scenario(SCENARIO), 2, seed=0).overrides(1)
    assert set(drawn) <= set(overrides) and any(k.endswith(".birth_rate") for k in drawn)
    RelocationModel(SCENARIO, overrides=drawn).run(1)


def test_other_seeds_replace_the_study_s_own(capsys):
    example = Path(__file__).parents[1] / "experiments" / "calibrate_brussels.toml"
    assert main([str(example), "--seeds", "0-5", "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "study brussels-seeds0-5:" in text and "seeds [0, 1, 2, 3, 4, 5]" in text
    assert "6 simulations per evaluation" in text
    assert main([str(example), "--seeds", "0-2,7", "--dry-run", "--workers", "1"]) == 0
    assert "study brussels-seeds0-2,7:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(example), "--seeds", "2,2", "--dry-run"])
    assert "seed 2 given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(example), "--seeds", "0-2", "--seeds", "3-5", "--dry-run"])
    assert "--seeds given twice: keep one" in capsys.readouterr().err


def test_the_example_study_is_valid(capsys):
    example = Path(__file__).parents[1] / "experiments" / "calibrate_brussels.toml"
    assert main([str(example), "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    targets = sum(f.role == "target" for f in load_facts())
    assert f"{3 * targets} moments: {targets} facts x 3 windows" in text  # every target
    assert "parameter birth_scale: scale sectors.*.birth_rate (6 fields)" in text
    assert "parameter land_supply_flanders: scale land.vb_noordrand.*.new_ha_per_year" in text
    assert "parameter brussels_industry_drift: set population.Brussels.heavy_industry" in text


def test_the_move_choice_study_is_valid(capsys):
    """Session 13's second stage frees the own-region distance scale and the two levels of
    moving from its grid point, on every target."""
    example = Path(__file__).parents[1] / "experiments" / "calibrate_brussels_moves.toml"
    assert main([str(example), "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    targets = sum(f.role == "target" for f in load_facts())
    assert f"{3 * targets} moments: {targets} facts x 3 windows" in text
    assert "parameter own_region_distance_scale: set behaviour.own_region_distance_scale" in text
    assert "parameter asc_move_shift: shift sectors.*.asc_move (6 fields)" in text


def test_a_parameter_without_start_starts_from_the_scenario():
    """So that a study run again after --write-scenario restarts where the last one ended."""
    base = load_scenario("brussels-metro")
    drift = tuple(f"population.Brussels.{s}.growth_drift_shift" for s in ("high_tech", "logistics"))
    parameters = (
        Parameter("b_size", ("behaviour.b_size",), "set", None, -1.0, 1.0),
        Parameter("births", ("sectors.*.birth_rate",), "scale", None, 0.5, 2.0),
        Parameter("drift", ("sectors.*.growth_drift",), "shift", None, -0.1, 0.1),
        Parameter("brussels", drift, "set", None, -0.1, 0.1),
        Parameter("given", ("behaviour.b_age",), "set", 0.3, 0.0, 1.0),
    )
    starts = [p.start for p in resolve_starts(base, parameters)]
    cells = {(c.region, c.sector): c.growth_drift_shift for c in base.population}
    expected = cells[("Brussels", "logistics")]
    assert starts == [base.behaviour.b_size, 1.0, 0.0, expected, 0.3]
    mixed = Parameter("mixed", ("behaviour.b_size", "behaviour.b_age"), "set", None, -1, 1)
    with pytest.raises(StudyError, match="different values"):
        resolve_starts(base, (mixed,))
    outside = Parameter("outside", ("behaviour.b_size",), "set", None, 0.5, 1.0)
    with pytest.raises(StudyError, match="start within them"):
        resolve_starts(base, (outside,))


def test_scenario_notes_cite_estimates_inside_the_project_relative(tmp_path, monkeypatch, capsys):
    from relocsim.calibrate import _cited

    project, scratch = tmp_path / "project", tmp_path / "scratch"
    (project / "calibrations" / "brussels").mkdir(parents=True)
    scratch.mkdir()
    monkeypatch.chdir(project)
    inside = _cited(project / "calibrations" / "brussels" / "estimates.csv")
    assert inside == Path("calibrations/brussels/estimates.csv")
    assert capsys.readouterr().err == ""
    outside = _cited(scratch / "estimates.csv")
    assert outside == (scratch / "estimates.csv").resolve()
    assert "outside" in capsys.readouterr().err


def test_stored_simulations_are_found_wherever_the_scenario_lives(tmp_path, monkeypatch):
    """The store's keys hash the scenario's content, not its folder: a moved or re-cloned
    project (or a second checkout) reuses the simulations it finished; edited code does not."""
    import shutil

    source = Path(load_scenario("brussels-metro").source_dir)
    keys = []
    for where in ("a", "b"):
        folder = tmp_path / where / "brussels-metro"
        shutil.copytree(source, folder)
        path = tmp_path / where / "study.toml"
        path.write_text(
            f'[calibration]\nscenario = "{folder.as_posix()}"\nyears = 2\nseeds = [0]\n{PARAMETERS}'
        )
        calibrator = Calibrator(load_study(path), tmp_path / where / "out")
        keys.append(calibrator.key(np.array([1.0, 1.0]), 0))
    assert keys[0] == keys[1]
    import relocsim.fact_runs as fact_runs

    monkeypatch.setattr(fact_runs, "code_hash", lambda: "edited checkout")
    assert (
        Calibrator(load_study(path), tmp_path / "b" / "out").key(np.array([1.0, 1.0]), 0) != keys[0]
    )
