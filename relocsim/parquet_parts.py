"""Rows moved to numbered Parquet parts in a folder during a run, then gathered into one file.

``relocsim run`` moves the tables that grow with every simulated year (the decision panel, the
per-firm event log) out of memory into parts in its ``--out``, once they hold enough rows and
before each checkpoint, so that neither the run's memory nor its checkpoints grow with them. At
the end each file is written from its parts, one part in memory at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from relocsim.safeio import OutputError, write_atomic


def part_path(folder: Path, name: str, k: int) -> Path:
    """Part ``k`` of the file ``name`` (``decisions.parquet``: ``decisions-0003.parquet``)."""
    return folder / f"{Path(name).stem}-{k:04d}.parquet"


def write_part(folder: Path, name: str, k: int, table: pa.Table) -> None:
    """Write part ``k`` of ``name`` atomically (a run resumed from a checkpoint writes its later
    parts again, over those of the run that was killed).

    Raises:
        relocsim.safeio.OutputError: the folder or the part could not be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: not made ({exc.strerror or exc})") from exc
    write_atomic(part_path(folder, name, k), partial(pq.write_table, table))


def read_parts(
    folder: Path, name: str, count: int, read: Callable[[Path], Any] = pq.read_table
) -> Iterator[Any]:
    """The ``count`` parts of ``name`` in order (``read``: ``pq.read_schema`` for their schemas).

    Raises:
        relocsim.safeio.OutputError: a part is missing or unreadable.
    """
    for k in range(count):
        try:
            yield read(part_path(folder, name, k))
        except OSError as exc:
            raise OutputError(f"a part of {name} is missing: {exc}") from exc


def gather(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    """Write ``tables`` one after the other into one Parquet file of ``schema``."""
    with pq.ParquetWriter(path, schema) as writer:
        for table in tables:
            writer.write_table(table.cast(schema))
