"""Execution backends: where the runs of a sweep execute.

Each backend maps a top-level (importable, picklable) work function over tasks and yields the
results as they finish, in any order:

- :func:`serial`: in this process (``workers=1``);
- :func:`process_pool`: a local pool of spawned processes (Mesa 3.3 forces the ``spawn`` start
  method; scripts calling it need an ``if __name__ == "__main__":`` guard);
- :func:`dask`: a Dask ``distributed`` cluster, either a ``LocalCluster`` started here or an
  existing scheduler; the base scenario is scattered once to every worker.

Results do not depend on the backend: every run is seeded from the study and runs its kernel
with one thread.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

WorkFunction = Callable[[Any, Any], Any]


class BackendError(RuntimeError):
    """The backend cannot go on (a worker process died, the scheduler is unreachable)."""


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def serial(fn: WorkFunction, tasks: Iterable[Any], shared: Any) -> Iterator[Any]:
    """Run every task here, one after the other."""
    for task in tasks:
        yield fn(task, shared)


def process_pool(
    fn: WorkFunction, tasks: Iterable[Any], shared: Any, workers: int
) -> Iterator[Any]:
    """Run the tasks on a pool of ``workers`` spawned processes, yielding results as they finish.

    At most ``2 * workers`` tasks are queued at a time, so an interrupted sweep loses little
    work. A worker that dies (killed, out of memory) raises :class:`BackendError`; the runs
    already finished are kept and the sweep resumes where it stopped.
    """
    from concurrent.futures.process import BrokenProcessPool

    pending: set[Future] = set()
    queue = iter(tasks)
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    )
    try:
        for task in queue:
            pending.add(executor.submit(fn, task, shared))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    result = future.result()
                except BrokenProcessPool as exc:
                    raise BackendError(
                        "a worker process died (killed or out of memory); the runs already "
                        "finished are saved: run the same command again to resume"
                    ) from exc
                yield result
                for task in queue:
                    pending.add(executor.submit(fn, task, shared))
                    break
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def dask(
    fn: WorkFunction,
    tasks: Iterable[Any],
    shared: Any,
    scheduler: str | None = None,
    local_workers: int | None = None,
) -> Iterator[Any]:
    """Run the tasks on a Dask cluster, yielding results as they finish.

    Args:
        fn: the work function (importable on the workers: relocsim must be installed there).
        tasks: the tasks.
        shared: an object every task needs (scattered once, broadcast to every worker).
        scheduler: address of an existing scheduler (``tcp://host:8786``).
        local_workers: start a ``LocalCluster`` with this many single-threaded worker processes.
    """
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise BackendError(
            "the Dask backend needs dask.distributed: pip install 'relocsim[experiments]'"
        ) from exc
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise BackendError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from exc
        else:
            cluster = LocalCluster(
                n_workers=local_workers or default_workers(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                host="127.0.0.1",
            )
            client = Client(cluster)
    except BackendError:
        raise
    except Exception as exc:
        raise BackendError(f"cannot start the Dask cluster: {exc}") from exc
    try:
        shared_future = client.scatter(shared, broadcast=True)
        futures = [client.submit(fn, task, shared_future, pure=False) for task in tasks]
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except Exception as exc:
                    raise BackendError(f"the Dask cluster lost a task: {exc}") from exc
        finally:
            client.cancel(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
