"""Runs of a scenario measured against the fact registry, and the store that keeps them.

``relocsim validate`` runs a scenario for several seeds, ``relocsim calibrate`` runs it for
parameter vectors x seeds; both measure every fact on each run (:func:`measure_run`). Each
finished run's measured facts are written at once to the output folder's store
(:class:`RunStore`, one Parquet file per run, atomic), so a command interrupted (Ctrl-C, a dead
worker, a crash) and run again with the same output folder simulates only what it had not
finished.

A run's key hashes what produced it (:func:`run_key`): the scenario's content (not the folder it
was loaded from), the overrides, the seed, the years and windows, the fact registry, and the
installed code (version and source hash, as sweeps and checkpoints): a result of other code or
of another scenario is never taken for the current one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

import relocsim
from relocsim.facts import Fact, measure_facts, radius_of
from relocsim.provenance import code_hash, scenario_hash
from relocsim.scenarios import Scenario


@dataclass(frozen=True)
class FactRun:
    """One simulation whose facts are measured.

    Attributes:
        seed: the run's seed.
        years: simulated years.
        overrides: dotted-path overrides of the base scenario.
        windows: ``(first, last)`` year windows to measure (empty: decades of the run).
        facts: the facts to measure (empty: the shipped registry).
    """

    seed: int
    years: int
    overrides: Mapping[str, Any] = field(default_factory=dict)
    windows: tuple[tuple[int, int], ...] = ()
    facts: tuple[Fact, ...] = ()


def measure_run(task: FactRun, base: Scenario) -> pd.DataFrame:
    """Simulate one run (one kernel thread) and measure every fact; a top-level work function
    for the sweep backends.

    Returns:
        :func:`measure_facts`'s table with a ``seed`` column.
    """
    from relocsim.model import RelocationModel

    model = RelocationModel(base, seed=task.seed, overrides=dict(task.overrides), threads=1)
    results = model.run(task.years)
    table = measure_facts(
        results,
        years=list(task.windows) or None,
        facts=list(task.facts) or None,
        radius_km=radius_of(model.scenario),
    )
    table.insert(0, "seed", task.seed)
    return table


def digest(payload: Any) -> str:
    """SHA-256 of a JSON rendering of ``payload`` (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def base_fingerprint(
    base: Scenario,
    years: int,
    windows: tuple[tuple[int, int], ...],
    facts: tuple[Fact, ...],
) -> str:
    """What every run of a command shares: the scenario's content, the years, the windows, the
    fact registry and the installed code."""
    return digest(
        {
            "scenario": scenario_hash(base),  # its content, not where it lives
            "years": years,
            "windows": windows,
            "facts": repr(facts),
            "version": relocsim.__version__,
            "code": code_hash(),
        }
    )


def run_key(fingerprint: str, overrides: Mapping[str, Any], seed: int) -> str:
    """The key of one run: the shared fingerprint, the run's overrides (floats to 12 digits,
    so a value that went through a file is the same run) and its seed."""
    rounded = {k: round(v, 12) if isinstance(v, float) else v for k, v in overrides.items()}
    return digest({"base": fingerprint, "overrides": rounded, "seed": seed})


class RunStore:
    """Measured facts of finished runs on disk, one Parquet file per run.

    A file is written to a temporary name and renamed, so a half-written run is never read as
    done; ``simulations.log`` lists every run this store took in, one key a line.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "simulations.log"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.parquet"

    def get(self, key: str) -> pd.DataFrame | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return pd.read_parquet(path)
        except Exception:  # a damaged file is a run to simulate again
            return None

    def put(self, key: str, table: pd.DataFrame) -> None:
        from relocsim.experiments.runner import write_atomic

        write_atomic(table, self.path(key))
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(key + "\n")


@dataclass(frozen=True)
class _Keyed:
    key: str
    run: FactRun


def _measure_keyed(task: _Keyed, base: Scenario) -> tuple[str, pd.DataFrame]:
    """Work function of the backends: the run's key and its measured facts."""
    return task.key, measure_run(task.run, base)


@dataclass
class MeasuredRuns:
    """What :func:`measure_runs` returns.

    Attributes:
        tables: every run's measured facts, by key.
        simulated: runs simulated by this call.
        reused: runs found in the store.
    """

    tables: dict[str, pd.DataFrame]
    simulated: int
    reused: int


def measure_runs(
    base: Scenario,
    runs: Mapping[str, FactRun],
    store: RunStore,
    workers: int = 1,
    dask_scheduler: str | None = None,
    dask_local: int | None = None,
    progress: bool = True,
    desc: str = "runs",
    on_run: Callable[[int], None] | None = None,
) -> MeasuredRuns:
    """Measured facts of every run (by key): from the store, or simulated on a sweep backend
    and stored as each finishes.

    Args:
        on_run: called with the number of runs simulated so far, after each is stored.
    """
    from tqdm import tqdm

    from relocsim.experiments import backends

    tables = {key: store.get(key) for key in runs}
    todo = [_Keyed(key, runs[key]) for key, table in tables.items() if table is None]
    simulated = 0
    if todo:
        results, _ = backends.map_tasks(
            _measure_keyed, todo, base, workers, dask_scheduler, dask_local
        )
        with tqdm(total=len(todo), unit="run", desc=desc, disable=not progress) as bar:
            for key, table in results:
                store.put(key, table)
                tables[key] = table
                simulated += 1
                bar.update(1)
                if on_run is not None:
                    on_run(simulated)
    return MeasuredRuns(tables, simulated, len(runs) - len(todo))


def report_interrupted(exc: BaseException, folder: Path) -> int:
    """Tell the user a command stopped (Ctrl-C, a dead worker) and that its finished runs wait
    in ``folder``; returns the command's exit status (130 for Ctrl-C, as a shell gives)."""
    print(
        f"\ninterrupted ({type(exc).__name__}: {exc}); every finished run is stored in "
        f"{folder}: run the same command again to resume",
        file=sys.stderr,
    )
    return 130 if isinstance(exc, KeyboardInterrupt) else 1
