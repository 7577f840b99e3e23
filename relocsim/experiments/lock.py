"""The lock of a sweep's output folder: one sweep writes to a folder at a time.

``DIR/sweep.lock`` holds the pid and host of the sweep writing to ``DIR``; the lock itself is an
``flock`` on that file, which the kernel releases when the process ends however it ends, so a
lock left by a killed sweep is simply taken over. Where ``flock`` is not supported (some network
file systems) the recorded pid decides: a lock of a process that no longer exists is taken over.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relocsim.safeio import process_alive

LOCK = "sweep.lock"


class SweepLockedError(RuntimeError):
    """Another sweep is writing to the same output folder."""


def _holder(fd: int) -> tuple[int | None, str]:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode(errors="replace").split()
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid, text[1] if len(text) > 1 else ""


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Hold the lock of ``out`` for the duration of the ``with`` block.

    Raises:
        SweepLockedError: another live sweep holds it (the message names its pid and host).
    """
    path = out / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        pid, host = _holder(fd)
        here = socket.gethostname()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        except OSError:  # no flock here: trust the recorded pid on this host
            free = pid is None or (host == here and not process_alive(pid)) or pid == os.getpid()
        if not free:
            raise SweepLockedError(
                f"{out}: another sweep (pid {pid} on {host or 'this host'}) is writing to this "
                f"folder; wait for it to finish, stop it, or use another --out (lock: {path})"
            )
        if pid is not None and pid != os.getpid():
            print(f"relocsim: taking over the lock left by pid {pid} in {path}", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {here}\n".encode())
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
