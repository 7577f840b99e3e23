"""The fact registry: every fact is well formed and each measuring function counts what it says,
checked on small hand-built tables whose answers are worked out by hand."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import relocsim
from relocsim.facts import (
    MEASURES,
    FactError,
    load_facts,
    measure_facts,
    window,
)
from relocsim.records import Results

ZONES = {  # zone: (region, x_km, y_km)
    "bxl_a": ("Brussels", 0.0, 0.0),
    "bxl_b": ("Brussels", 3.0, 4.0),
    "vb_n": ("Flanders", 0.0, 10.0),
    "fl_far": ("Flanders", 0.0, 100.0),
    "bw_p": ("Wallonia", 0.0, -20.0),
}


def _yearly(year: int, rows: list[tuple]) -> list[dict]:
    return [
        dict(
            year=year,
            region=r,
            sector=s,
            firms=f,
            jobs=j,
            births=b,
            exits=e,
            relocations=rl,
            delocalisations=d,
            arrivals=a,
        )
        for r, s, f, j, b, e, rl, d, a in rows
    ]


def _event(year, firm, event, from_zone="", to_zone="", employees=1):
    return dict(
        year=year,
        firm_id=firm,
        event=event,
        sector="logistics",
        from_zone=from_zone,
        to_zone=to_zone,
        employees=employees,
        amount_eur=0.0,
    )


@pytest.fixture
def results() -> Results:
    yearly = pd.DataFrame(
        _yearly(
            2025,
            [
                ("Brussels", "logistics", 100, 1000, 10, 5, 4, 4, 2),
                ("Brussels", "heavy_industry", 100, 2000, 0, 5, 0, 0, 0),
                ("Flanders", "logistics", 200, 3000, 20, 10, 6, 2, 3),
                ("Wallonia", "logistics", 100, 1000, 10, 10, 0, 1, 2),
            ],
        )
        + _yearly(
            2026,
            [
                ("Brussels", "logistics", 110, 1100, 0, 0, 0, 0, 0),
                ("Brussels", "heavy_industry", 100, 1800, 0, 0, 0, 0, 0),
                ("Flanders", "logistics", 220, 3300, 0, 0, 0, 0, 0),
                ("Wallonia", "logistics", 110, 1000, 0, 0, 0, 0, 0),
            ],
        )
    )
    flows = pd.DataFrame(
        [
            dict(year=2025, origin_region=o, destination_region=d, firms=n, jobs=n)
            for o, d, n in [
                ("Brussels", "Flanders", 3),
                ("Brussels", "Wallonia", 1),
                ("Flanders", "Brussels", 1),
                ("Flanders", "Wallonia", 1),
                ("Wallonia", "Brussels", 1),
                ("Brussels", "Brussels", 4),
            ]
        ]
    )
    events = pd.DataFrame(
        [
            _event(2025, 1, "delocalised", "bxl_a", "vb_n"),  # 10 km
            _event(2025, 2, "delocalised", "bxl_a", "vb_n"),
            _event(2025, 3, "delocalised", "bxl_b", "fl_far"),  # 96.05 km
            _event(2025, 4, "delocalised", "bxl_a", "bw_p"),  # 20 km
            _event(2025, 5, "moved", "bxl_a", "bxl_b"),  # 5 km
            _event(2025, 6, "moved", "bxl_a", "bxl_a"),  # inside: radius 2 km
            _event(2025, 10, "born", "", "bxl_a"),
            _event(2025, 11, "born", "", "bxl_a"),
            _event(2025, 12, "born", "", "vb_n"),
            _event(2025, 13, "born", "", "vb_n"),
            _event(2027, 10, "exited", "bxl_a", ""),  # dies within five years
            _event(2031, 11, "exited", "vb_n", ""),  # survives five years
        ]
    )
    zones = pd.DataFrame(
        [
            dict(
                year=year,
                zone=z,
                region=r,
                firms=10,
                jobs=100 * (i + 1),
                occupied_ha=10.0,
                developable_ha=20.0,
                vacant_ha=10.0 - (year - 2025) * (2.0 if r == "Brussels" else 0.0),
                converted_ha=(year - 2024) * (1.5 if r == "Brussels" else 0.0),
                price_eur_m2=(200.0 if z == "vb_n" else 100.0) * (1.1 ** (year - 2025)),
                jobs_per_ha=10.0,
                x_km=x,
                y_km=y,
            )
            for year in (2025, 2026)
            for i, (z, (r, x, y)) in enumerate(ZONES.items())
        ]
    )
    sizes = pd.DataFrame(
        [
            dict(year=2025, region="Brussels", size_class="1-4", firms=1000, delocalisations=5),
            dict(year=2025, region="Brussels", size_class="100+", firms=100, delocalisations=2),
        ]
    )
    accounts = pd.DataFrame({"year": [2025], "region": ["Brussels"]})
    return Results(yearly, flows, zones, accounts, events, sizes)


def value(results: Results, measure: str, first=2025, last=2026, **args) -> float:
    return MEASURES[measure](window(results, first, last, {"bxl_a": 2.0}), **args)


def test_registry_is_complete_and_well_formed():
    facts = load_facts()
    assert len(facts) >= 30
    assert sum(f.role == "target" for f in facts) >= 12
    assert sum(f.role == "held_out" for f in facts) >= 4
    for fact in facts:
        assert fact.low <= fact.high and fact.source and fact.unit and fact.definition
        if not math.isnan(fact.value):
            assert fact.low <= fact.value <= fact.high, fact.id


def test_move_rates_and_distances(results):
    # 6 moves on 1040 firm-years
    assert value(results, "move_rate") == pytest.approx(6 / 1040)
    # distances 10, 10, 96.05, 20, 5, 2 km: five under 40
    assert value(results, "short_move_share", km=40.0) == pytest.approx(5 / 6)
    assert value(results, "median_move_km") == pytest.approx(10.0)
    # 10 relocations of 17 moves in the yearly table
    assert value(results, "within_region_share") == pytest.approx(10 / 17)


def test_brussels_flows(results):
    assert value(results, "region_out_rate", region="Brussels") == pytest.approx(4 / 410)
    assert value(results, "region_in_out_ratio", region="Brussels") == pytest.approx(2 / 4)
    share = value(results, "leavers_to_zones_share", region="Brussels", zones=["vb_", "bw_"])
    assert share == pytest.approx(3 / 4)
    assert value(results, "involving_share", region="Brussels") == pytest.approx(6 / 7)
    to_flanders = value(
        results, "leavers_to_region_share", region="Brussels", destination="Flanders"
    )
    assert to_flanders == pytest.approx(3 / 4)
    from_flanders = value(
        results, "entrants_from_region_share", region="Brussels", origin="Flanders"
    )
    assert from_flanders == pytest.approx(1 / 2)
    assert math.isnan(value(results, "flow_ratio", origin="Flanders", destination="Wallonia"))
    assert value(results, "intra_region_moves_per_leaver", region="Brussels") == pytest.approx(
        1 / 4
    )
    # every move starts in Brussels; one more between two Flemish zones makes it 6 of 7
    assert value(results, "moves_involving_share", region="Brussels") == pytest.approx(1.0)
    results.events = pd.concat(
        [
            results.events,
            pd.DataFrame(
                [
                    _event(2025, 7, "moved", "vb_n", "fl_far"),
                    _event(2026, 8, "delocalised", "vb_n", "bxl_a"),
                    _event(2026, 9, "delocalised", "fl_far", "bxl_b"),
                    _event(2026, 14, "delocalised", "bw_p", "bxl_b"),
                ]
            ),
        ],
        ignore_index=True,
    )
    assert value(results, "moves_involving_share", region="Brussels") == pytest.approx(9 / 10)
    # three arrivals into Brussels: from vb_n and bw_p (the Brabants) and fl_far
    entrants = value(results, "entrants_from_zones_share", region="Brussels", zones=["vb_", "bw_"])
    assert entrants == pytest.approx(2 / 3)


def test_size_gradient(results):
    assert value(
        results, "size_out_ratio", region="Brussels", large="100+", small="1-4"
    ) == pytest.approx((2 / 100) / (5 / 1000))
    assert value(
        results, "size_out_per_1000", region="Brussels", size_class="1-4"
    ) == pytest.approx(5.0)
    assert value(results, "size_share", region="Brussels", size_class="100+") == pytest.approx(
        100 / 1100
    )


def test_demography(results):
    assert value(results, "birth_rate") == pytest.approx(40 / 1040)
    assert value(results, "exit_rate") == pytest.approx(30 / 1040)
    assert value(results, "firm_growth") == pytest.approx(540 / 500 - 1)
    # firm 10 exits after 2 years, 11 after 6, 12 and 13 never: 3 of 4 survive five years
    # (the run's tables end in 2026, so pretend it ran to 2031)
    results.yearly.loc[results.yearly.index[-1], "year"] = 2031
    assert value(results, "five_year_survival", last=2026) == pytest.approx(3 / 4)


def test_job_trends(results):
    assert value(results, "jobs_growth", region="Brussels") == pytest.approx(2900 / 3000 - 1)
    assert value(
        results, "jobs_growth", region="Brussels", sectors=["heavy_industry"]
    ) == pytest.approx(-0.1)


def test_land(results):
    assert value(results, "converted_ha_per_year", region="Brussels") == pytest.approx(3.0)
    # the second year alone: cumulative 6.0 ha at the end of 2026, 3.0 at the end of 2025
    assert value(results, "converted_ha_per_year", region="Brussels", first=2026) == pytest.approx(
        3.0
    )
    assert value(results, "vacant_change_ha", region="Brussels") == pytest.approx(-4.0)
    assert value(results, "zone_vacant_ha", zones=["vb_"]) == pytest.approx(10.0)
    assert value(results, "zone_price", zones=["vb_"]) == pytest.approx(210.0)
    assert value(results, "zone_price_growth", zones=["bw_"]) == pytest.approx(0.1)
    assert value(results, "zone_occupancy", zones=["bw_"]) == pytest.approx(0.5)
    assert value(results, "zone_jobs_per_ha", zones=["bw_"]) == pytest.approx(50.0)
    assert value(results, "occupied_change_ha", zones=["bw_"]) == pytest.approx(0.0)
    later = (results.zones["year"] == 2026) & (results.zones["zone"] == "bw_p")
    results.zones.loc[later, ["occupied_ha", "developable_ha"]] = [13.0, 18.5]
    assert value(results, "occupied_change_ha", zones=["bw_"]) == pytest.approx(3.0)
    assert value(results, "developable_change_ha", zones=["bw_", "vb_"]) == pytest.approx(-1.5)
    assert math.isnan(value(results, "occupied_change_ha", zones=["bw_"], first=2026))


def test_measure_facts_has_one_row_per_fact_and_decade(short_run):
    model, results = short_run
    table = measure_facts(results, years=[(2025, 2027), (2028, 2030)])
    assert len(table) == 2 * len(load_facts())
    assert set(table["window"]) == {"2025-2027", "2028-2030"}
    by_fact = table[table["window"] == "2025-2027"].set_index("fact")["value"]
    assert 0 < by_fact["relocation_rate"] < 0.2


def test_a_bad_fact_file_names_the_fact_and_field(tmp_path):
    path = tmp_path / "facts.toml"
    path.write_text(
        '[[fact]]\nid = "x"\nlabel = "x"\nlow = 1\nhigh = 2\nunit = "-"\ndefinition = "d"\n'
        'source = "s"\nrole = "target"\nmeasure = "no_such_function"\n'
    )
    with pytest.raises(FactError, match=r"fact\[0\] \(x\).*'measure'.*no_such_function"):
        load_facts(path)
    path.write_text(path.read_text().replace("no_such_function", "move_rate").replace("2", "0"))
    with pytest.raises(FactError, match="'low' .* above field 'high'"):
        load_facts(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("low", '""', "field 'low': value ''; expected a finite number"),
        ("high", '"target"', "field 'high': value 'target'"),
        ("high", "[1]", "field 'high': value [1]"),
        ("low", "nan", "field 'low': value nan"),
        ("high", "true", "field 'high': value True"),
        ("value", "{ a = 1 }", "field 'value': value {'a': 1}"),
        ("measure", "[]", "field 'measure': value []; expected text"),
        ("role", "{}", "field 'role': value {}; expected text"),
        ("id", "3", "field 'id': value 3; expected text"),
    ],
)
def test_a_fact_of_the_wrong_type_names_the_field_and_value(tmp_path, field, value, message):
    """Found by fuzzing the registry: these ended in a TypeError or ValueError traceback."""
    fields = {"id": '"x"', "label": '"x"', "low": "1", "high": "2", "unit": '"-"'}
    fields |= {"definition": '"d"', "source": '"s"', "role": '"target"', "measure": '"move_rate"'}
    fields[field] = value
    path = tmp_path / "facts.toml"
    path.write_text("[[fact]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    with pytest.raises(FactError, match=re.escape(message)):
        load_facts(path)


def test_validate_writes_the_table_and_figure(tmp_path):
    from relocsim.validate import main

    code = main(
        ["--seeds", "0-1", "--years", "3", "--workers", "1", "--out", str(tmp_path)]
        + ["--no-progress"]
    )
    assert code == 0
    summary = pd.read_csv(tmp_path / "facts.csv")
    assert len(summary) == len(load_facts())  # one window: 2025-2027
    assert summary["seeds"].max() == 2
    measured = summary.dropna(subset=["mean"])
    assert len(measured) >= 25  # five-year survival, for one, needs more than three years
    assert (measured["min"] <= measured["mean"] + 1e-12).all()
    assert (tmp_path / "facts.png").stat().st_size > 10_000
    assert "brussels_out_rate" in pd.read_csv(tmp_path / "facts_by_seed.csv")["fact"].values
    assert "| fact | role | range | 2025-2027 | source |" in (tmp_path / "facts.md").read_text()


def test_an_interrupted_validation_keeps_its_runs_and_resumes(tmp_path, monkeypatch, capsys):
    """Each finished run is stored as it ends: after Ctrl-C in the second run, the same command
    simulates only that run and gives the table of an uninterrupted validation. Runs of other
    code are not reused."""
    import relocsim.fact_runs as fact_runs
    from relocsim.validate import main

    measure, simulated = fact_runs.measure_run, []

    def counted(task, base, stop_at=None):
        simulated.append(task.seed)
        if len(simulated) == stop_at:
            raise KeyboardInterrupt
        return measure(task, base)

    out = tmp_path / "out"
    args = ["--seeds", "0-1", "--years", "2", "--workers", "1", "--no-progress", "--out"]
    monkeypatch.setattr(fact_runs, "measure_run", lambda t, b: counted(t, b, stop_at=2))
    assert main([*args, str(out)]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert len(list((out / "runs").glob("*.parquet"))) == 1
    monkeypatch.setattr(fact_runs, "measure_run", counted)
    simulated.clear()
    assert main([*args, str(out)]) == 0
    assert simulated == [1]
    assert "1 found in" in capsys.readouterr().out
    simulated.clear()
    assert main([*args, str(tmp_path / "fresh")]) == 0
    assert simulated == [0, 1]
    for name in ("facts_by_seed.csv", "facts.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(out / name), pd.read_csv(tmp_path / "fresh" / name)
        )
    monkeypatch.setattr(fact_runs, "code_hash", lambda: "edited checkout")
    simulated.clear()
    assert main([*args, str(out)]) == 0
    assert simulated == [0, 1]


def test_validate_rejects_bad_input(tmp_path, capsys):
    from relocsim.validate import main

    assert main(["--years", "0", "--out", str(tmp_path)]) == 2
    assert "--years 0" in capsys.readouterr().err
    assert main(["--set", "behaviour.b_age=x", "--years", "1", "--out", str(tmp_path)]) == 2
    assert "behaviour.b_age" in capsys.readouterr().err
    for absurd in ("0", "-3", "1000000"):
        assert main(["--outlook-seeds", absurd, "--years", "1", "--out", str(tmp_path)]) == 2
        assert f"--outlook-seeds {absurd}: expected 1 to 100,000 seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse: usage, one error line, exit 2
        main(["--outlook-seeds", "3", "--outlook-seeds", "4", "--out", str(tmp_path)])
    assert stop.value.code == 2
    assert "--outlook-seeds given twice: keep one" in capsys.readouterr().err
    for seeds, message in (("0,1,0", "seed 0 given twice"), ("0-2,1", "seed 1 given twice"),
                           ("-1", "expected seeds >= 0"),
                           ("0-99999999999", "expected at most 10,000 seeds")):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            main([f"--seeds={seeds}", "--out", str(tmp_path / "never")])
        assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_seeds_are_written_back_as_they_are_read():
    from relocsim.validate import format_seeds, parse_seeds

    for text in ("0", "0-5", "0-2,7", "3,5,9-11"):
        assert format_seeds(parse_seeds(text)) == text
    assert format_seeds([7, 0, 2, 1]) == "0-2,7"


def test_validate_measures_the_facts_of_its_fact_file(tmp_path):
    """`--facts FILE` facts are measured as that file defines them (the workers measured the
    shipped registry before): a fact the registry does not have gets its value, and a changed
    argument changes the value."""
    from relocsim.validate import main

    text = (Path(relocsim.__file__).parent / "data" / "facts.toml").read_text()
    text = text.replace('id = "brussels_jobs_growth_5y"', 'id = "brussels_jobs_growth_2y"')
    text = text.replace("years = 5 }", "years = 2 }")
    facts = tmp_path / "facts.toml"
    facts.write_text(text)
    out = tmp_path / "out"
    args = ["--seeds", "0", "--years", "6", "--workers", "1", "--no-progress", "--out", str(out)]
    assert main([*args, "--facts", str(facts)]) == 0
    summary = pd.read_csv(out / "facts.csv").set_index("fact")["mean"]
    two_years, decade = summary["brussels_jobs_growth_2y"], summary["brussels_jobs_growth"]
    assert np.isfinite(two_years) and two_years != decade


def test_validate_gives_the_chance_that_fresh_seeds_judge_otherwise():
    """Per fact-decade, the chance that as many fresh seeds put the mean out of range, and over
    the targets how many would fall out and how many a model centred in every range would lose
    to the seeds' noise alone: a mean on the edge is out about half the time, one far inside
    almost never; a Monte Carlo of seed means agrees."""
    from relocsim.validate import fresh_seed_outlook, summarise

    fact = next(f for f in load_facts() if f.id == "relocation_rate")  # 0.02 - 0.06
    rows = {
        "2025-2034": [0.039, 0.040, 0.041],
        "2035-2044": [0.057, 0.061, 0.065],  # mean 0.061, sd 0.004
        "2045-2054": [0.05],
    }
    measured = pd.DataFrame(
        [
            {"seed": s, "fact": fact.id, "window": w, "value": v}
            for w, values in rows.items()
            for s, v in enumerate(values)
        ]
    )
    summary = summarise(measured, [fact])
    p_out = summary.set_index("window")["p_out_fresh"]
    assert p_out["2025-2034"] < 1e-12 and np.isnan(p_out["2045-2054"])
    draws = np.random.default_rng(0).normal(0.061, 0.004, (200_000, 3)).mean(axis=1)
    simulated = np.mean((draws < 0.02) | (draws > 0.06))
    assert p_out["2035-2044"] == pytest.approx(simulated, abs=0.005)
    assert 0.5 < p_out["2035-2044"] < 0.8
    outlook = fresh_seed_outlook(summary)
    assert outlook.seeds == 3 and outlook.fact_decades == 2
    assert outlook.expected_out == pytest.approx(p_out["2035-2044"], abs=1e-12)
    assert outlook.all_in == pytest.approx(1 - p_out["2035-2044"], abs=1e-12)
    centred = np.random.default_rng(1).normal(0.04, 0.004, (200_000, 3)).mean(axis=1)
    assert outlook.centred_expected_out == pytest.approx(
        np.mean((centred < 0.02) | (centred > 0.06)), abs=1e-3
    )
    assert outlook.centred_expected_out < 1e-6 < outlook.expected_out
    twelve = fresh_seed_outlook(summary, seeds=12)  # sets of 12 seeds at the measured spreads
    draws = np.random.default_rng(2).normal(0.061, 0.004, (200_000, 12)).mean(axis=1)
    assert twelve.seeds == 12
    assert twelve.expected_out == pytest.approx(np.mean(draws > 0.06), abs=0.005)
    assert twelve.expected_out > outlook.expected_out  # more seeds: the mean's side is surer


def test_a_fact_whose_args_do_not_fit_its_measure_is_refused(tmp_path):
    text = (Path(relocsim.__file__).parent / "data" / "facts.toml").read_text()
    path = tmp_path / "facts.toml"
    for bad, message in (
        ("years = 0 }", "'args.years': value 0; expected a whole number"),
        ('years = "five" }', "'args.years': value 'five'"),
        ("yeras = 5 }", "does not fit jobs_growth"),
    ):
        path.write_text(text.replace("years = 5 }", bad))
        with pytest.raises(FactError, match=message):
            load_facts(path)


def test_validate_says_when_the_seeds_do_not_decide_a_range():
    """A seed mean is judged in or out of its range; when its 95% confidence interval over the
    seeds holds an end of the range, other seeds could judge it the other way: the summary says
    so, and how many seeds would decide it at the same spread (with that many, the interval
    leaves the end out)."""
    from scipy.stats import t as student_t

    from relocsim.validate import markdown_table, summarise

    fact = next(f for f in load_facts() if f.id == "relocation_rate")  # 0.02 - 0.06
    rows = {
        "2025-2034": [0.039, 0.040, 0.041],  # well inside: decided
        "2035-2044": [0.057, 0.061, 0.065],  # mean 0.061 just above 0.06: undecided
        "2045-2054": [0.05],  # one seed: no spread to judge
    }
    measured = pd.DataFrame(
        [
            {"seed": s, "fact": fact.id, "window": w, "value": v}
            for w, values in rows.items()
            for s, v in enumerate(values)
        ]
    )
    summary = summarise(measured, [fact]).set_index("window")
    inside, edge, single = (summary.loc[w] for w in rows)
    assert inside["in_range"] and inside["decided"] is True
    assert np.isnan(inside["seeds_to_decide"])
    assert not edge["in_range"] and edge["decided"] is False
    assert edge["margin_se"] == pytest.approx(-0.001 / (0.004 / np.sqrt(3)))
    n = int(edge["seeds_to_decide"])
    assert n > 3
    assert student_t.ppf(0.975, n - 1) * 0.004 / np.sqrt(n) <= 0.001  # decided with n seeds
    assert student_t.ppf(0.975, n - 2) * 0.004 / np.sqrt(n - 1) > 0.001 or n == 4
    assert single["decided"] is None and np.isnan(single["se"])
    table = markdown_table(summary.reset_index())
    assert "0.061 (0.057-0.065) **no?**" in table and "0.04 (0.039-0.041) yes |" in table
