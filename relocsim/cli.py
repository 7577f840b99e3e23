"""Command line: ``relocsim run | sweep | analyze | dashboard | bench choice|model | scenarios``.

``run`` simulates a scenario with a progress bar, prints a summary and writes the five tables plus
a figure. The other commands live in their own modules and are imported only when used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from relocsim.scenario import ScenarioError, builtin_scenarios


class CliError(Exception):
    """A command-line argument the program cannot use."""


def parse_set(values: Sequence[str]) -> dict[str, str]:
    """Turn ``["a.b=1", ...]`` into ``{"a.b": "1"}``; reject items without ``=``."""
    overrides = {}
    for item in values:
        path, sep, value = item.partition("=")
        if not sep or not path.strip():
            raise CliError(
                f"--set {item!r}: expected PATH=VALUE, e.g. policies.aid_portability.mode=clawback"
            )
        overrides[path.strip()] = value.strip()
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
        help="override a scenario field by its dotted path (repeatable)",
    )
    run.add_argument("--out", default="out", help="folder for the tables and the figure")
    run.add_argument("--threads", type=int, default=None, help="kernel threads (default: all)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_command(args: argparse.Namespace) -> int:
    """``relocsim run``."""
    from tqdm import tqdm

    from relocsim.model import RelocationModel
    from relocsim.plots import plot_run
    from relocsim.summary import summary_table

    if args.years is not None and args.years < 0:
        raise CliError(f"--years {args.years}: expected a number of years >= 0")
    started = time.perf_counter()
    model = RelocationModel(
        args.scenario, seed=args.seed, overrides=parse_set(args.set), threads=args.threads
    )
    years = model.scenario.years if args.years is None else args.years
    with tqdm(total=years, unit="year", desc=model.scenario.name, disable=args.no_progress) as bar:
        results = model.run(years, progress=lambda year: bar.update(1))
    out = Path(args.out)
    written = results.save(out)
    figure = plot_run(results, out / "jobs_and_delocalisations.png")
    print(summary_table(results).to_string())
    print(
        f"\n{years} years in {time.perf_counter() - started:.1f} s; wrote "
        + ", ".join(str(p) for p in [*written, figure])
    )
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    return int(importlib.import_module(module).main(argv) or 0)


DELEGATED = {
    "sweep": "relocsim.experiments.cli",
    "analyze": "relocsim.experiments.cli",
    "dashboard": "relocsim.dashboard.cli",
    "bench": "relocsim.bench",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relocsim`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["bench", "model"]:
        return _delegate("relocsim.bench_model", argv[2:])
    if argv and argv[0] in DELEGATED:
        rest = argv if argv[0] in ("sweep", "analyze") else argv[1:]
        return _delegate(DELEGATED[argv[0]], rest)
    parser = argparse.ArgumentParser(prog="relocsim", description=__doc__.splitlines()[0])
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
        return run_command(args)
    except (ScenarioError, CliError) as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
