"""Checkpoints of a run: the whole model pickled, written atomically, resumed exactly.

A checkpoint remembers what the run was asked (scenario, seed, overrides) so that resuming a
different run is refused rather than silently mixed. Continuing from a checkpoint gives the same
tables as an uninterrupted run: every random draw is keyed by seed and year.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from relocsim.model import RelocationModel

CHECKPOINT = "checkpoint.pkl"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed."""


def save(model: RelocationModel, request: dict[str, Any], folder: str | Path) -> Path:
    """Pickle ``model`` and the ``request`` that started it into ``folder`` atomically."""
    path = Path(folder) / CHECKPOINT
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as handle:
        pickle.dump({"request": request, "model": model}, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def load(request: dict[str, Any], folder: str | Path) -> RelocationModel | None:
    """The checkpointed model of the same ``request`` in ``folder``, or None if there is none.

    Raises:
        CheckpointError: the checkpoint belongs to a different run or cannot be read.
    """
    path = Path(folder) / CHECKPOINT
    if not path.exists():
        return None
    try:
        with path.open("rb") as handle:
            saved = pickle.load(handle)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc}); delete it") from exc
    if saved["request"] != request:
        raise CheckpointError(
            f"{path}: the checkpoint is of another run ({saved['request']}), not of "
            f"{request}; use another --out or delete it"
        )
    return saved["model"]


def remove(folder: str | Path) -> None:
    """Delete the checkpoint of a finished run."""
    (Path(folder) / CHECKPOINT).unlink(missing_ok=True)
