"""Command line: ``relocsim run | sweep | compare | analyze | dashboard | estimate | bench``.

``run`` simulates a scenario with a progress bar, prints a summary and writes the five tables plus
a figure. The other commands live in their own modules and are imported only when used.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
import typing
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from relocsim.checkpoint import CheckpointError
from relocsim.parameter_draws import ParameterDrawError
from relocsim.safeio import OutputError, check_out_dir, remove_stale_temporaries, write_atomic
from relocsim.scenarios import (
    PORTABILITY_MODES,
    SITE_OPTIONS,
    ScenarioError,
    builtin_scenarios,
)


class CliError(Exception):
    """A command-line argument the program cannot use."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``relocsim: error: ...``, exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"relocsim: error: {message} (see '{self.prog} --help')\n")


RUN_LIMITS: dict[str, tuple[int, int]] = {
    "seed": (0, 2**63 - 1),
    "threads": (1, 1024),
    "years": (0, 1000),
}
"""Allowed ranges of integer options of ``run``: seeds are non-negative 64-bit integers, at most
1,024 kernel threads, at most 1,000 simulated years (the limit of a scenario's ``years``)."""


def check_run_arguments(args: argparse.Namespace) -> None:
    """Raise CliError naming the first integer option of ``run`` outside :data:`RUN_LIMITS`."""
    for name, (low, high) in RUN_LIMITS.items():
        value = getattr(args, name, None)
        if value is not None and not low <= value <= high:
            option = "--" + name.replace("_", "-")
            raise CliError(f"{option} {value}: expected an integer in [{low}, {high}]")


class WriteError(Exception):
    """Results that could not all be written (the message says what was kept, and where)."""


def parse_set(values: Sequence[str]) -> dict[str, str]:
    """Turn ``["a.b=1", ...]`` into ``{"a.b": "1"}``; reject items without ``=`` and a path
    given twice (the last value would silently win)."""
    overrides: dict[str, str] = {}
    for item in values:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise CliError(
                f"--set {item!r}: expected PATH=VALUE, e.g. policies.aid_portability.mode=clawback"
            )
        path = path.strip()
        if path in overrides:
            raise CliError(
                f"--set {path} given twice ({overrides[path]!r} and {value.strip()!r}): keep one"
            )
        overrides[path] = value.strip()
    return overrides


def read_set_files(paths: Sequence[str]) -> dict[str, Any]:
    """Dotted-path overrides from TOML files: their ``[overrides]`` table, else the top level."""
    import tomllib

    overrides: dict[str, Any] = {}
    for path in paths:
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CliError(f"--set-file {path}: cannot read it as TOML: {exc}") from exc
        table = data.get("overrides", data)
        for key, value in table.items():
            if isinstance(value, dict):
                raise CliError(
                    f"--set-file {path}: {key!r} is a table; expected dotted keys with values, "
                    'e.g. "sectors.logistics.b_land" = 1.1'
                )
            overrides[key] = value
    return overrides


def _run_parser(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="simulate a scenario and write its tables and figure")
    run.add_argument(
        "--scenario",
        default="brussels-metro",
        help="built-in name, folder, .toml path or synthetic:n_firms=...,n_zones=...",
    )
    run.add_argument(
        "--years", type=int, default=None, help="years to simulate (default: scenario)"
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a scenario field by its dotted path (repeatable), e.g. "
        f"policies.aid_portability.mode={'|'.join(PORTABILITY_MODES)} or "
        f"zones.bxl_audi_vorst.site_option={'|'.join(SITE_OPTIONS)}",
    )
    run.add_argument(
        "--set-file",
        action="append",
        default=[],
        metavar="TOML",
        help="overrides from a TOML file of dotted paths (its [overrides] table, e.g. the "
        "estimated.toml of relocsim estimate); --set wins over it (repeatable)",
    )
    run.add_argument("--out", default="out", help="folder for the tables and the figure")
    run.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=2.0,
        metavar="MINUTES",
        help="save a resumable checkpoint in --out once MINUTES of simulation have passed since "
        "the last (default 2; 0: not by time); the same command resumes from it",
    )
    run.add_argument(
        "--checkpoint-every",
        type=int,
        default=0,
        metavar="YEARS",
        help="also save one every YEARS simulated years (default 0: not by years); with "
        "--checkpoint-minutes 0 and this 0, only when interrupted",
    )
    run.add_argument(
        "--parameter-draws",
        type=int,
        default=None,
        metavar="K",
        help="K runs, run k with choice coefficients drawn from --estimates DIR (draw k keyed by "
        "--seed and k) and seed --seed + k; writes draws.csv and draws_summary.csv",
    )
    run.add_argument(
        "--estimates",
        default=None,
        metavar="DIR",
        help="estimates folder of relocsim estimate (estimates.csv, covariance.csv, "
        "estimated.toml), or of relocsim calibrate, for --parameter-draws",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="ignore and replace a checkpoint left in --out by an interrupted run",
    )


def run_command(args: argparse.Namespace) -> int:
    """``relocsim run``: simulate, with periodic checkpoints; an interrupted run resumes."""
    from relocsim import apply_overrides, load_scenario

    if args.checkpoint_every < 0:
        raise CliError(f"--checkpoint-every {args.checkpoint_every}: expected years >= 0")
    if not args.checkpoint_minutes >= 0 or math.isinf(args.checkpoint_minutes):
        raise CliError(
            f"--checkpoint-minutes {args.checkpoint_minutes}: expected a number of minutes >= 0"
        )
    started = time.perf_counter()
    overrides = {**read_set_files(args.set_file), **parse_set(args.set)}
    base = load_scenario(args.scenario)
    # a bad scenario or override must stop the run before --out is created
    scenario = apply_overrides(base, overrides)
    if args.parameter_draws is not None or args.estimates is not None:
        return _run_draws(args, base, scenario, overrides, started)
    created = not Path(args.out).exists()
    out = check_out_dir(args.out)
    try:
        code = _simulate(args, base, overrides, args.seed, out, started)[0]
    except ScenarioError:  # found while the model is built (a burn-in's runaway births)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    if overrides and code == 0:
        print(
            "\none run of the changed scenario: its effect, paired with the baseline over seeds "
            "with a 95% interval, is what `relocsim compare --set ...` gives"
        )
    return code


def _simulate(
    args: argparse.Namespace,
    base: Any,
    overrides: dict[str, Any],
    seed: int,
    out: Path,
    started: float,
) -> tuple[int, Any]:
    """One run of ``base`` with ``overrides`` into ``out`` (resumed from its checkpoint if there
    is one). The model applies the overrides itself, so that a policy lever acts from the start
    year and not in the burn-in, as in a sweep (relocsim.steady_start).

    Returns:
        (exit code: 0 done, 130 interrupted with a checkpoint, the model).
    """
    from tqdm import tqdm

    from relocsim import __version__, checkpoint, decision_panel, event_log
    from relocsim.model import RelocationModel

    remove_stale_temporaries(out)
    _report_write_errors()
    request = {
        "scenario": args.scenario,
        "seed": seed,
        "set": sorted(overrides.items()),
        "version": __version__,
    }
    model = None if args.fresh else checkpoint.load(request, out, threads=args.threads)
    if model is None:
        model = RelocationModel(base, seed=seed, overrides=overrides, threads=args.threads)
        decision_panel.attach(model, request, spill=out / decision_panel.SPILL_FOLDER)
    else:
        print(f"resuming from the checkpoint in {out} at year {model.year}")
        model.decision_panel.spill = out / decision_panel.SPILL_FOLDER  # --out may have moved
    model.recorder.event_log.spill = out / event_log.SPILL_FOLDER
    years = model.scenario.years if args.years is None else args.years
    done = model.year - model.scenario.start_year
    schedule = checkpoint.Schedule(args.checkpoint_every, args.checkpoint_minutes)
    with (
        tqdm(
            total=years,
            initial=min(done, years),
            unit="year",
            desc=model.scenario.name,
            disable=args.no_progress,
        ) as bar,
        _stop_at_year_end() as stop,
    ):
        warned: set[str] = set()
        for _ in range(max(years - done, 0)):
            model.step()
            _flush_parts(model, warned, by_size=True)
            bar.update(1)
            simulated = model.year - model.scenario.start_year
            if stop.asked or schedule.due(simulated):
                _flush_parts(model, warned, by_size=False)  # not in the checkpoint then
                _save_checkpoint(model, request, out)
                schedule.saved()
            if stop.asked:
                bar.close()
                _write(model, request, out, years=simulated, started=started)
                print(
                    f"\ninterrupted: {simulated} years kept in {out} with a checkpoint; run "
                    "the same command again to resume",
                    file=sys.stderr,
                )
                return 130, model
    _write(model, request, out, years=years, started=started)
    checkpoint.remove(out)
    model.decision_panel.discard_spill()
    model.recorder.event_log.discard_spill()
    return 0, model


def _run_draws(
    args: argparse.Namespace,
    base: Any,
    scenario: Any,
    overrides: dict[str, Any],
    started: float,
) -> int:
    """``run --parameter-draws K --estimates DIR``: K runs, run k with coefficient draw k
    (keyed by (--seed, k)) and seed ``--seed + k``, each in ``--out/draw_<k>``; then the
    draws' table and summary. Finished draws are skipped when the same command runs again."""
    import json

    import pandas as pd

    from relocsim import parameter_draws

    if args.parameter_draws is None or args.estimates is None:
        raise CliError(
            "--parameter-draws K and --estimates DIR go together (K coefficient vectors drawn "
            "from the estimates folder of relocsim estimate or relocsim calibrate)"
        )
    draws = parameter_draws.draw_parameters(
        args.estimates, scenario, args.parameter_draws, args.seed
    )
    clash = sorted(set(parse_set(args.set)) & set(draws.overrides(0)))
    if clash:
        raise CliError(f"--set {clash[0]}: that coefficient is drawn by --parameter-draws")
    if args.seed + draws.count - 1 > RUN_LIMITS["seed"][1]:
        raise CliError(f"--seed {args.seed}: seeds up to --seed + K - 1 must fit in 63 bits")
    out = check_out_dir(args.out)
    print(draws.describe())
    rows = []
    for k in range(draws.count):
        seed = args.seed + k
        drawn = {**overrides, **draws.overrides(k)}
        folder = check_out_dir(out / f"draw_{k:0{len(str(draws.count - 1))}d}")
        request = {"seed": seed, "set": sorted(drawn.items()), "years": args.years}
        done = None if args.fresh else parameter_draws.read_done(folder, request)
        if done is None:
            print(f"\ndraw {k} of {draws.count} (seed {seed})")
            code, model = _simulate(args, base, drawn, seed, folder, started)
            if code:
                print(f"{k} of {draws.count} draws done; the same command resumes", file=sys.stderr)
                return code
            done = parameter_draws.run_measures(model.results())
            write_atomic(
                folder / parameter_draws.DONE,
                lambda path, m=done, r=request: path.write_text(
                    json.dumps({"request": r, "measures": m}, default=str)
                ),
            )
        rows.append(
            {
                "draw": k,
                "seed": seed,
                **dict(zip(draws.names, draws.values[k], strict=True)),
                **done,
            }
        )
    table = pd.DataFrame(rows)
    summary = parameter_draws.summarise_runs(table, list(done))
    write_atomic(out / "draws.csv", lambda path: table.to_csv(path, index=False))
    write_atomic(out / "draws_summary.csv", lambda path: summary.to_csv(path, index=False))
    print(
        f"\n{draws.count} runs with coefficient draws (run k: draw k, seed {args.seed} + k); "
        "spread over draws and seeds together (parameters and chance; relocsim sweep with "
        "[parameter_draws] splits them):"
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    print(f"wrote {out / 'draws.csv'}, {out / 'draws_summary.csv'} and {draws.count} run folders")
    return 0


def _report_write_errors() -> None:
    """Turn a file size limit into a write error the run can report (not a silent kill)."""
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _flush_parts(model: Any, warned: set[str], by_size: bool) -> None:
    """Move the rows of the decision panel and of the event log to their parts in --out: once
    they fill a part (``by_size``), or all of them. A store whose part cannot be written keeps
    its rows in memory and the run goes on; the tables written at its end say what could not be
    written."""
    from relocsim import decision_panel, event_log

    stores = {
        "decision panel": (model.decision_panel, decision_panel.PART_ROWS),
        "event log": (model.recorder.event_log, event_log.PART_ROWS),
    }
    for what, (store, part_rows) in stores.items():
        try:
            store.flush(part_rows if by_size else 0)
        except OutputError as exc:
            if what not in warned:
                warned.add(what)
                print(f"\nrelocsim: warning: the {what} stays in memory: {exc}", file=sys.stderr)


def _save_checkpoint(model: Any, request: dict[str, Any], out: Path) -> None:
    """Save a checkpoint; a failed write is reported and the run goes on (it can still end)."""
    from relocsim import checkpoint

    try:
        checkpoint.save(model, request, out)
    except (OutputError, CheckpointError) as exc:
        print(f"\nrelocsim: warning: no checkpoint saved: {exc}", file=sys.stderr)


class _StopRequest:
    """Set by Ctrl-C: the run stops after the year in progress, so that what it keeps is whole."""

    asked = False


@contextmanager
def _stop_at_year_end() -> Iterator[_StopRequest]:
    """Turn the first Ctrl-C into a request to stop at the end of the year; a second one aborts."""
    stop = _StopRequest()

    def ask(signum: int, frame: Any) -> None:
        if stop.asked:
            raise KeyboardInterrupt
        stop.asked = True
        print("\nstopping at the end of this year (Ctrl-C again to abort)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, ask)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _write(model: Any, request: dict[str, Any], out: Path, years: int, started: float) -> None:
    """Save the tables and the figure atomically, print the summary.

    Raises:
        WriteError: a file could not be written; what was written, and a checkpoint of the
            simulated years if one could be saved, are kept and named.
    """
    from relocsim import checkpoint
    from relocsim.plots import plot_run
    from relocsim.summary import summary_table

    results = model.results(events=False)  # the event log is written from its parts
    paths, failed = [], []
    writers = {
        f"{name}.parquet": partial(_write_parquet, table)
        for name, table in results.tables().items()
    }
    writers["events.parquet"] = model.recorder.event_log.write
    if getattr(model, "decision_panel", None) is not None:  # estimation data (decisions.parquet)
        writers.update(model.decision_panel.writers())
    if not results.yearly.empty:
        writers["jobs_and_delocalisations.png"] = partial(plot_run, results)
    for name, writer in writers.items():
        try:
            paths.append(write_atomic(out / name, writer))
        except OutputError as exc:
            failed.append(str(exc))
    if failed:
        try:
            kept = f"the {years} simulated years are kept in {checkpoint.save(model, request, out)}"
            kept += ": free some space and run the same command again to write the tables"
        except (OutputError, CheckpointError) as exc:
            kept = f"no checkpoint could be saved either ({exc})"
        written = ", ".join(p.name for p in paths) or "nothing"
        raise WriteError(f"{failed[0]}; written in {out}: {written}; {kept}")
    if not results.yearly.empty:
        print(summary_table(results).to_string())
    print(
        f"\n{years} years in {time.perf_counter() - started:.1f} s; wrote "
        + ", ".join(str(p) for p in paths)
    )


def _write_parquet(table: Any, path: Path) -> None:
    table.to_parquet(path, index=False)


def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    return int(importlib.import_module(module).main(argv) or 0)


DELEGATED = {
    "sweep": "relocsim.experiments.cli",
    "compare": "relocsim.experiments.cli",
    "analyze": "relocsim.experiments.cli",
    "dashboard": "relocsim.dashboard.cli",
    "bench": "relocsim.bench",
    "validate": "relocsim.validate",
    "calibrate": "relocsim.calibrate",
    "estimate": "relocsim.estimation.cli",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relocsim`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["bench", "model"]:
        return _delegate("relocsim.bench_model", argv[2:])
    if argv[:2] == ["bench", "estimate"]:
        return _delegate("relocsim.estimation.bench", argv[2:])
    if argv and argv[0] in DELEGATED:
        rest = argv if argv[0] in ("sweep", "compare", "analyze") else argv[1:]
        return _delegate(DELEGATED[argv[0]], rest)
    parser = _Parser(prog="relocsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _run_parser(sub)
    sub.add_parser("scenarios", help="list the built-in scenarios")
    for name in DELEGATED:
        sub.add_parser(name, help=f"see 'relocsim {name} --help'")
    args = parser.parse_args(argv)
    try:
        if args.command == "scenarios":
            print("\n".join(builtin_scenarios()))
            return 0
        check_run_arguments(args)
        return run_command(args)
    except (ScenarioError, CliError, CheckpointError, OutputError, ParameterDrawError) as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2
    except WriteError as exc:
        print(f"\nrelocsim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while the model is built, or a second one in a year
        print(
            "\nrelocsim: interrupted: the year under way is lost; a checkpoint already saved in "
            "--out is kept, and the same command resumes from it",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
