"""Sweep throughput: runs per minute of the default scenario on each backend.

``python -m relocsim.experiments.bench [--runs 4] [--years 30]`` runs the same replications of
the default scenario in this process (1 worker), on a local pool of 2 processes and on a Dask
``LocalCluster`` with 2 workers, and prints runs per minute and the scheduling overhead per run:
``(wall time x workers - sum of the runs' own times) / runs`` (process start-up, pickling,
scheduling and the idle tail of the last runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from relocsim.experiments.outcomes import BUILTIN
from relocsim.experiments.runner import run_sweep
from relocsim.experiments.study import Study


def bench(runs: int = 4, years: int = 30, scenario: str = "brussels-metro") -> pd.DataFrame:
    """Measure every backend on ``runs`` runs of ``years`` years; return one row per backend."""
    backends = [
        ("local, 1 worker (in process)", {"workers": 1}, 1),
        ("local pool, 2 workers", {"workers": 2}, 2),
        ("Dask LocalCluster, 2 workers", {"dask_local": 2}, 2),
    ]
    rows = []
    for label, options, workers in backends:
        study = Study(
            name="bench",
            scenario=scenario,
            years=years,
            seeds=list(range(runs)),
            outputs=[BUILTIN["brussels_jobs"]],
        )
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = run_sweep(study, Path(tmp), progress=False, **options)
            wall = time.perf_counter() - started
        busy = float(result.table["elapsed_s"].sum())
        rows.append(
            {
                "backend": label,
                "runs": runs,
                "years": years,
                "wall_s": round(wall, 1),
                "runs_per_minute": round(60 * runs / wall, 2),
                "mean_run_s": round(busy / runs, 2),
                "overhead_per_run_s": round((wall * workers - busy) / runs, 2),
                "failed": result.failed,
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relocsim.experiments.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--runs", type=int, default=4, help="runs per backend")
    parser.add_argument("--years", type=int, default=30, help="years per run")
    parser.add_argument("--scenario", default="brussels-metro")
    args = parser.parse_args(argv)
    print(bench(args.runs, args.years, args.scenario).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
