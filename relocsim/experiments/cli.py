"""``relocsim sweep STUDY``, ``relocsim compare --set PATH=VALUE`` and ``relocsim analyze DIR``.

``sweep`` runs (or resumes) a study and writes ``DIR/results.parquet``; with ``--precision X``
it adds replications until every contrast the study names has a 95% interval narrower than X.
``compare`` does the same for one policy change against the baseline, paired by seed
(:mod:`relocsim.experiments.compare`).
``analyze`` writes tables of outcomes by variant with 95% confidence intervals, the paired
contrasts with their minimum detectable effects, Sobol indices and PNG plots.
Bad input exits with code 2 and a ``relocsim: error: ...`` message; an interrupted sweep exits
with 130 (Ctrl-C) or 1, telling how to resume.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relocsim.experiments.errors import StudyError
from relocsim.experiments.lock import SweepLockedError
from relocsim.safeio import OutputError
from relocsim.scenarios import ScenarioError


def _integer_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value}: expected an integer >= {low}")
        return value

    return parse


_positive = _integer_at_least(1)
_non_negative = _integer_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{value}: expected a finite number > 0")
    return value


def _add_run_options(parser: argparse.ArgumentParser, default_out: str) -> None:
    """Where and how a study's runs go, shared by ``sweep`` and ``compare``."""
    parser.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="local worker processes (default: all cores; 1: in this process)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on an existing Dask scheduler, e.g. tcp://10.0.0.1:8786",
    )
    where.add_argument(
        "--dask-local",
        metavar="N",
        type=_positive,
        default=None,
        help="start a Dask LocalCluster with N single-threaded workers",
    )
    parser.add_argument(
        "--years", type=_non_negative, default=None, help="simulated years (default: the study's)"
    )
    parser.add_argument("--out", default=None, help=f"output folder (default: {default_out})")
    parser.add_argument(
        "--precision",
        type=_positive_float,
        default=None,
        metavar="X",
        help="add replications until the 95%% interval of every contrast is narrower than X "
        "(outcome units)",
    )
    parser.add_argument(
        "--max-replications",
        type=_positive,
        default=30,
        metavar="N",
        help="cap on replications with --precision (default: 30)",
    )
    parser.add_argument(
        "--retry-failed", action="store_true", help="run again the runs recorded as failed"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the study and print the number of runs, run nothing",
    )
    parser.add_argument(
        "--parameter-draws",
        type=int,
        default=None,
        metavar="K",
        help="cross every design point with K choice-coefficient vectors drawn from an "
        "estimate (--estimates DIR or the study's [parameter_draws]); the same K in every variant",
    )
    parser.add_argument(
        "--estimates",
        default=None,
        metavar="DIR",
        help="estimates folder of the parameter draws (relocsim estimate --out DIR, or "
        "relocsim calibrate --out DIR)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _compare_parser(sub: argparse._SubParsersAction) -> None:
    from relocsim.experiments.compare import DEFAULT_OUTPUTS, DEFAULT_SEEDS, NAME

    compare = sub.add_parser(
        "compare",
        help="a policy change against the baseline: paired differences over seeds with their "
        "95%% intervals",
    )
    compare.add_argument(
        "--set",
        dest="policy",
        action="append",
        required=True,
        metavar="PATH=VALUE",
        help="the policy change (dotted scenario path, as relocsim run --set); repeatable",
    )
    compare.add_argument(
        "--base-set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a change to both the baseline and the policy (where --set names the same path, "
        "the policy takes --set's value); repeatable",
    )
    compare.add_argument(
        "--scenario",
        default="brussels-metro",
        help="built-in name or folder (default: %(default)s)",
    )
    compare.add_argument(
        "--seeds",
        type=_positive,
        default=DEFAULT_SEEDS,
        help="seed pairs: each seed runs the baseline and the policy (default: %(default)s)",
    )
    compare.add_argument("--seed", type=_non_negative, default=0, help="first seed (default: 0)")
    compare.add_argument(
        "--outputs",
        nargs="+",
        default=list(DEFAULT_OUTPUTS),
        metavar="NAME",
        help="built-in outcomes to compare (default: " + ", ".join(DEFAULT_OUTPUTS) + ")",
    )
    _add_run_options(
        compare,
        f"sweeps/{NAME}; each change gets a folder in it, and the runs of the same scenario and "
        "seed are reused across them",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relocsim")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="run or resume the runs of a study file")
    sweep.add_argument("study", help="study file, e.g. experiments/aid_portability.toml")
    _add_run_options(sweep, "sweeps/<study>")
    sweep.add_argument(
        "--replications",
        type=_positive,
        default=None,
        help="seeds per design point (default: the study's)",
    )
    _compare_parser(sub)
    analyze = sub.add_parser("analyze", help="tables, Sobol indices and plots of a sweep")
    analyze.add_argument("dir", help="a sweep's output folder (holding results.parquet)")
    analyze.add_argument(
        "--outputs",
        nargs="+",
        default=None,
        help="outcomes to analyse (default: all of the study's)",
    )
    analyze.add_argument("--no-plots", action="store_true", help="tables only")
    return parser


def compare_command(args: argparse.Namespace, argv: list[str]) -> int:
    """``relocsim compare``: write the study of the policy change and run it as a sweep."""
    from relocsim.cli import CliError, parse_set
    from relocsim.experiments.compare import (
        NAME,
        compare_folder,
        compare_study,
        compare_study_text,
    )

    try:
        policy = parse_set(args.policy)
    except CliError as exc:
        raise StudyError(str(exc)) from None
    try:
        baseline = parse_set(args.base_set)
    except CliError as exc:
        raise StudyError(str(exc).replace("--set", "--base-set", 1)) from None
    # a path in both: the baseline has --base-set's value, the policy --set's (a study's
    # variant overrides its common overrides)
    same = sorted(path for path in set(policy) & set(baseline) if policy[path] == baseline[path])
    if same:
        raise StudyError(
            f"{same[0]}: given to both --set and --base-set with the same value "
            f"{policy[same[0]]!r}, so the policy does not change it; keep one"
        )
    args.study = compare_study(
        compare_study_text(
            args.scenario,
            policy,
            baseline,
            years=args.years,
            seeds=args.seeds,
            seed=args.seed,
            outputs=args.outputs,
        )
    )
    args.replications = None
    root = Path(args.out) if args.out else Path("sweeps") / NAME
    args.out, args.runs = compare_folder(root, args.scenario, policy, baseline), root / "runs"
    code = sweep_command(args, argv)
    if code == 0 and not args.dry_run:
        from relocsim.experiments.analysis import analyze

        report = analyze(args.out)
        print("\nwrote " + ", ".join(str(path) for path in report.files))
    return code


def sweep_command(args: argparse.Namespace, argv: list[str]) -> int:
    from relocsim.experiments.runner import Sweep

    sweep = Sweep(
        args.study,
        years=args.years,
        replications=args.replications,
        parameter_draws=args.parameter_draws,
        estimates=args.estimates,
    )
    plan = sweep.plan
    if plan.draws is not None:
        print(plan.draws.describe(), file=sys.stderr)
    if args.dry_run:
        draws = f" x {plan.draws.count} parameter draws" if plan.draws is not None else ""
        print(
            f"{sweep.study.source}: valid; {len(plan.runs)} runs "
            f"({len(plan.unique_keys)} distinct) "
            f"of {plan.runs[0].years} years over {len(set(r.variant for r in plan.runs))} "
            f"variant(s), {sweep.study.replications} replication(s){draws}"
        )
        return 0
    options = {
        "workers": args.workers,
        "dask_scheduler": args.dask_scheduler,
        "dask_local": args.dask_local,
        "retry_failed": args.retry_failed,
        "runs": getattr(args, "runs", None),
        "progress": not args.no_progress,
        "command": "relocsim " + " ".join(argv),
    }
    precise = None
    if args.precision is not None:
        from relocsim.experiments.power import run_to_precision
        from relocsim.experiments.runner import run_sweep

        if not sweep.study.contrasts:
            raise StudyError(
                f"{args.study}: --precision needs contrasts; name them in the study "
                "([contrasts.NAME] b = VARIANT, a = VARIANT)"
            )
        precise = run_to_precision(
            sweep.study,
            args.out,
            args.precision,
            args.max_replications,
            run_sweep,
            report=lambda line: print(line, file=sys.stderr),
            **options,
        )
        result = precise.result
    else:
        result = sweep.run(args.out, **options)
    print(
        f"{result.out / 'results.parquet'}: {len(result.table)} runs "
        f"({result.ran} run now, {result.skipped} already done, {result.failed} failed, "
        f"{result.pending} pending) in {result.elapsed_s:.1f} s"
    )
    if result.failed:
        print(f"\nfailed runs ({result.failed}; tracebacks in {result.out / 'failures.csv'}):")
        shown = result.failures[
            ["variant", "point", "replication", "seed", *plan.parameters, "error"]
        ]
        print(shown.head(20).to_string(index=False))
    if not result.interrupted:
        from relocsim.experiments.analysis import variant_grid_parameters, variant_table

        ok = result.table[result.table["status"] == "ok"]
        if len(ok):
            print()
            print(
                variant_table(
                    ok, sweep.study.output_names, variant_grid_parameters(sweep.study)
                ).to_string(float_format=lambda v: f"{v:,.4g}")
            )
        if sweep.study.contrasts and len(ok):
            _print_contrasts(sweep, result.table, precise, args.precision)
        return 0
    print(
        f"\nrelocsim: sweep stopped: {result.interrupted}. {result.pending} runs pending; "
        "run the same command again to resume.",
        file=sys.stderr,
    )
    return 130 if "Ctrl-C" in result.interrupted else 1


def _print_contrasts(sweep: Any, table: Any, precise: Any, precision: float | None) -> None:
    from relocsim.experiments.power import contrast_table, describe

    contrasts = (
        precise.contrasts
        if precise is not None
        else contrast_table(sweep.study, table, sweep.plan.parameters)
    )
    print("\nContrasts (b - a, paired by seed): mean [95% CI], sd of the difference, n, MDE")
    print(describe(contrasts))
    if precise is not None:
        state = "reached" if precise.reached else "NOT reached (cap --max-replications)"
        print(
            f"\nprecision {precision:,.4g}: {state} with {precise.replications} replications; "
            f"widest interval {contrasts['ci_width'].max():,.4g}"
        )


def analyze_command(args: argparse.Namespace) -> int:
    from relocsim.experiments.analysis import analyze

    report = analyze(Path(args.dir), outputs=args.outputs, plots=not args.no_plots)
    print(report.text)
    return 0


def main(argv: list[str]) -> int:
    """Entry point of ``relocsim sweep ...`` and ``relocsim analyze ...``.

    Args:
        argv: the arguments, starting with the subcommand name.

    Returns:
        The exit code: 0 done, 1 stopped by a backend failure (resumable) or another sweep
        holding the output folder, 2 bad input, 130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "sweep":
            return sweep_command(args, list(argv))
        if args.command == "compare":
            return compare_command(args, list(argv))
        return analyze_command(args)
    except (StudyError, ScenarioError, FileNotFoundError, OutputError) as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2
    except SweepLockedError as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("relocsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
