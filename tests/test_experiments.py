"""Experiments: study validation, resume after a kill, backends agree, failures recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from relocsim.experiments import StudyError, load_study, parse_study, plan_runs, run_sweep
from relocsim.experiments.cli import main as cli_main
from relocsim.experiments.outcomes import BUILTIN, compute_outcome

STUDY = """
name = "small"
scenario = "brussels-metro"
years = 2
replications = 2
outputs = ["brussels_jobs", "brussels_delocalisations_total", "brussels_occupancy"]

[variants.none]
"policies.aid_portability.mode" = "none"

[variants.clawback]
"policies.aid_portability.mode" = "clawback"
"policies.aid_portability.repayment_share" = [0.5, 1.0]
"""

COMPARED = [
    "variant",
    "point",
    "replication",
    "seed",
    "status",
    "key",
    "brussels_jobs",
    "brussels_delocalisations_total",
    "brussels_occupancy",
]


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def study_with(extra: str) -> dict:
    import tomllib

    return tomllib.loads(STUDY + extra)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('\n[variants.bad]\n"policies.aid_portability.nope" = 1\n', "nope"),
        ('\n[variants.bad]\n"policies.aid_portability.repayment_share" = 1.5\n', "repayment_share"),
        (
            '\n[design]\ntype = "factorial"\n[design.parameters]\n"behaviour.b_age" = [0.1]\n',
            "unknown design type",
        ),
        (
            '\n[design]\ntype = "lhs"\n[design.parameters]\n"behaviour.b_age" = {min=0, max=1}\n',
            "design.samples",
        ),
        (
            '\n[design]\ntype = "grid"\n[design.parameters]\n"zones.nowhere.x" = [1]\n',
            "nowhere",
        ),
    ],
)
def test_bad_study_is_rejected_before_any_run(extra: str, message: str) -> None:
    with pytest.raises(StudyError, match=message) as info:
        plan_runs(parse_study(study_with(extra), "bad.toml"))
    assert "bad.toml" in str(info.value)


def test_missing_fields_and_unknown_outcome() -> None:
    with pytest.raises(StudyError, match="field 'scenario': missing"):
        parse_study({"outputs": ["brussels_jobs"]}, "x.toml")
    with pytest.raises(StudyError, match="field 'outputs': missing"):
        parse_study({"scenario": "brussels-metro"}, "x.toml")
    with pytest.raises(StudyError, match="unknown outcome 'jobs_on_mars'"):
        parse_study({"scenario": "brussels-metro", "outputs": ["jobs_on_mars"]}, "x.toml")
    with pytest.raises(StudyError, match="unknown field 'replicatoins'"):
        parse_study(
            {"scenario": "brussels-metro", "outputs": ["brussels_jobs"], "replicatoins": 3},
            "x.toml",
        )


def test_cli_bad_study_exits_2_naming_the_path(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = write(tmp_path, STUDY + '\n[variants.bad]\n"regions.Brussels.aid.take_up" = 7\n')
    assert cli_main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relocsim: error:") and "regions.Brussels.aid.take_up" in err
    assert not (tmp_path / "out").exists()
    assert cli_main(["sweep", str(tmp_path / "missing.toml")]) == 2


def test_designs_expand_deterministically() -> None:
    lhs = parse_study(
        study_with(
            '\n[design]\ntype = "lhs"\nsamples = 5\n[design.parameters]\n'
            '"behaviour.b_age" = {min = 0.1, max = 0.5}\n'
            '"regions.Brussels.aid.commitment_years" = {min = 3, max = 10, integer = true}\n'
        ),
        "lhs.toml",
    )
    plan = plan_runs(lhs)
    assert len(plan.runs) == 3 * 5 * 2  # variants x points x replications
    assert [r.key for r in plan.runs] == [r.key for r in plan_runs(lhs).runs]
    assert all(
        isinstance(r.params["regions.Brussels.aid.commitment_years"], int) for r in plan.runs
    )
    sobol = parse_study(
        {
            "scenario": "brussels-metro",
            "outputs": ["brussels_jobs"],
            "design": {
                "type": "sobol",
                "samples": 4,
                "parameters": {
                    "behaviour.b_age": {"min": 0, "max": 1},
                    "behaviour.b_size": {"min": 0, "max": 1},
                },
            },
        },
        "s.toml",
    )
    assert len(plan_runs(sobol).runs) == 4 * (2 + 2)
    # same seeds in every variant (common random numbers); replication r -> seed + r
    assert sorted({r.seed for r in plan.runs}) == [0, 1]


def test_outcome_metrics_on_small_tables() -> None:
    yearly = pd.DataFrame(
        {
            "year": [1, 1, 2, 2],
            "region": ["Brussels", "Flanders"] * 2,
            "sector": ["logistics"] * 4,
            "jobs": [10, 20, 30, 40],
            "delocalisations": [1, 5, 2, 5],
        }
    )
    zones = pd.DataFrame(
        {
            "year": [2, 2],
            "zone": ["a", "b"],
            "region": ["Brussels"] * 2,
            "occupied_ha": [1.0, 3.0],
            "developable_ha": [2.0, 6.0],
            "price_eur_m2": [100.0, 300.0],
        }
    )
    tables = {"yearly": yearly, "zones": zones}
    assert compute_outcome(tables, BUILTIN["brussels_jobs"]) == 30
    assert compute_outcome(tables, BUILTIN["brussels_delocalisations_total"]) == 3
    assert compute_outcome(tables, BUILTIN["brussels_delocalisations_per_year"]) == 1.5
    assert compute_outcome(tables, BUILTIN["brussels_occupancy"]) == 0.5
    assert compute_outcome(tables, BUILTIN["brussels_land_price"]) == 200


# ------------------------------------------------------------------ execution


def test_resume_after_kill_runs_everything_exactly_once(tmp_path: Path) -> None:
    path = write(tmp_path, STUDY.replace("replications = 2", "replications = 3"))
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "relocsim.cli",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
    ]
    process = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    runs = out / "runs"

    def written() -> set[str]:
        # not the writers' temporaries (".KEY.PID.tmp.parquet"), which pathlib's glob also matches
        return {p.name for p in runs.glob("*.parquet") if not p.name.startswith(".")}

    deadline = time.time() + 90
    while time.time() < deadline and len(written()) < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = written()
    total = len(plan_runs(load_study(path)).unique_keys)
    assert 2 <= len(finished) < total, "the kill must land mid-sweep"
    # a damaged result file (as if written by something else) is redone, not read
    damaged = sorted(finished)[0]
    (runs / damaged).write_bytes(b"PAR1 half")
    # and the temporary file of a writer killed mid-write (named as safeio names it) is removed
    (runs / f".{damaged}.{process.pid}.tmp.parquet").write_bytes(b"half-written")

    resumed = run_sweep(path, out, workers=2, progress=False)
    assert resumed.ran == total - len(finished) + 1
    assert resumed.skipped == len(finished) - 1 and resumed.pending == 0
    assert sorted(p.name for p in runs.iterdir()) == sorted(
        f"{k}.parquet" for k in resumed.table["key"].unique()
    )
    again = run_sweep(path, out, workers=2, progress=False)
    assert again.ran == 0

    reference = run_sweep(path, tmp_path / "straight", workers=1, progress=False)
    pd.testing.assert_frame_equal(resumed.table[COMPARED], reference.table[COMPARED])
    stored = pd.read_parquet(out / "results.parquet")
    assert {"policies.aid_portability.repayment_share", "variant", "seed", "status"} <= set(
        stored.columns
    )
    assert (out / "study.toml").read_text() == path.read_text()
    assert '"relocsim_version"' in (out / "provenance.json").read_text()

    from relocsim.experiments.analysis import analyze

    report = analyze(out)
    assert (out / "analysis" / "variants.csv").exists()
    assert (out / "analysis" / "variants.png").stat().st_size > 0
    assert set(report.variants["variant"]) == {"none", "clawback"}


def test_process_pool_and_dask_give_identical_tables(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    path = write(tmp_path, STUDY.replace("replications = 2", "replications = 1"))
    pool = run_sweep(path, tmp_path / "pool", workers=2, progress=False)
    dask = run_sweep(path, tmp_path / "dask", dask_local=2, progress=False)
    assert (pool.table["status"] == dask.table["status"]).all()
    pd.testing.assert_frame_equal(pool.table[COMPARED], dask.table[COMPARED])


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    # immaterial production confined to business parks, which Brussels lacks: the value is
    # valid, but the model cannot place the initial population and raises while setting up
    broken = '\n[variants.broken]\n"sectors.immaterial_production.land_uses" = "park"\n'
    path = write(tmp_path, STUDY + broken)
    result = run_sweep(path, tmp_path / "out", workers=1, progress=False)
    failed = result.table[result.table["status"] == "failed"]
    assert set(failed["variant"]) >= {"broken"}
    assert (result.table.loc[result.table["variant"] != "broken", "status"] == "ok").all()
    assert failed["error"].str.len().gt(0).all()
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert "Traceback" in failures["traceback"].iloc[0]
    assert "sectors.immaterial_production.land_uses" in failures.columns


def test_sobol_indices_of_a_known_function() -> None:
    from relocsim.experiments.analysis import sobol_indices
    from relocsim.experiments.design import design_points

    study = parse_study(
        {
            "scenario": "brussels-metro",
            "outputs": ["brussels_jobs"],
            "design": {
                "type": "sobol",
                "samples": 256,
                "parameters": {
                    "behaviour.b_age": {"min": 0, "max": 1},
                    "behaviour.b_size": {"min": 0, "max": 1},
                },
            },
        },
        "s.toml",
    )
    points = design_points(study)
    y = [4 * p["behaviour.b_age"] + 0.1 * p["behaviour.b_size"] for p in points]
    table = pd.DataFrame({"variant": "base", "point": range(len(points)), "brussels_jobs": y})
    indices = sobol_indices(study, table, ["brussels_jobs"]).set_index("parameter")
    assert indices.loc["behaviour.b_age", "ST"] > 0.9
    assert indices.loc["behaviour.b_size", "ST"] < 0.05
    assert np.isfinite(indices["S1_conf"]).all()


def test_mesa_batch_run_still_works() -> None:
    import inspect

    import mesa

    from relocsim import RelocationModel

    parameters = {"policies__aid_portability__mode": ["none", "clawback"]}
    seeds = {}
    if "rng" in inspect.signature(mesa.batch_run).parameters:
        seeds = {"rng": [0, 1]}  # Mesa >= 3.5 passes its rng values as the model's seed
    else:
        parameters["seed"] = [0, 1]  # Mesa 3.3
    rows = mesa.batch_run(
        RelocationModel,
        parameters=parameters,
        max_steps=2,
        number_processes=1,
        display_progress=False,
        **seeds,
    )
    final = {(r["seed"], r["policies__aid_portability__mode"]): r for r in rows if r["Step"] == 2}
    assert set(final) == {(s, m) for s in (0, 1) for m in ("none", "clawback")}
    assert final[(0, "none")]["jobs"] != final[(1, "none")]["jobs"]


def test_ema_workbench_adapter() -> None:
    ema = pytest.importorskip("ema_workbench")
    from relocsim.experiments.ema import parameter, relocsim_model

    model = relocsim_model(
        uncertainties=[parameter("behaviour.b_stress", 1.0, 3.0)],
        levers=[parameter("policies.aid_portability.mode", ["none", "clawback"])],
        outcomes=["brussels_jobs"],
        years=1,
        seeds=[0],
    )
    with ema.SequentialEvaluator(model) as evaluator:
        experiments, outcomes = ema.perform_experiments(
            model,
            scenarios=2,
            policies=1,
            evaluator=evaluator,
            uncertainty_sampling=ema.Samplers.LHS,
        )
    assert len(experiments) == 2 and np.isfinite(outcomes["brussels_jobs"]).all()


# ------------------------------------------------------------------ lock, workers, code hash

SLOW_TINY = """
name = "slow_tiny"
scenario = "synthetic:n_firms=20000,n_zones=20,n_regions=3,seed=1"
years = 12
replications = 4
outputs = ["brussels_jobs"]
"""


def _sweep_process(study: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "relocsim.cli", "sweep", str(study), "--out", str(out)]
        + ["--no-progress", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, seconds: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_sweep_on_the_same_folder_stops_naming_the_first(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    study = write(tmp_path, SLOW_TINY)
    out = tmp_path / "out"
    first = _sweep_process(study, out, "--workers", "1")
    try:
        lock = out / "sweep.lock"
        _wait_for(lambda: lock.exists() and lock.read_text().startswith(str(first.pid)))
        assert cli_main(["sweep", str(study), "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("relocsim: error:") and f"another sweep (pid {first.pid}" in err
        assert not list((out / "runs").glob("*.parquet")) or first.poll() is None
    finally:
        first.kill()
        first.wait()


def test_a_stale_lock_of_a_dead_sweep_is_taken_over(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    study = write(tmp_path, SLOW_TINY.replace("years = 12", "years = 1").replace("= 4", "= 1"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.lock").write_text(f"{dead.pid} somehost\n")
    result = run_sweep(study, out, workers=1, progress=False)
    assert result.pending == 0 and result.failed == 0
    assert f"lock left by pid {dead.pid}" in capsys.readouterr().err
    assert (out / "sweep.lock").read_text() == ""


def _children(pid: int) -> list:
    psutil = pytest.importorskip("psutil")

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize(
    "backend", [["--workers", "2"], ["--dask-local", "2"]], ids=["pool", "dask"]
)
def test_killing_the_sweep_leaves_no_worker_alive(tmp_path: Path, backend: list[str]) -> None:
    psutil = pytest.importorskip("psutil")

    if backend[0] == "--dask-local":
        pytest.importorskip("distributed")
    study = write(tmp_path, SLOW_TINY)
    sweep = _sweep_process(study, tmp_path / "out", *backend)
    try:
        _wait_for(lambda: len(_children(sweep.pid)) >= 2)
        time.sleep(2.0)  # the workers are set up and simulating
        workers = _children(sweep.pid)
    finally:
        sweep.kill()
        sweep.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"alive 10 s after the parent was killed: {alive}"
    assert len(gone) >= 2


def test_run_keys_change_with_the_installed_code(monkeypatch) -> None:  # noqa: ANN001
    from relocsim.experiments import design

    study = parse_study(study_with(""))
    before = plan_runs(study).unique_keys
    monkeypatch.setattr(design, "code_hash", lambda: "edited")
    after = plan_runs(study).unique_keys
    assert len(before) == len(after) and not set(before) & set(after)


# ------------------------------------------------------------------ power: paired contrasts

POWER_STUDY = """
name = "power_tiny"
scenario = "synthetic:n_firms=1500,n_zones=10,n_regions=2,seed=3"
years = 3
replications = 2
outputs = [
    { name = "jobs", table = "yearly", column = "jobs" },
    { name = "price", table = "zones", column = "price_eur_m2", stat = "mean" },
]

[variants.low]
"land_market.price_elasticity" = 0.1

[variants.high]
"land_market.price_elasticity" = 1.5

[variants.clawback]
"land_market.price_elasticity" = 0.1
"policies.aid_portability.mode" = "clawback"

[contrasts.elastic_prices]
b = "high"
a = "low"
outputs = ["price"]

[contrasts.clawback]
b = "clawback"
a = "low"
"""


def test_paired_summary_and_minimum_detectable_effect() -> None:
    from scipy import stats

    from relocsim.experiments.power import minimum_detectable_effect, paired_summary

    d = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    summary = paired_summary(d)
    test = stats.ttest_1samp(d[:4], 0.0)
    low, high = test.confidence_interval(0.95)
    assert summary["n"] == 4 and summary["mean"] == pytest.approx(2.5)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    assert summary["sd"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    # the exact power of a paired t-test (noncentral t) at the reported MDE is 80%
    for n in (4, 10, 30):
        mde = minimum_detectable_effect(2.0, n)
        df, nc = n - 1, mde / (2.0 / np.sqrt(n))
        crit = stats.t.ppf(0.975, df)
        power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
        assert power == pytest.approx(0.80, abs=0.02)
    assert np.isnan(minimum_detectable_effect(2.0, 1))


@pytest.mark.parametrize(
    ("differences", "verdict"),
    [
        ([1.0, 1.0], "the same difference in all 2 pairs: no spread to build an interval"),
        ([0.0, 0.0, 0.0], "no difference in any pair"),
        ([9.0, 10.0, 11.0], "detectable"),
        ([-1.0, 1.0, 2.0], "below the minimum detectable effect"),
        ([3.0], "1 pair(s), no interval"),
    ],
)
def test_an_effect_is_called_detectable_only_from_pairs_that_vary(differences, verdict) -> None:
    """Two pairs that both differ by one firm give a zero-width interval: not evidence."""
    from relocsim.experiments.power import describe, paired_summary

    row = {"contrast": "c", "b": "b", "a": "a", "group": "", "outcome": "y"}
    text = describe(pd.DataFrame([{**row, **paired_summary(np.array(differences))}]))
    assert verdict in text
    assert text.endswith(": detectable") == (verdict == "detectable")


def test_contrasts_are_validated() -> None:
    import tomllib

    raw = tomllib.loads(POWER_STUDY)
    assert [c.name for c in parse_study(raw).contrasts] == ["elastic_prices", "clawback"]
    raw["contrasts"]["clawback"]["a"] = "nowhere"
    with pytest.raises(StudyError, match=r"contrasts.clawback.a': 'nowhere' is not a variant"):
        parse_study(raw)
    raw["contrasts"]["clawback"] = {"b": "high", "a": "low", "outputs": ["nope"]}
    with pytest.raises(StudyError, match=r"contrasts.clawback.outputs"):
        parse_study(raw)
    # a variant given as a list or table (found by fuzzing: it ended in a TypeError)
    for odd in ([], ["low"], {}):
        raw["contrasts"]["clawback"] = {"b": odd, "a": "low"}
        with pytest.raises(StudyError, match=r"contrasts.clawback.b': .* is not a variant"):
            parse_study(raw)


def test_precision_adds_replications_and_analyze_reports_contrasts(
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    from relocsim.experiments.analysis import analyze

    study = write(tmp_path, POWER_STUDY)
    out = tmp_path / "out"
    argv = ["sweep", str(study), "--out", str(out), "--workers", "1", "--no-progress"]
    # an unreachable precision: replications grow to the cap, each added run reused
    code = cli_main([*argv, "--precision", "1e-9", "--max-replications", "4"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 replications: widest 95% interval" in captured.err
    assert "NOT reached" in captured.out and "with 4 replications" in captured.out
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(table["seed"].unique()) == [0, 1, 2, 3]
    assert (table["status"] == "ok").all()

    report = analyze(out, plots=False)
    contrasts = report.contrasts.set_index(["contrast", "outcome"])
    assert set(contrasts.index) == {
        ("elastic_prices", "price"),
        ("clawback", "jobs"),
        ("clawback", "price"),
    }
    assert (contrasts["n"] == 4).all()
    # prices respond more to occupancy with a higher elasticity: a paired effect seen clearly
    prices = contrasts.loc[("elastic_prices", "price")]
    assert prices["mean"] != 0 and prices["detectable"]
    assert prices["ci_low"] * prices["ci_high"] > 0
    assert (out / "analysis" / "contrasts.csv").exists()
    assert "minimum detectable effect" in report.text
    # a reachable precision stops as soon as the widest interval is below it
    widest = float(report.contrasts["ci_width"].max())
    code = cli_main([*argv, "--precision", str(widest * 1.01), "--max-replications", "8"])
    captured = capsys.readouterr()
    assert code == 0 and "reached with 4 replications" in captured.out
    assert "4 run now" not in captured.out  # every run was already there
