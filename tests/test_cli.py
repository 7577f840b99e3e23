"""The command line: a run writes its tables and figure; bad arguments get clear errors."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--set", "policies.aid_portability.mode"], "expected PATH=VALUE"),
        (
            ["run", "--set", "policies.aid_portability.mode=sometimes"],
            "'policies.aid_portability.mode': value 'sometimes'",
        ),
        (["run", "--set", "zones.atlantis.open_year=2030"], "unknown key 'atlantis'"),
        (["run", "--scenario", "no-such-scenario"], "not a built-in scenario"),
        (["run", "--years", "-3"], "--years -3"),
        (["run", "--scenario", "synthetic:n_firm=5"], "n_firm=5"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relocsim: error:") and message in err


def test_unknown_option_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--yeras", "3"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_scenarios_lists_the_default(capsys):
    assert main(["scenarios"]) == 0
    assert "brussels-metro" in capsys.readouterr().out
