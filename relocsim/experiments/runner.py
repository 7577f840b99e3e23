"""Running a sweep: execution, atomic per-run storage, resume, and the combined results table.

Layout of a sweep's output folder ``DIR``::

    DIR/runs/<key>.parquet   one row per finished run (outcomes or error + traceback),
                             written to a temporary file then renamed (os.replace); another
                             folder can be named (``runs=``), which sweeps may share: a run is
                             keyed by what produced it, so each reuses the others' runs
    DIR/study.toml           copy of the study file
    DIR/provenance.json      relocsim/Python/Mesa versions, command, times, counts
    DIR/results.parquet      every planned run: variant, point, replication, seed, parameters
                             as columns, status (ok | failed | pending), outcomes
    DIR/failures.csv         the failed runs with their parameters and tracebacks (if any)
    DIR/parameter_draws.csv  with parameter draws: the coefficient vector of each draw

Running the same command again skips the runs whose file exists and holds every requested
outcome; a half-written file never carries the final name, so it is never read as a result.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import relocsim
from relocsim.experiments import backends
from relocsim.experiments.design import Plan, plan_runs
from relocsim.experiments.lock import sweep_lock
from relocsim.experiments.outcomes import OutcomeSpec, compute_outcomes
from relocsim.experiments.study import Study, load_study, set_draws
from relocsim.provenance import code_hash
from relocsim.safeio import check_out_dir, remove_stale_temporaries
from relocsim.scenarios import Scenario

META_COLUMNS = ("variant", "point", "replication", "seed", "years")
RUN_COLUMNS = ("key", "status", "error", "traceback", "elapsed_s")


@dataclass(frozen=True)
class Task:
    """What a worker needs for one run (the base scenario travels separately, once)."""

    key: str
    seed: int
    years: int
    overrides: dict[str, Any]
    outputs: tuple[OutcomeSpec, ...]


def execute_run(task: Task, base: Scenario) -> dict[str, Any]:
    """Simulate one run and compute its outcomes; never raises for a failing run.

    Returns:
        A flat record: key, seed, years, overrides (JSON), status (``ok`` or ``failed``),
        error, traceback, elapsed_s and one value per outcome.
    """
    from relocsim.model import RelocationModel

    started = time.perf_counter()
    record: dict[str, Any] = {
        "key": task.key,
        "seed": task.seed,
        "years": task.years,
        "overrides": json.dumps(task.overrides, sort_keys=True, default=str),
        "status": "ok",
        "error": "",
        "traceback": "",
    }
    values = {spec.name: float("nan") for spec in task.outputs}
    try:
        model = RelocationModel(base, seed=task.seed, overrides=task.overrides, threads=1)
        results = model.run(task.years)
        values = compute_outcomes(results.tables(), list(task.outputs))
    except Exception as exc:  # a failing run is recorded, the sweep goes on
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    record["elapsed_s"] = time.perf_counter() - started
    record.update(values)
    return record


def write_atomic(table: pd.DataFrame, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write a DataFrame as Parquet to a temporary file, fsync it, then rename it to ``path``."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        arrow = arrow.replace_schema_metadata(
            {
                **(arrow.schema.metadata or {}),
                **{k.encode(): v.encode() for k, v in metadata.items()},
            }
        )
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_text_atomic(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_finished(
    runs_dir: Path, keys: list[str], outputs: list[str], retry_failed: bool
) -> dict[str, dict[str, Any]]:
    """The stored records of the runs already done (unreadable or incomplete files are redone)."""
    done = {}
    for key in keys:
        path = runs_dir / f"{key}.parquet"
        if not path.exists():
            continue
        try:
            record = pd.read_parquet(path).iloc[0].to_dict()
        except Exception:  # a damaged file is a run to redo
            continue
        if any(name not in record for name in outputs):
            continue
        if record.get("status") == "failed" and retry_failed:
            continue
        done[key] = record
    return done


@dataclass
class SweepResult:
    """What a sweep produced.

    Attributes:
        table: the combined results (one row per planned run).
        out: the output folder.
        ran: runs simulated by this call.
        skipped: runs found finished from an earlier call.
        failed: number of failed runs in the table.
        pending: runs not done (interrupted sweep).
        elapsed_s: wall time of this call.
        interrupted: why the sweep stopped early ('' when it completed).
    """

    table: pd.DataFrame
    out: Path
    ran: int
    skipped: int
    failed: int
    pending: int
    elapsed_s: float
    interrupted: str = ""

    @property
    def failures(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "failed"]


def combine(plan: Plan, records: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per planned run: meta columns, parameters, status, outcomes."""
    outputs = plan.study.output_names
    rows = []
    for run in plan.runs:
        record = records.get(run.key)
        row: dict[str, Any] = {
            "variant": run.variant,
            "point": run.point,
            "replication": run.replication,
            "seed": run.seed,
            "years": run.years,
            **({"draw": run.draw} if plan.draws is not None else {}),
            **run.params,
        }
        if record is None:
            row.update(status="pending", error="", elapsed_s=float("nan"))
            row.update({name: float("nan") for name in outputs})
        else:
            row.update(
                status=record["status"],
                error=record.get("error", ""),
                elapsed_s=record.get("elapsed_s", float("nan")),
            )
            row.update({name: record.get(name, float("nan")) for name in outputs})
        row["key"] = run.key
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in plan.parameters:
        if table[column].map(type).nunique() > 1:  # e.g. ints and floats: one Parquet type
            try:
                table[column] = pd.to_numeric(table[column])
            except (TypeError, ValueError):
                table[column] = table[column].astype(str)
    return table


def _failure_table(plan: Plan, table: pd.DataFrame, records: dict[str, dict]) -> pd.DataFrame:
    failed = table[table["status"] == "failed"].copy()
    failed["traceback"] = [records[k].get("traceback", "") for k in failed["key"]]
    return failed


def run_sweep(
    study: Study | str | Path,
    out: str | Path | None = None,
    *,
    workers: int | None = None,
    dask_scheduler: str | None = None,
    dask_local: int | None = None,
    years: int | None = None,
    replications: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    command: str = "",
    parameter_draws: int | None = None,
    estimates: str | None = None,
    runs: str | Path | None = None,
) -> SweepResult:
    """Run (or resume) every run of a study and write the combined table.

    Args:
        study: a :class:`Study` or the path of a study file.
        out: output folder (default: ``sweeps/<study name>``).
        workers: local worker processes (default: all cores; 1 runs in this process).
        dask_scheduler: run on the Dask cluster at this scheduler address.
        dask_local: run on a Dask ``LocalCluster`` started here with this many workers.
        years: override the study's years.
        replications: override the study's number of replications (seeds continue from the
            study's first seed).
        retry_failed: run again the runs recorded as failed.
        progress: show a progress bar.
        command: the command line, for the provenance file.
        parameter_draws: override the study's number of parameter draws K.
        estimates: override the study's estimates folder of the parameter draws.
        runs: folder of the per-run files (default ``out/runs``); sweeps sharing one reuse
            each other's runs (``relocsim compare`` keeps one for all its policies).

    Returns:
        The :class:`SweepResult`; ``results.parquet`` is written even when interrupted
        (unfinished runs have status ``pending``).

    Raises:
        StudyError: a bad study (nothing has run).
        SweepLockedError: another sweep is writing to ``out`` (nothing has run).
        relocsim.safeio.OutputError: ``out`` cannot be written (nothing has run).
    """
    started = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    if years is not None:
        study.years = years
    if replications is not None:
        study.seeds = [study.seeds[0] + r for r in range(replications)]
    set_draws(study, parameter_draws, estimates)
    plan = plan_runs(study)
    out = Path(out) if out is not None else Path("sweeps") / study.name
    check_out_dir(out)
    runs_dir = Path(runs) if runs is not None else out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    with sweep_lock(out):
        return _run_locked(
            study,
            plan,
            out,
            runs_dir,
            workers,
            dask_scheduler,
            dask_local,
            retry_failed,
            progress,
            command,
            started,
        )


def _run_locked(
    study: Study,
    plan: Plan,
    out: Path,
    runs_dir: Path,
    workers: int | None,
    dask_scheduler: str | None,
    dask_local: int | None,
    retry_failed: bool,
    progress: bool,
    command: str,
    started: float,
) -> SweepResult:
    """The body of :func:`run_sweep`, run while holding the lock of ``out``."""
    from tqdm import tqdm

    remove_stale_temporaries(runs_dir)  # only dead writers': the folder may be shared
    if study.text:
        write_text_atomic(study.text, out / "study.toml")
    if plan.draws is not None:
        write_text_atomic(plan.draws.table().to_csv(index=False), out / "parameter_draws.csv")

    keys = plan.unique_keys
    records = read_finished(runs_dir, keys, study.output_names, retry_failed)
    todo = [k for k in keys if k not in records]
    first = {}
    for run in plan.runs:
        first.setdefault(run.key, run)
    tasks = [
        Task(k, first[k].seed, first[k].years, first[k].overrides, tuple(study.outputs))
        for k in todo
    ]
    results, backend_name = backends.map_tasks(
        execute_run, tasks, plan.base, workers, dask_scheduler, dask_local
    )

    ran, interrupted = 0, ""
    bar = tqdm(
        total=len(keys),
        initial=len(keys) - len(tasks),
        unit="run",
        desc=study.name,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        if tasks:
            for record in results:
                write_atomic(pd.DataFrame([record]), runs_dir / f"{record['key']}.parquet")
                records[record["key"]] = record
                ran += 1
                bar.update(1)
                if record["status"] == "failed":
                    bar.write(f"run {record['key']} failed: {record['error']}")
    except KeyboardInterrupt:
        interrupted = "interrupted (Ctrl-C)"
    except backends.BackendError as exc:
        interrupted = str(exc)
    finally:
        bar.close()
        if hasattr(results, "close"):
            results.close()

    table = combine(plan, records)
    write_atomic(
        table,
        out / "results.parquet",
        {"relocsim_version": relocsim.__version__, "study": study.text},
    )
    failures = _failure_table(plan, table, records)
    failures_path = out / "failures.csv"
    if len(failures):
        failures.to_csv(failures_path, index=False)
    elif failures_path.exists():
        failures_path.unlink()
    elapsed = time.perf_counter() - started
    result = SweepResult(
        table=table,
        out=out,
        ran=ran,
        skipped=len(keys) - len(tasks),
        failed=int((table["status"] == "failed").sum()),
        pending=int((table["status"] == "pending").sum()),
        elapsed_s=elapsed,
        interrupted=interrupted,
    )
    provenance = {
        "relocsim_version": relocsim.__version__,
        "code_hash": code_hash(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "mesa_version": _version("mesa"),
        "study": study.source,
        "scenario": study.scenario,
        "command": command,
        "backend": backend_name,
        "planned_runs": len(plan.runs),
        "unique_runs": len(keys),
        "ran": ran,
        "skipped": result.skipped,
        "failed": result.failed,
        "pending": result.pending,
        "elapsed_s": round(elapsed, 2),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "interrupted": interrupted,
    }
    if plan.draws is not None:
        provenance["parameter_draws"] = {
            "estimates": str(plan.draws.estimates.directory),
            "estimates_sha256": plan.draws.estimates.sha256,
            "draws": plan.draws.count,
            "seed": plan.draws.seed,
            "note": plan.draws.describe(),
        }
    write_text_atomic(json.dumps(provenance, indent=2), out / "provenance.json")
    return result


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


class Sweep:
    """A study ready to run: ``Sweep("experiments/audi_site.toml").run(out="sweeps/audi")``.

    Attributes:
        study: the parsed study.
        plan: every run, validated against the base scenario at construction.
    """

    def __init__(self, study: Study | str | Path, **changes: Any) -> None:
        self.study = study if isinstance(study, Study) else load_study(study)
        if changes.get("years") is not None:
            self.study.years = changes["years"]
        if changes.get("replications") is not None:
            self.study.seeds = [self.study.seeds[0] + r for r in range(changes["replications"])]
        set_draws(self.study, changes.get("parameter_draws"), changes.get("estimates"))
        self.plan = plan_runs(self.study)

    def __len__(self) -> int:
        return len(self.plan.runs)

    def run(self, out: str | Path | None = None, **options: Any) -> SweepResult:
        """Run or resume the sweep (options as :func:`run_sweep`)."""
        return run_sweep(self.study, out, **options)
