"""The command line: a run writes its tables and figure; bad arguments get clear errors."""

from __future__ import annotations

import os
import signal

import pandas as pd
import pytest

from relocsim.cli import main


def test_run_writes_tables_figure_and_summary(tmp_path, capsys):
    code = main(
        [
            "run",
            "--years",
            "2",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--set",
            "policies.aid_portability.mode=compensation",
        ]
    )
    assert code == 0
    for name in ("yearly", "flows", "zones", "accounts", "events"):
        assert (tmp_path / f"{name}.parquet").exists()
    assert (tmp_path / "jobs_and_delocalisations.png").stat().st_size > 10_000
    yearly = pd.read_parquet(tmp_path / "yearly.parquet")
    assert sorted(yearly["year"].unique()) == [2025, 2026]
    out = capsys.readouterr().out
    assert "Brussels" in out and "delocalisations/yr" in out


def test_a_policy_set_on_the_command_line_acts_from_the_start_year_as_in_a_sweep(tmp_path):
    """``run --set`` of a policy lever gives the run a sweep gives (the model applies the
    override, and the burn-in runs under the standing rules), not a run whose burn-in already
    had the policy (7,102 jobs apart after two years, seed 0)."""
    from relocsim import load_scenario
    from relocsim.model import RelocationModel

    levers = {
        "zones.bxl_mixed_enterprise.preemption": True,
        "zones.bxl_canal_south.preemption": True,
    }
    argv = ["run", "--years", "2", "--out", str(tmp_path), "--no-progress"]
    for path, value in levers.items():
        argv += ["--set", f"{path}={str(value).lower()}"]
    assert main(argv) == 0
    swept = RelocationModel(load_scenario("brussels-metro"), seed=0, overrides=levers)
    expected = swept.run(2).yearly.reset_index(drop=True)
    got = pd.read_parquet(tmp_path / "yearly.parquet").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--set", "policies.aid_portability.mode"], "expected PATH=VALUE"),
        (
            ["run", "--set", "policies.aid_portability.mode=sometimes"],
            "'policies.aid_portability.mode': value 'sometimes'",
        ),
        (["run", "--set", "zones.atlantis.open_year=2030"], "unknown key 'atlantis'"),
        (
            ["run", "--set", "policies.speculation_tax=0.01"]
            + ["--set", "policies.speculation_tax=0"],
            "--set policies.speculation_tax given twice ('0.01' and '0'): keep one",
        ),
        (["run", "--scenario", "no-such-scenario"], "not a built-in scenario"),
        (["run", "--years", "-3"], "--years -3"),
        (["run", "--scenario", "synthetic:n_firm=5"], "n_firm=5"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relocsim: error:") and message in err


def test_runaway_births_stop_the_run_clearly_and_leave_no_folder(capsys, tmp_path):
    """An elasticity the schema allows but the model cannot run (births per zone beyond what
    the model tells apart) is found while the burn-in runs: one clear line naming the fields,
    and the --out folder made for the run is taken away again."""
    out = tmp_path / "run"
    argv = ["run", "--set", "behaviour.birth_vacancy_elasticity=5", "--years", "1"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relocsim: error:") and err.count("\n") == 1
    assert "behaviour.birth_vacancy_elasticity" in err
    assert not out.exists()


def test_unknown_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--yeras", "3"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_scenarios_lists_the_default(capsys):
    assert main(["scenarios"]) == 0
    assert "brussels-metro" in capsys.readouterr().out


def test_an_interrupted_run_keeps_its_years_and_resumes_identically(tmp_path, monkeypatch):
    from relocsim.model import RelocationModel

    argv = ["run", "--years", "4", "--seed", "2", "--no-progress", "--checkpoint-every", "0"]
    assert main([*argv, "--out", str(tmp_path / "whole")]) == 0
    whole = pd.read_parquet(tmp_path / "whole" / "yearly.parquet")

    real_land_market = RelocationModel._land_market

    def ctrl_c_in_year_two(model, flow):
        if model.year == model.scenario.start_year + 1:
            os.kill(os.getpid(), signal.SIGINT)
        real_land_market(model, flow)

    monkeypatch.setattr(RelocationModel, "_land_market", ctrl_c_in_year_two)
    out = tmp_path / "interrupted"
    assert main([*argv, "--out", str(out)]) == 130
    kept = pd.read_parquet(out / "yearly.parquet")
    assert sorted(kept["year"].unique()) == [2025, 2026]
    assert (out / "checkpoint.npz").exists()

    monkeypatch.setattr(RelocationModel, "_land_market", real_land_market)
    assert main([*argv, "--out", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out / "yearly.parquet"), whole)
    assert not (out / "checkpoint.npz").exists()


def test_a_checkpoint_of_another_run_is_refused(tmp_path, monkeypatch, capsys):
    from relocsim.model import RelocationModel

    real_land_market = RelocationModel._land_market

    def ctrl_c(model, flow):
        # in the run, not in the burn-in (which a cold cache runs while the model is built)
        if model.year >= model.scenario.start_year:
            os.kill(os.getpid(), signal.SIGINT)
        real_land_market(model, flow)

    monkeypatch.setattr(RelocationModel, "_land_market", ctrl_c)
    assert main(["run", "--years", "2", "--out", str(tmp_path), "--no-progress"]) == 130
    capsys.readouterr()
    assert (
        main(["run", "--years", "2", "--seed", "5", "--out", str(tmp_path), "--no-progress"]) == 2
    )
    assert "checkpoint is of another run" in capsys.readouterr().err


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler, which a process started as a shell's background job lacks
    (SIGINT ignored there, so Python installs none)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_the_model_is_built_stops_cleanly(
    tmp_path, monkeypatch, capsys, ctrl_c_raises
):
    """A Ctrl-C in the burn-in (while the model is built, before the yearly loop's handler):
    exit code 130 and one line, no traceback, nothing written; the same command then runs."""
    from relocsim import steady_start
    from relocsim.model import RelocationModel

    real_land_market = RelocationModel._land_market

    def ctrl_c_in_burn_in(model, flow):
        if model.year < model.scenario.start_year:
            os.kill(os.getpid(), signal.SIGINT)
        real_land_market(model, flow)

    monkeypatch.setattr(steady_start, "_burnt", type(steady_start._burnt)())
    monkeypatch.setattr(RelocationModel, "_land_market", ctrl_c_in_burn_in)
    argv = ["run", "--years", "1", "--seed", "11", "--out", str(tmp_path), "--no-progress"]
    try:
        code = main(argv)
    except KeyboardInterrupt:  # not handled: fail this test rather than stop pytest
        pytest.fail("a Ctrl-C while the model is built escaped relocsim's main")
    assert code == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err
    assert not (tmp_path / "yearly.parquet").exists()
    monkeypatch.setattr(RelocationModel, "_land_market", real_land_market)
    assert main(argv) == 0


TINY = "synthetic:n_firms=1500,n_zones=10,n_regions=2,seed=3"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("a file", "is a file, not a folder"),
        ("below a file", "is a file, so no folder can be made below it"),
        ("/proc/x", "cannot create the folder"),
        ("read-only", "cannot write in the folder"),
    ],
)
def test_an_unusable_out_folder_stops_before_any_simulation(
    where, message, tmp_path, monkeypatch, capsys
):
    from relocsim.model import RelocationModel

    if where == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes in read-only folders")
    out = {
        "a file": tmp_path / "file",
        "below a file": tmp_path / "file" / "sub" / "dir",
        "/proc/x": "/proc/x",
        "read-only": tmp_path / "ro",
    }[where]
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "ro").mkdir(mode=0o555)

    def no_simulation(*args, **kwargs):
        raise AssertionError("the model was built before the output folder was checked")

    monkeypatch.setattr(RelocationModel, "__init__", no_simulation)
    assert main(["run", "--scenario", TINY, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"relocsim: error: --out {out}") and message in err


def test_a_file_size_limit_keeps_what_it_can_and_says_where(tmp_path):
    import resource
    import subprocess
    import sys

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "relocsim.cli", "run", "--scenario", TINY, "--years", "6"]
        + ["--out", str(out), "--no-progress", "--checkpoint-every", "0"],
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("relocsim: error:") and "file size limit" in error
    assert f"written in {out}: " in error
    assert (out / "yearly.parquet").exists()  # small tables are kept
    assert not list(out.glob(".*tmp*")), "a temporary file was left behind"
    assert "checkpoint" in error
