"""Parameter draws: coefficient vectors from an estimate, in runs and sweeps, and the split of an
outcome's spread into parameters and chance."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from relocsim.cli import main as run_main
from relocsim.estimation.fit import Diagnostics, EstimationResult
from relocsim.estimation.output import write_outputs
from relocsim.experiments.cli import main as sweep_main
from relocsim.experiments.uncertainty import decompose
from relocsim.parameter_draws import (
    ParameterDrawError,
    draw_parameters,
    read_estimates,
)
from relocsim.scenarios import load_scenario

SCENARIO = "synthetic:n_firms=1500,n_zones=10,n_regions=2,seed=3"


@pytest.fixture(scope="module")
def scenario():  # noqa: ANN201
    return load_scenario(SCENARIO)


def write_estimates(
    out: Path,
    scenario,  # noqa: ANN001
    params: dict[str, float] | None = None,
    cov: np.ndarray | None = None,
) -> Path:
    """An estimates folder written by relocsim.estimation's own writer."""
    params = params or {"b_land": 1.1, "nest_scale": 0.6, "b_age": 0.3, "b_dist[logistics]": 0.04}
    names = list(params)
    if cov is None:
        sd = np.array([0.05, 0.02, 0.03, 0.004])[: len(names)]
        corr = np.full((len(names), len(names)), 0.3) + 0.7 * np.eye(len(names))
        cov = corr * np.outer(sd, sd)
    sectors = list(scenario.sectors)

    def paths(name: str) -> list[str]:
        if "[" in name:
            coef, sector = name[:-1].split("[")
            return [f"sectors.{sector}.{coef}"]
        if name in ("b_age", "b_size", "b_stress", "b_growth", "language_border"):
            return [f"behaviour.{name}"]
        return [f"sectors.{s}.{name}" for s in sectors]

    series = pd.Series(params, dtype=float)
    frame = pd.DataFrame(cov, index=names, columns=names)
    se = pd.Series(np.sqrt(np.abs(np.diag(cov))), index=names)
    result = EstimationResult(
        series,
        se,
        se,
        se,
        frame,
        frame,
        -100.0,
        -200.0,
        1000,
        100,
        {n: paths(n) for n in names},
        Diagnostics(True, 10, 1e-8, 10.0),
    )
    write_outputs(result, out)
    return out


# ------------------------------------------------------------------------------ the draws


def test_draws_are_reproducible_keyed_by_seed_and_index(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    est = write_estimates(tmp_path / "est", scenario)
    five = draw_parameters(est, scenario, 5, seed=3)
    again = draw_parameters(est, scenario, 5, seed=3)
    eight = draw_parameters(est, scenario, 8, seed=3)
    other = draw_parameters(est, scenario, 5, seed=4)
    np.testing.assert_array_equal(five.values, again.values)
    np.testing.assert_array_equal(five.values, eight.values[:5])  # draw k does not depend on K
    assert not np.allclose(five.values, other.values)
    assert len({tuple(row) for row in five.values}) == 5
    # the overrides put each coefficient on its paths: pooled ones on every sector
    over = five.overrides(2)
    b_land = five.values[2, five.names.index("b_land")]
    assert {v for k, v in over.items() if k.endswith(".b_land")} == {b_land}
    assert len([k for k in over if k.endswith(".b_land")]) == len(scenario.sectors)
    assert over["sectors.logistics.b_dist"] == five.values[2, 3]
    assert "sectors.heavy_industry.b_dist" not in over


def test_draws_have_the_estimates_mean_and_covariance(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    est = write_estimates(tmp_path / "est", scenario)
    truth = read_estimates(est)
    draws = draw_parameters(est, scenario, 4000, seed=0)
    assert draws.proposals == 4000  # far from every bound: nothing truncated
    sd = np.sqrt(np.diag(truth.cov))
    z = (draws.values.mean(axis=0) - truth.mean) / (sd / np.sqrt(4000))
    assert np.all(np.abs(z) < 4), z
    corr = np.corrcoef(draws.values.T)
    np.testing.assert_allclose(np.diag(np.cov(draws.values.T)) / sd**2, 1, atol=0.1)
    np.testing.assert_allclose(corr[~np.eye(4, dtype=bool)], 0.3, atol=0.06)


def test_a_bound_truncates_the_normal(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    """b_claw (a disutility, >= 0 in the schema) at 0.5 with SE 1: draws follow the normal
    truncated at 0, and the rejections are reported."""
    est = write_estimates(
        tmp_path / "est", scenario, {"b_claw": 0.5, "b_land": 1.0}, np.diag([1.0, 0.01])
    )
    draws = draw_parameters(est, scenario, 3000, seed=1)
    claw = draws.values[:, 0]
    assert claw.min() >= 0
    expected = stats.truncnorm(-0.5, np.inf, loc=0.5, scale=1.0)
    assert abs(claw.mean() - expected.mean()) < 4 * expected.std() / np.sqrt(3000)
    assert abs(claw.mean() - 0.5) > 0.3  # the untruncated mean would be wrong here
    assert 0.2 < 1 - draws.count / draws.proposals < 0.4  # P(N(0.5, 1) < 0) = 0.31
    assert "fell outside the scenario's ranges" in draws.describe() and "b_claw" in draws.describe()


# --------------------------------------------------------------------------- bad input


def _break(est: Path, what: str) -> None:
    if what == "no covariance":
        (est / "covariance.csv").unlink()
    elif what == "mismatch":
        cov = pd.read_csv(est / "covariance.csv", index_col=0)
        cov = cov.rename(index={"b_age": "b_size"}, columns={"b_age": "b_size"})
        cov.to_csv(est / "covariance.csv")
    elif what == "not psd":
        cov = pd.read_csv(est / "covariance.csv", index_col=0)
        cov.loc["b_land", "nest_scale"] = cov.loc["nest_scale", "b_land"] = 1.0
        cov.to_csv(est / "covariance.csv")
    elif what == "stray path":
        text = (est / "estimated.toml").read_text()
        (est / "estimated.toml").write_text(text + '"sectors.logistics.b_water" = 0.1\n')
    elif what == "name reads as a number":  # found by fuzzing: ended in a TypeError
        text = (est / "estimates.csv").read_text()
        (est / "estimates.csv").write_text(text.replace("\nb_land,", "\nnan,", 1))
    elif what == "not converged":
        text = (est / "estimated.toml").read_text()
        (est / "estimated.toml").write_text(text.replace("converged = true", "converged = false"))
    elif what == "toml disagrees":
        text = (est / "estimated.toml").read_text()
        (est / "estimated.toml").write_text(
            text.replace('"behaviour.b_age" = 0.3', '"behaviour.b_age" = 0.5')
        )


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("no covariance", r"covariance.csv: missing"),
        ("mismatch", r"covariance.csv: its coefficients do not match estimates.csv .*b_age"),
        ("not psd", r"covariance.csv: not positive semi-definite: smallest eigenvalue"),
        ("stray path", r"estimated.toml: override 'sectors.logistics.b_water' belongs to no"),
        ("toml disagrees", r"estimated.toml: override 'behaviour.b_age' = 0.5 but estimates.csv"),
        ("name reads as a number", r"covariance.csv: its coefficients do not match .*b_land.*nan"),
        ("not converged", r"estimated.toml: the estimation did not converge"),
    ],
)
def test_bad_estimates_are_one_line_errors_with_exit_2(
    tmp_path: Path,
    scenario,
    capsys,
    what: str,
    message: str,  # noqa: ANN001
) -> None:
    est = write_estimates(tmp_path / "est", scenario)
    _break(est, what)
    with pytest.raises(ParameterDrawError, match=message):
        draw_parameters(est, scenario, 3, seed=0)
    code = run_main(
        [
            "run",
            "--scenario",
            SCENARIO,
            "--parameter-draws",
            "3",
            "--estimates",
            str(est),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("relocsim: error:") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_unknown_coefficient_and_draw_bounds(tmp_path: Path, scenario, capsys) -> None:  # noqa: ANN001
    est = write_estimates(tmp_path / "est", scenario, {"b_foo": 1.0}, np.eye(1))
    with pytest.raises(ParameterDrawError, match=r"coefficient b_foo: .*unknown field 'b_foo'"):
        draw_parameters(est, scenario, 3, seed=0)
    est = write_estimates(tmp_path / "est2", scenario, {"b_dist[nope]": 0.04}, np.eye(1))
    with pytest.raises(
        ParameterDrawError, match=r"coefficient b_dist\[nope\]: .*unknown key 'nope'"
    ):
        draw_parameters(est, scenario, 3, seed=0)
    good = write_estimates(tmp_path / "good", scenario)
    cases = [
        (["--parameter-draws", "1", "--estimates", str(good)], "--parameter-draws 1: expected"),
        (["--parameter-draws", "20000", "--estimates", str(good)], "[2, 10000]"),
        (["--parameter-draws", "3"], "--parameter-draws K and --estimates DIR go together"),
        (["--parameter-draws", "3", "--estimates", str(tmp_path / "none")], "no such estimates"),
        (
            ["--parameter-draws", "3", "--estimates", str(good), "--set", "behaviour.b_age=0.2"],
            "--set behaviour.b_age: that coefficient is drawn",
        ),
    ]
    for extra, message in cases:
        code = run_main(["run", "--scenario", SCENARIO, "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (extra, err)


# ---------------------------------------------------------------- runs and sweeps with draws


def test_run_with_draws_writes_each_draw_and_resumes(tmp_path: Path, scenario, capsys) -> None:  # noqa: ANN001
    est = write_estimates(tmp_path / "est", scenario)
    argv = [
        "run",
        "--scenario",
        SCENARIO,
        "--years",
        "1",
        "--seed",
        "7",
        "--no-progress",
        "--parameter-draws",
        "2",
        "--estimates",
        str(est),
        "--out",
        str(tmp_path / "out"),
    ]
    assert run_main(argv) == 0
    table = pd.read_csv(tmp_path / "out" / "draws.csv")
    assert list(table["seed"]) == [7, 8]
    np.testing.assert_allclose(
        table[["b_land", "nest_scale"]].to_numpy(),
        draw_parameters(est, scenario, 2, seed=7).values[:, :2],
    )
    assert (tmp_path / "out" / "draw_1" / "yearly.parquet").exists()
    summary = pd.read_csv(tmp_path / "out" / "draws_summary.csv").set_index("measure")
    assert (summary["n"] == 2).all()
    capsys.readouterr()
    assert run_main(argv) == 0
    assert "draw 0 of" not in capsys.readouterr().out  # both draws were already done
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "draws.csv"), table)


STUDY = """
name = "draws_tiny"
scenario = "{scenario}"
years = 1
replications = 2
seed = 5
outputs = [{{ name = "jobs", table = "yearly", column = "jobs" }}]

[parameter_draws]
estimates = "est"
draws = 2

[variants.none]
"policies.aid_portability.mode" = "none"

[variants.clawback]
"policies.aid_portability.mode" = "clawback"
"land_market.price_elasticity" = 1.5

[contrasts.clawback]
b = "clawback"
a = "none"
"""


def test_sweep_crosses_draws_with_seeds_same_in_every_variant_and_resumes(
    tmp_path: Path,
    scenario,
    capsys,  # noqa: ANN001
) -> None:
    from relocsim.experiments.analysis import analyze
    from relocsim.experiments.design import plan_runs
    from relocsim.experiments.study import load_study

    write_estimates(tmp_path / "est", scenario)
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(scenario=SCENARIO))
    plan = plan_runs(load_study(study))
    assert len(plan.runs) == 2 * 2 * 2 and len(plan.unique_keys) == 8
    for draw in (0, 1):  # the same coefficient vector in both variants
        drawn = [
            {k: v for k, v in r.overrides.items() if k in plan.draws.overrides(draw)}
            for r in plan.runs
            if r.draw == draw
        ]
        assert all(d == plan.draws.overrides(draw) for d in drawn)
    out = tmp_path / "out"
    argv = ["sweep", str(study), "--out", str(out), "--workers", "1", "--no-progress"]
    assert sweep_main(argv) == 0
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(table.groupby(["variant", "draw", "seed"]).size()) == [1] * 8
    assert (out / "parameter_draws.csv").exists()
    capsys.readouterr()
    assert sweep_main(argv) == 0
    assert "(0 run now, 8 already done" in capsys.readouterr().out
    # more draws: the first two are reused, only the new draw runs
    assert sweep_main([*argv, "--parameter-draws", "3"]) == 0
    assert "(4 run now, 8 already done" in capsys.readouterr().out

    report = analyze(out, plots=False)
    split = report.uncertainty.set_index(["kind", "name"])
    assert set(split.index) == {
        ("variant", "none"),
        ("variant", "clawback"),
        ("contrast", "clawback"),
    }
    assert (split["n_draws"] == 3).all() and (split["n_seeds"] == 2).all()
    assert (out / "analysis" / "uncertainty.csv").exists()
    assert "Parameters vs chance" in report.text
    assert (report.contrasts["n"] == 6).all()  # paired by seed and draw, not across draws


def test_study_file_draw_errors(tmp_path: Path, scenario, capsys) -> None:  # noqa: ANN001
    study = tmp_path / "study.toml"
    study.write_text(STUDY.format(scenario=SCENARIO).replace("draws = 2", "draws = 0"))
    assert sweep_main(["sweep", str(study), "--dry-run"]) == 2
    assert "field 'parameter_draws.draws': 0: expected an integer in [2, 10000]" in (
        capsys.readouterr().err
    )
    study.write_text(STUDY.format(scenario=SCENARIO))  # "est" does not exist here
    assert sweep_main(["sweep", str(study), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "field 'parameter_draws'" in err and "no such estimates folder" in err


# ------------------------------------------------------------- parameters versus chance


def _synthetic(k: int, r: int, sd_par: float, sd_seed: float, sd_int: float, seed: int):  # noqa: ANN202
    rng = np.random.default_rng(seed)
    return (
        10.0
        + rng.normal(0, sd_par, (k, 1))
        + rng.normal(0, sd_seed, (1, r))
        + rng.normal(0, sd_int, (k, r))
    )


def test_decomposition_recovers_known_variance_components() -> None:
    split = decompose(_synthetic(400, 60, 2.0, 1.0, 0.5, seed=0))
    assert split["var_parameters"] == pytest.approx(4.0, rel=0.15)
    assert split["var_seeds"] == pytest.approx(1.0, rel=0.4)
    assert split["var_interaction"] == pytest.approx(0.25, rel=0.05)
    assert split["share_parameters"] == pytest.approx(4 / 5.25, abs=0.05)
    assert split["p_parameters"] < 1e-10
    # no parameter effect: a share near 0 and no significant F
    null = decompose(_synthetic(30, 10, 0.0, 1.0, 1.0, seed=1))
    assert null["share_parameters"] < 0.1 and null["p_parameters"] > 0.01


def test_decomposition_is_unbiased_where_the_naive_split_is_not() -> None:
    """With 2 seeds per draw, the variance of the draw means over-counts chance as parameters
    by var_int / 2; the ANOVA components do not."""
    estimates, naive = [], []
    for seed in range(300):
        y = _synthetic(20, 2, 2.0, 0.0, 2.0, seed)
        estimates.append(decompose(y)["var_parameters"])
        naive.append(y.mean(axis=1).var(ddof=1))
    assert np.mean(estimates) == pytest.approx(4.0, abs=0.4)
    assert np.mean(naive) == pytest.approx(4.0 + 4.0 / 2, abs=0.4)


def test_decomposition_needs_a_cross() -> None:
    assert np.isnan(decompose(np.ones((5, 1)))["share_parameters"])
    assert decompose(np.array([[1.0, 2.0], [np.nan, 3.0], [2.0, 4.0]]))["n_draws"] == 2


def test_contrast_interval_over_draws_covers_at_its_level() -> None:
    """A contrast whose effect varies by draw: its 95% interval must cover the true mean about
    95% of the time. Taking the 8 x 4 pairs as independent (paired_summary) covers far less
    (about 65% here), which the test also checks, so it can tell the two apart."""
    from relocsim.experiments.power import crossed_summary, paired_summary

    rng = np.random.default_rng(5)
    draws, seeds, reps = 8, 4, 400
    crossed = naive = 0
    for _ in range(reps):
        effect = (
            rng.normal(0, 3, (draws, 1))
            + rng.normal(0, 1, (1, seeds))
            + rng.normal(0, 1, (draws, seeds))
        )
        pairs = pd.DataFrame(
            {
                "draw": np.repeat(np.arange(draws), seeds),
                "seed": np.tile(np.arange(seeds), draws),
                "y": effect.ravel(),
            }
        )
        c, n = crossed_summary(pairs, "y"), paired_summary(pairs["y"].to_numpy())
        crossed += c["ci_low"] <= 0 <= c["ci_high"]
        naive += n["ci_low"] <= 0 <= n["ci_high"]
    assert 0.91 <= crossed / reps <= 0.985
    assert naive / reps < 0.8


# ------------------------------------------------------------- draws from a calibration


def write_calibration(
    out: Path, mode: str = "set", cov: np.ndarray | None = None, covariance: bool = True
) -> Path:
    """A relocsim calibrate folder of two set parameters (one by wildcard over the sectors) and
    a value the study fixed, as calibrate writes them."""
    out.mkdir(parents=True)
    names, paths = (
        ["birth_density_elasticity", "asc_move_shift"],
        [
            "behaviour.birth_density_elasticity",
            "sectors.*.asc_move",
        ],
    )
    estimate, se = np.array([0.5, -2.0]), np.array([0.1, 0.05])
    pd.DataFrame(
        {
            "parameter": names,
            "paths": paths,
            "mode": ["set", mode],
            "start": [0.5, -2.0],
            "lower": [0.0, -5.0],
            "upper": [3.0, 0.0],
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - 1.96 * se,
            "ci_high": estimate + 1.96 * se,
            "at_bound": [False, False],
        }
    ).to_csv(out / "estimates.csv", index=False)
    if covariance:
        cov = np.diag(se**2) if cov is None else cov
        pd.DataFrame(cov, index=names, columns=names).to_csv(out / "covariance.csv")
    sectors = list(load_scenario(SCENARIO).sectors)
    lines = ["[provenance]", 'study = "study.toml"', "", "[overrides]"]
    lines.append('"land_market.conversion_premium_eur_m2" = 2000.0  # fixed by the study')
    lines.append(f'"behaviour.birth_density_elasticity" = {float(estimate[0])!r}  # calibrated')
    lines += [f'"sectors.{s}.asc_move" = {float(estimate[1])!r}  # calibrated' for s in sectors]
    (out / "calibrated.toml").write_text("\n".join(lines) + "\n")
    return out


def test_a_calibration_folder_gives_draws_of_its_set_parameters(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    """The simulated-moments estimate and covariance, each parameter on its paths (the wildcard
    over every sector), the study's fixed value left to the scenario."""
    cal = write_calibration(tmp_path / "cal")
    draws = draw_parameters(cal, scenario, 2000, seed=0)
    assert draws.names == ["birth_density_elasticity", "asc_move_shift"]
    np.testing.assert_allclose(draws.values.mean(axis=0), [0.5, -2.0], atol=0.01)
    np.testing.assert_allclose(draws.values.std(axis=0), [0.1, 0.05], rtol=0.1)
    over = draws.overrides(3)
    assert over["behaviour.birth_density_elasticity"] == draws.values[3, 0]
    assert {v for k, v in over.items() if k.endswith(".asc_move")} == {draws.values[3, 1]}
    assert len([k for k in over if k.endswith(".asc_move")]) == len(scenario.sectors)
    assert "land_market.conversion_premium_eur_m2" not in over


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("ratio", r"estimates.csv: parameter 'asc_move_shift' has mode 'ratio'; expected set"),
        ("no covariance", r"covariance.csv: missing; a calibration folder holds"),
    ],
)
def test_a_calibration_folder_draws_cannot_use_is_refused(
    tmp_path: Path,
    scenario,
    capsys,
    kind: str,
    message: str,  # noqa: ANN001
) -> None:
    cal = write_calibration(
        tmp_path / "cal",
        mode="ratio" if kind == "ratio" else "set",
        covariance=kind != "no covariance",
    )
    with pytest.raises(ParameterDrawError, match=message):
        draw_parameters(cal, scenario, 2, seed=0)
    argv = ["run", "--scenario", SCENARIO, "--parameter-draws", "2", "--estimates", str(cal)]
    assert run_main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def write_relative_calibration(out: Path, scenario, scale: float, se: float) -> Path:  # noqa: ANN001
    """A relocsim calibrate folder of a scale of every sector's birth rate and a shift of every
    sector's growth drift, each field in calibrated.toml at the estimate, as calibrate writes
    it."""
    out.mkdir(parents=True)
    names = ["birth_scale", "drift_shift"]
    estimate, ses = np.array([scale, 0.002]), np.array([se, 0.001])
    pd.DataFrame(
        {
            "parameter": names,
            "paths": ["sectors.*.birth_rate", "sectors.*.growth_drift"],
            "mode": ["scale", "shift"],
            "estimate": estimate,
            "se": ses,
        }
    ).to_csv(out / "estimates.csv", index=False)
    cov = np.diag(ses**2)
    pd.DataFrame(cov, index=names, columns=names).to_csv(out / "covariance.csv")
    lines = ["[provenance]", 'study = "study.toml"', "", "[overrides]"]
    for name, sector in scenario.sectors.items():
        lines.append(f'"sectors.{name}.birth_rate" = {sector.birth_rate * scale!r}')
        lines.append(f'"sectors.{name}.growth_drift" = {sector.growth_drift + 0.002!r}')
    (out / "calibrated.toml").write_text("\n".join(lines) + "\n")
    return out


def test_scale_and_shift_parameters_are_drawn_onto_each_field(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    """A scale draw multiplies each field's base value (the calibrated value over the
    estimate), a shift draw adds to it: every field the study moved is drawn jointly."""
    cal = write_relative_calibration(tmp_path / "cal", scenario, scale=1.1, se=0.05)
    draws = draw_parameters(cal, scenario, 500, seed=0)
    assert draws.values[:, 0].mean() == pytest.approx(1.1, abs=0.01)
    assert draws.values[:, 1].mean() == pytest.approx(0.002, abs=0.0002)
    for k in (0, 7):
        scale, shift = draws.values[k]
        over = draws.overrides(k)
        for name, sector in scenario.sectors.items():
            assert over[f"sectors.{name}.birth_rate"] == pytest.approx(sector.birth_rate * scale)
            assert over[f"sectors.{name}.growth_drift"] == pytest.approx(
                sector.growth_drift + shift, abs=1e-12
            )


def test_a_scale_is_truncated_where_its_fields_leave_their_range(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    """Birth rates are shares: a scale draw that would make one negative is drawn again, so
    the bound is the field's range read through the scale."""
    cal = write_relative_calibration(tmp_path / "cal", scenario, scale=0.2, se=0.2)
    draws = draw_parameters(cal, scenario, 300, seed=1)
    assert draws.values[:, 0].min() >= 0 and draws.rejected[0] > 0
    assert "proposals fell outside the scenario's ranges" in draws.describe()
    top = 1.0 / max(sector.birth_rate for sector in scenario.sectors.values())
    assert draws.high[0] == pytest.approx(top)


def test_a_scale_estimated_at_zero_cannot_be_drawn(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    cal = write_relative_calibration(tmp_path / "cal", scenario, scale=0.0, se=0.1)
    with pytest.raises(ParameterDrawError, match="'birth_scale' is a scale estimated at 0"):
        draw_parameters(cal, scenario, 2, seed=0)


def test_a_run_draws_from_a_calibration(tmp_path: Path, scenario) -> None:  # noqa: ANN001
    cal = write_calibration(tmp_path / "cal")
    argv = ["run", "--scenario", SCENARIO, "--years", "1", "--seed", "2", "--no-progress"]
    argv += ["--parameter-draws", "2", "--estimates", str(cal), "--out", str(tmp_path / "out")]
    assert run_main(argv) == 0
    table = pd.read_csv(tmp_path / "out" / "draws.csv")
    np.testing.assert_allclose(
        table[["birth_density_elasticity", "asc_move_shift"]].to_numpy(),
        draw_parameters(cal, scenario, 2, seed=2).values,
    )
    assert (tmp_path / "out" / "draw_1" / "yearly.parquet").exists()
