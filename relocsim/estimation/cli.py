"""``relocsim estimate DATA --spec SPEC.toml``: fit the choice coefficients to a decision panel."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from relocsim.estimation.fit import fit
from relocsim.estimation.output import write_outputs
from relocsim.estimation.panel import PanelError, read_panel
from relocsim.estimation.sampling import METHODS
from relocsim.estimation.spec import SpecError, load_spec, with_control_function
from relocsim.scenarios import ScenarioError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="relocsim estimate",
        description="Maximum-likelihood estimation of the relocation and location choice.",
    )
    p.add_argument("data", help="run folder or decisions.parquet/.csv (alternatives.* beside it)")
    p.add_argument("--spec", required=True, help="TOML spec of the coefficients to estimate")
    p.add_argument(
        "--scenario", default=None, help="scenario (default: the data's, else brussels-metro)"
    )
    p.add_argument(
        "--sample-alternatives",
        type=int,
        default=0,
        metavar="N",
        help="pools sampled per decision (0: all pools)",
    )
    p.add_argument("--sampling", choices=METHODS, default="stratified")
    p.add_argument(
        "--instrument",
        action="append",
        metavar="COLUMN",
        help="instrument column of the alternatives table: estimate with a control function "
        "for the land price (repeatable; replaces the spec's control_function)",
    )
    p.add_argument("--starts", type=int, default=1, help="starting points (diagnostic)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling and extra starts")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="estimates", help="output folder")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.sample_alternatives < 0:
            raise SpecError(f"--sample-alternatives {args.sample_alternatives}: expected >= 0")
        spec = load_spec(args.spec)
        if args.instrument:
            spec = with_control_function(spec, args.instrument, "--instrument")
        panel = read_panel(args.data)
        scenario = args.scenario or panel.provenance.get("scenario") or "brussels-metro"

        def progress(it: int, ll: float, grad: float) -> None:
            print(
                f"iteration {it:4d}  log-likelihood {ll:.6f}  max|gradient| {grad:.3e}", flush=True
            )

        result = fit(
            panel,
            scenario,
            spec,
            sample_alternatives_n=args.sample_alternatives,
            sampling=args.sampling,
            seed=args.seed,
            n_starts=args.starts,
            threads=args.threads,
            progress=progress,
        )
    except (SpecError, PanelError, ScenarioError, ValueError) as exc:
        print(f"relocsim estimate: error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    paths = write_outputs(result, args.out)
    print(f"\n{result.elapsed_s:.1f} s; wrote " + ", ".join(str(p) for p in paths))
    if not result.diagnostics.converged:
        # written all the same, to diagnose; the exit code keeps a script from using them
        print(
            f"relocsim estimate: the optimiser did not converge (max |gradient| "
            f"{result.diagnostics.grad_norm:.2e}): the estimates in {args.out} are not maximum-"
            "likelihood estimates and their standard errors do not hold (estimated.toml says "
            "converged = false)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
