"""Safe file output: an output folder checked before any work, files replaced atomically.

A run's results must never be lost to a folder that cannot be written: :func:`check_out_dir`
creates and probes the folder before simulating, and :func:`write_atomic` writes every file to a
temporary name in the same folder and renames it with :func:`os.replace`, so that a reader never
sees half a file and a failed write leaves the previous version (and no temporary file) behind.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.\w+)?$")


class OutputError(OSError):
    """An output folder or file that cannot be written; the message says which and why."""


def _reason(exc: OSError) -> str:
    code = exc.errno
    if code == errno.ENOSPC:
        return "the disk is full"
    if code == errno.EFBIG:
        return "the file size limit was reached"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only?)"
    return exc.strerror or type(exc).__name__


def check_out_dir(out: str | Path, option: str = "--out") -> Path:
    """Create ``out`` if needed and check that files can be created in it.

    Raises:
        OutputError: ``out`` is a file, lies below a file, or cannot be created or written.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise OutputError(
                f"{option} {path}: {blocker} is a file, so no folder can be made below it"
            ) from exc
        raise OutputError(f"{option} {path}: cannot create the folder ({_reason(exc)})") from exc
    probe = path / f".relocsim-probe.{os.getpid()}.tmp"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"0")
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in the folder ({_reason(exc)})") from exc
    finally:
        probe.unlink(missing_ok=True)
    return path


def temporary_name(path: Path) -> Path:
    """The temporary name :func:`write_atomic` writes ``path`` under (same folder, hidden)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")


def remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files left by writers killed mid-write (their process is gone)."""
    for temp in folder.glob(".*.tmp*"):
        match = _TEMPORARY.match(temp.name)
        if match and not process_alive(int(match.group(1))):
            temp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Write ``path`` by calling ``write(temporary_path)``, fsync it, then rename it into place.

    Raises:
        OutputError: the write failed (disk full, file size limit, permissions); the temporary
            file is removed and any earlier ``path`` is left as it was.
    """
    path = Path(path)
    temp = temporary_name(path)
    try:
        write(temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{path}: not written ({_reason(exc)})") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
