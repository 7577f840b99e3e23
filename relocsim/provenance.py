"""What produced a result: hashes of the installed code and of a resolved scenario.

Checkpoints and sweep runs are keyed by these hashes as well as the version number, so that a
result computed by other code (an edited checkout, a reinstall) or another scenario is never
taken for the current one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import relocsim

CODE_SUFFIXES = (".py", ".pyx", ".pxd", ".h")


@cache
def code_hash() -> str:
    """SHA-256 of the installed package's source files (``.py``, ``.pyx``, ``.pxd``, ``.h``)."""
    root = Path(relocsim.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in CODE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def scenario_hash(scenario: Any) -> str:
    """A stable hash of a resolved scenario's content (its source folder left out)."""
    data = dataclasses.asdict(scenario)
    data.pop("source_dir", None)
    return hashlib.sha256(repr(data).encode()).hexdigest()
