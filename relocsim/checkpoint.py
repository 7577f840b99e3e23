"""Checkpoints of a run: the model's state as data only, checked before it is resumed.

A checkpoint (``checkpoint.npz`` in the run's ``--out``) holds the model's state as JSON and
NumPy arrays (:mod:`relocsim.statefile`: nothing is unpickled, only relocsim's own data classes
are rebuilt) with a SHA-256 checksum, and a header naming what the run was asked (scenario,
seed, overrides), the hash of the resolved scenario, the relocsim version and the hash of its
code. Resuming refuses, with a one-line reason, a checkpoint that is damaged, of another run,
of an edited scenario, of other code, or not a checkpoint at all. Continuing from a checkpoint
gives the same tables as an uninterrupted run: every random draw is keyed by seed and year.

The state is every attribute of the model except what the scenario rebuilds (the scenario
itself, Mesa's collector and agent registries, the thread count): new state fields need no
code here. The Mesa agents are rebuilt from the firm table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import mesa

from relocsim import statefile
from relocsim.firms import create_agents
from relocsim.model import RelocationModel
from relocsim.provenance import code_hash, scenario_hash
from relocsim.safeio import write_atomic

CHECKPOINT = "checkpoint.npz"
LEGACY = "checkpoint.pkl"
"""The old pickle checkpoint: never opened (unpickling runs code), only reported."""

REBUILT = frozenset({"scenario", "datacollector", "threads", "implementation"})
"""Model attributes built from the scenario and the command line rather than restored."""

MESA_STATE = frozenset({"steps", "time", "running", "random", "rng", "_rng", "_seed"})
"""Attributes of ``mesa.Model`` that are run state (the others are registries and methods)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed."""


@dataclass
class Schedule:
    """When a run saves a checkpoint, besides when it is interrupted.

    A checkpoint rewrites the whole state: saved every 5 years, checkpoints took 18 s of the
    default's 26 s run when they held the decision panel (it and the event log now go to their
    own parts first, :mod:`relocsim.parquet_parts`). By time, a short run saves none and a long
    one loses at most ``minutes`` of work to a crash.

    Attributes:
        years: save every ``years`` simulated years (0: not by years).
        minutes: save once ``minutes`` of simulation have passed since the last save or the
            start (0: not by time).
        last: ``time.monotonic()`` of the last save or the start.
    """

    years: int = 0
    minutes: float = 2.0
    last: float = field(default_factory=time.monotonic)

    def due(self, simulated_years: int, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        by_years = self.years > 0 and simulated_years % self.years == 0
        by_time = self.minutes > 0 and now - self.last >= 60.0 * self.minutes
        return by_years or by_time

    def saved(self, now: float | None = None) -> None:
        self.last = time.monotonic() if now is None else now


@cache
def _mesa_attributes() -> frozenset[str]:
    return frozenset(vars(mesa.Model(rng=0)))


def model_state(model: RelocationModel) -> dict[str, Any]:
    """The attributes of ``model`` that a checkpoint stores (see the module docstring)."""
    mesa_owned = _mesa_attributes()
    state = {
        name: value
        for name, value in vars(model).items()
        if name not in REBUILT and (name not in mesa_owned or name in MESA_STATE)
    }
    state["datacollector.model_vars"] = model.datacollector.model_vars
    return state


def header(model: RelocationModel, request: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint of ``model`` started by ``request`` must match to be resumed."""
    return {
        "request": request,
        "scenario_hash": scenario_hash(model.scenario),
        "relocsim_version": request.get("version", ""),
        "code_hash": code_hash(),
        "year": model.year,
    }


def save(model: RelocationModel, request: dict[str, Any], folder: str | Path) -> Path:
    """Store ``model`` and the ``request`` that started it in ``folder`` atomically.

    Raises:
        relocsim.safeio.OutputError: the file cannot be written (disk full, size limit, ...);
            an earlier checkpoint is then left as it was.
        CheckpointError: a part of the model's state is not plain data (names the attribute).
    """
    try:
        write = statefile.prepare(header(model, request), model_state(model))
    except statefile.StateFileError as exc:
        raise CheckpointError(f"cannot checkpoint the model: {exc}") from exc
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_atomic(Path(folder) / CHECKPOINT, write)


def _refuse(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: {reason}; delete it or add --fresh to start the run again from its first year"
    )


def load(
    request: dict[str, Any], folder: str | Path, threads: int | None = None
) -> RelocationModel | None:
    """The model checkpointed in ``folder`` by the same ``request``, or None if there is none.

    Args:
        request: what the run is asked: ``scenario`` (name or path), ``seed``, ``set`` (sorted
            override pairs) and ``version``.
        folder: the run's output folder.
        threads: kernel threads of the resumed model (results do not depend on them).

    Raises:
        CheckpointError: the checkpoint is damaged, not a checkpoint, of another run, of an
            edited scenario or of other relocsim code.
    """
    folder = Path(folder)
    legacy = folder / LEGACY
    if legacy.exists():
        raise _refuse(
            legacy,
            "an old pickle checkpoint, which relocsim no longer opens (loading a pickle can "
            "run code)",
        )
    path = folder / CHECKPOINT
    if not path.exists():
        return None
    try:
        saved, archive = statefile.read_header(path)
    except statefile.StateFileError as exc:
        raise _refuse(path, str(exc)) from exc
    try:
        _check_header(path, saved, request)
        model = RelocationModel(
            request["scenario"],
            seed=request["seed"],
            overrides=dict(request["set"]),
            threads=threads,
        )
        if saved.get("scenario_hash") != scenario_hash(model.scenario):
            raise _refuse(
                path,
                "stale: the scenario (or one of its data files) changed since the checkpoint "
                "was written",
            )
        state = statefile.read_state(saved, archive)
    except statefile.StateFileError as exc:
        raise _refuse(path, str(exc)) from exc
    finally:
        archive.close()
    if not isinstance(state, dict) or "firms" not in state:
        raise _refuse(path, "holds no model state")
    _restore(model, state)
    return model


def _check_header(path: Path, saved: dict[str, Any], request: dict[str, Any]) -> None:
    if (
        saved.get("relocsim_version") != request.get("version")
        or saved.get("code_hash") != code_hash()
    ):
        raise _refuse(
            path,
            f"stale: written by relocsim {saved.get('relocsim_version')!r} (code "
            f"{str(saved.get('code_hash'))[:12]}), this is {request.get('version')!r} (code "
            f"{code_hash()[:12]})",
        )
    theirs = {k: v for k, v in saved.get("request", {}).items() if k != "version"}
    ours = {k: v for k, v in request.items() if k != "version"}
    if _plain(theirs) != _plain(ours):
        raise _refuse(path, f"the checkpoint is of another run ({theirs}), not of {ours}")


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples as lists), for comparing a request with a stored one."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _restore(model: RelocationModel, state: dict[str, Any]) -> None:
    """Put ``state`` into a freshly built ``model`` and rebuild its agents from the firm table."""
    model.remove_all_agents()
    model.datacollector.model_vars = state.pop("datacollector.model_vars")
    for name, value in state.items():
        setattr(model, name, value)
    create_agents(model, model.firms.live_rows())


def remove(folder: str | Path) -> None:
    """Delete the checkpoint of a finished run."""
    (Path(folder) / CHECKPOINT).unlink(missing_ok=True)
