"""Execution backends: where the runs of a sweep execute.

Each backend maps a top-level (importable, picklable) work function over tasks and yields the
results as they finish, in any order:

- :func:`serial`: in this process (``workers=1``);
- :func:`process_pool`: a local pool of spawned processes (Mesa 3.3 forces the ``spawn`` start
  method; scripts calling it need an ``if __name__ == "__main__":`` guard);
- :func:`dask`: a Dask ``distributed`` cluster, either a ``LocalCluster`` started here or an
  existing scheduler; the base scenario is scattered once to every worker.

Results do not depend on the backend: every run is seeded from the study and runs its kernel
with one thread. Local workers (pool processes, ``LocalCluster`` workers) die with the process
that started them (:func:`die_with_parent`), so killing a sweep leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

WorkFunction = Callable[[Any, Any], Any]


class BackendError(RuntimeError):
    """The backend cannot go on (a worker process died, the scheduler is unreachable)."""


PR_SET_PDEATHSIG = 1
"""Linux ``prctl`` option: the signal a process gets when its parent dies."""


def die_with_parent(parent: int) -> None:
    """End this worker process when the process ``parent`` that started it dies.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also checks every second that the parent is still the same
    (a fallback for other systems and for a parent that died before the ``prctl`` call).
    Does nothing when ``parent`` is not this process's parent (a remote worker).
    """
    if os.getppid() != parent:
        return
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog still works
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


_REAPER_CODE = """
import os, signal, sys
pids = set()
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    pids.update(int(word) for word in line.split() if word.isdigit())
for pid in pids:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """A tiny process that kills the workers if this process dies before it says it is done.

    A worker protects itself with :func:`die_with_parent` only once it has imported relocsim,
    which takes seconds; the reaper (a bare ``python -S -c``, started in milliseconds) covers
    that window: it reads worker pids on its stdin and, at end of input without ``done`` (this
    process died), sends them SIGKILL.
    """

    def __init__(self) -> None:
        import subprocess

        self.process = subprocess.Popen(
            [sys.executable, "-S", "-c", _REAPER_CODE],
            stdin=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C of the terminal must not end it first
        )
        self.known: set[int] = set()

    def watch(self, pids: Iterable[int]) -> None:
        new = set(pids) - self.known
        if new and self.process.stdin is not None:
            self.known |= new
            self.process.stdin.write(" ".join(map(str, sorted(new))) + "\n")
            self.process.stdin.flush()

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.write("done\n")
                self.process.stdin.close()
        self.process.wait()


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
    reaper = Reaper()
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
    try:
        for task in queue:
            pending.add(executor.submit(fn, task, shared))
            if len(pending) >= 2 * workers:
                break
        reaper.watch(getattr(executor, "_processes", None) or {})
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
        reaper.close()


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
    cluster = reaper = None
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
            reaper = Reaper()
            reaper.watch(client.run(os.getpid).values())
            client.run(die_with_parent, os.getpid())
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
        if reaper is not None:
            reaper.close()


def map_tasks(
    fn: WorkFunction,
    tasks: Sequence[Any],
    shared: Any,
    workers: int | None = None,
    dask_scheduler: str | None = None,
    dask_local: int | None = None,
) -> tuple[Iterator[Any], str]:
    """Run the tasks on the backend the options name, yielding results as they finish.

    A Dask cluster when a scheduler address or a local cluster size is given; otherwise
    ``workers`` local processes (default all cores, at most one per task), or this process when
    that is one.

    Returns:
        the results as they finish, and the backend's name.
    """
    if dask_scheduler or dask_local:
        name = f"dask {dask_scheduler or f'LocalCluster({dask_local})'}"
        return dask(fn, tasks, shared, dask_scheduler, dask_local), name
    workers = max(1, min(workers or default_workers(), len(tasks) or 1))
    if workers == 1:
        return serial(fn, tasks, shared), "1 local process(es)"
    return process_pool(fn, tasks, shared, workers), f"{workers} local process(es)"
