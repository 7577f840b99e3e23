"""``relocsim compare``: one policy change against the baseline, paired by seed, as a sweep."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from relocsim.cli import main
from relocsim.experiments.compare import DEFAULT_OUTPUTS, compare_study, compare_study_text
from relocsim.experiments.power import paired_summary

POLICY = "policies.aid_portability.mode=none"


def test_the_study_holds_the_policy_against_the_baseline():
    text = compare_study_text(
        "brussels-metro",
        {"policies.aid_portability.mode": "none", "zones.x.name": 'a "quoted" \\ value'},
        {"policies.speculation_tax": "0.01"},
        years=7,
        seeds=4,
        seed=3,
    )
    study = compare_study(text)
    assert study.variants == {
        "baseline": {},
        "policy": {"policies.aid_portability.mode": "none", "zones.x.name": 'a "quoted" \\ value'},
    }
    assert study.overrides == {"policies.speculation_tax": "0.01"}
    assert (study.years, study.seeds) == (7, [3, 4, 5, 6])
    assert study.output_names == list(DEFAULT_OUTPUTS)
    [contrast] = study.contrasts
    assert (contrast.b, contrast.a) == ("policy", "baseline")
    assert tomllib.loads(text)["description"].startswith("policy (policies.aid_portability.mode")


def test_a_path_in_both_takes_the_policys_value_in_the_policy():
    from relocsim.experiments.design import plan_runs

    path = "policies.aid_portability.mode"
    study = compare_study(
        compare_study_text("brussels-metro", {path: "clawback"}, {path: "none"}, seeds=1)
    )
    modes = {run.variant: run.overrides[path] for run in plan_runs(study).runs}
    assert modes == {"baseline": "none", "policy": "clawback"}


def test_compare_runs_the_pairs_prints_intervals_and_reuses_the_baseline(tmp_path, capsys):
    root = tmp_path / "compare"
    out = root / POLICY
    argv = ["compare", "--years", "2", "--seeds", "3", "--workers", "1", "--no-progress"]
    argv += ["--out", str(root), "--outputs", "brussels_jobs", "brussels_delocalisations_total"]
    assert main([*argv, "--set", POLICY]) == 0
    printed = capsys.readouterr().out
    assert "6 runs (6 run now, 0 already done" in printed
    table = pd.read_parquet(out / "results.parquet")
    wide = table.pivot(index="seed", columns="variant", values="brussels_jobs")
    summary = paired_summary((wide["policy"] - wide["baseline"]).to_numpy())
    line = next(
        x
        for x in printed.splitlines()
        if x.startswith("policy_vs_baseline") and "brussels_jobs" in x
    )
    assert f"{summary['mean']:+,.4g} [{summary['ci_low']:,.4g}, {summary['ci_high']:,.4g}]" in line
    assert (out / "study.toml").is_file()
    assert (out / "analysis" / "contrasts.png").stat().st_size > 10_000
    contrasts = pd.read_csv(out / "analysis" / "contrasts.csv")
    assert contrasts.set_index("outcome").loc["brussels_jobs", "mean"] == pytest.approx(
        summary["mean"]
    )
    assert main(["analyze", str(out), "--no-plots"]) == 0
    assert "policy_vs_baseline" in capsys.readouterr().out
    # another policy in the same folder runs only its own side (the baselines are reused) and
    # gets a folder of its own: the first one's tables are kept as they were
    first = (out / "results.parquet").read_bytes()
    other = "policies.aid_portability.mode=compensation"
    assert main([*argv, "--set", other]) == 0
    assert "6 runs (3 run now, 3 already done" in capsys.readouterr().out
    assert (out / "results.parquet").read_bytes() == first
    second = pd.read_parquet(root / other / "results.parquet")
    assert set(second["seed"]) == set(table["seed"])
    assert sorted(p.name for p in root.iterdir()) == sorted(["runs", POLICY, other])
    # the folder of compares is not a sweep: analyze says which ones it holds
    assert main(["analyze", str(root)]) == 2
    assert f"it holds the sweeps {other}, {POLICY}" in capsys.readouterr().err


def test_each_change_is_named_by_what_it_compares(tmp_path):
    from relocsim.experiments.compare import MAX_FOLDER_NAME, compare_folder

    change = {"policies.aid_portability.mode": "none"}
    assert compare_folder(tmp_path, "brussels-metro", change).name == POLICY
    both = compare_folder(tmp_path, "brussels-metro", change, {"policies.speculation_tax": "0.01"})
    assert both.name == POLICY + "+with+policies.speculation_tax=0.01"
    two = {"policies.speculation_tax": "0.01", "policies.aid_portability.mode": "none"}
    assert compare_folder(tmp_path, "brussels-metro", two) == compare_folder(
        tmp_path, "brussels-metro", dict(reversed(two.items()))
    )
    spec = "synthetic:n_firms=500,n_zones=6"
    synthetic = compare_folder(tmp_path, spec, change)
    assert synthetic.name == "synthetic_n_firms=500,n_zones=6+" + POLICY
    odd = compare_folder(tmp_path, "brussels-metro", {"zones.x.name": "../a b/" + "c" * 300})
    assert odd.parent == tmp_path and "/" not in odd.name and not odd.name.startswith(".")
    assert len(odd.name) == MAX_FOLDER_NAME
    longer = compare_folder(tmp_path, "brussels-metro", {"zones.x.name": "../a b/" + "c" * 301})
    assert longer.name != odd.name  # cut names differ by their hash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "foo"], "--set 'foo': expected PATH=VALUE"),
        (["--set", POLICY, "--base-set", "x"], "--base-set 'x': expected PATH=VALUE"),
        (["--set", POLICY, "--base-set", POLICY], "given to both --set and --base-set with"),
        (["--set", POLICY, "--set", "policies.aid_portability.mode=clawback"], "given twice"),
        (["--set", "policies.aid_portability.mode=bogus"], "expected one of none, clawback"),
        (["--set", "no.such.path=1"], "'no' is not a field of the scenario"),
        (["--set", "policies.speculation_tax=1e9"], "expected a number in [0, 1]"),
        (["--set", POLICY, "--outputs", "nonsense"], "unknown outcome 'nonsense'"),
        (["--set", POLICY, "--scenario", "nowhere"], "scenario 'nowhere': not a built-in"),
    ],
)
def test_bad_input_exits_2_naming_what_is_wrong(tmp_path: Path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["compare", *args, "--out", str(out), "--dry-run"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_run_of_a_changed_scenario_points_to_compare(tmp_path, capsys):
    spec = "synthetic:n_firms=500,n_zones=6,n_regions=3,seed=1"
    argv = ["run", "--scenario", spec, "--years", "1", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "plain")]) == 0
    assert "relocsim compare" not in capsys.readouterr().out
    assert main([*argv, "--set", POLICY, "--out", str(tmp_path / "changed")]) == 0
    assert "relocsim compare --set" in capsys.readouterr().out


def test_compare_crosses_seeds_with_coefficient_draws(tmp_path, capsys):
    """The effect's interval then holds the estimates' uncertainty as well as the seeds'."""
    from test_parameter_draws import SCENARIO, write_estimates

    from relocsim.scenarios import load_scenario

    est = write_estimates(tmp_path / "est", load_scenario(SCENARIO))
    root = tmp_path / "out"
    argv = ["compare", "--scenario", SCENARIO, "--set", POLICY, "--years", "2", "--seeds", "2"]
    argv += ["--parameter-draws", "2", "--estimates", str(est), "--outputs", "metro_jobs"]
    assert main([*argv, "--workers", "1", "--no-progress", "--out", str(root)]) == 0
    [out] = [path for path in root.iterdir() if path.name != "runs"]
    assert "8 runs (8 run now" in capsys.readouterr().out
    contrasts = pd.read_csv(out / "analysis" / "contrasts.csv")
    assert contrasts["n"].tolist() == [4]  # paired by seed and draw
    assert (out / "analysis" / "uncertainty.csv").exists()
