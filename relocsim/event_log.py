"""The per-firm event log: one row per firm and event, recorded as arrays, read as one table.

The stages log events for many firms at once (:meth:`EventLog.append`, no per-firm Python work).
A run in memory (scripts, sweeps, calibration) builds the table when asked; ``relocsim run``
moves the rows to Parquet parts in its ``--out`` (:mod:`relocsim.parquet_parts`) once they are
``PART_ROWS`` and before each checkpoint, and writes ``events.parquet`` from them: a 30-year run
at a million firms logs about 19 million events.

Columns: ``year``, ``firm_id``, ``event`` (one of :data:`EVENTS`), ``sector``, ``from_zone`` and
``to_zone`` (zone names, empty where there is none: a birth has no origin, an exit no
destination), ``employees``, ``amount_eur`` (the aid, the repayment, or for ``grew`` what the
firm paid for the land it grew into in place; EUR).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relocsim.parquet_parts import gather, read_parts, write_part

EVENTS = ("born", "grew", "moved", "delocalised", "exited", "closed", "unplaced", "aided", "repaid")

FILE = "events.parquet"
SPILL_FOLDER = ".events"
"""Where ``relocsim run`` keeps the log's parts in its ``--out`` until the run is done."""
PART_ROWS = 2_000_000
"""Rows ``relocsim run`` holds before it writes a part (about 70 MB as arrays): a part every
three years at a million firms (0.64 million events a year), none in a default run (43,000 a
year) unless it saves a checkpoint."""

_COLUMN_TYPES = {
    "year": np.int32,
    "firm_id": np.int64,
    "event": np.int8,
    "sector": np.int16,
    "from_zone": np.int16,
    "to_zone": np.int16,
    "employees": np.int64,
    "amount_eur": np.float64,
}
"""The columns as recorded (events, sectors and zones by index; -1: no zone)."""


@dataclass
class EventLog:
    """The event log of one run.

    Attributes:
        zone_names, sector_names: the geography's, for the table's text and categories.
        spill: a folder :meth:`flush` moves the rows held to, one part a call (None: held).
    """

    zone_names: tuple[str, ...]
    sector_names: tuple[str, ...]
    spill: Path | None = None
    _held: list[dict[str, np.ndarray]] = field(default_factory=list)
    _parts_written: int = 0

    def append(
        self,
        year: int,
        name: str,
        firm_id: np.ndarray,
        sector: np.ndarray,
        from_zone: np.ndarray | int,
        to_zone: np.ndarray | int,
        employees: np.ndarray,
        amount: np.ndarray | None = None,
    ) -> None:
        """Log one kind of event (``name``, one of :data:`EVENTS`) for many firms."""
        n = len(firm_id)
        if n == 0:
            return
        self._held.append(
            {
                "year": np.full(n, year, np.int32),
                "firm_id": np.asarray(firm_id, np.int64),
                "event": np.full(n, EVENTS.index(name), np.int8),
                "sector": np.asarray(sector, np.int16),
                "from_zone": np.broadcast_to(np.asarray(from_zone, np.int16), n),
                "to_zone": np.broadcast_to(np.asarray(to_zone, np.int16), n),
                "employees": np.asarray(employees, np.int64),
                "amount_eur": np.zeros(n) if amount is None else np.asarray(amount, np.float64),
            }
        )

    @property
    def held_rows(self) -> int:
        return sum(len(part["year"]) for part in self._held)

    def _held_frame(self) -> pd.DataFrame:
        """The rows held, as the table's columns."""
        if not self._held:
            return self.empty()
        return self._table(
            {k: np.concatenate([part[k] for part in self._held]) for k in _COLUMN_TYPES}
        )

    def empty(self) -> pd.DataFrame:
        """The table's columns without rows."""
        return self._table({k: np.zeros(0, t) for k, t in _COLUMN_TYPES.items()})

    def _table(self, raw: dict[str, np.ndarray]) -> pd.DataFrame:
        # built at a large run's peak: zone names as object text (8 bytes a row where '<U30'
        # took 120; pandas stores both as the same text), and no copies of columns of their type
        zone_names = np.array((*self.zone_names, ""), dtype=object)
        return pd.DataFrame(
            {
                "year": raw["year"].astype(np.int32, copy=False),
                "firm_id": raw["firm_id"].astype(np.int64, copy=False),
                "event": pd.Categorical.from_codes(
                    raw["event"].astype(np.int8, copy=False), EVENTS
                ),
                "sector": pd.Categorical.from_codes(
                    raw["sector"].astype(np.int16, copy=False), self.sector_names
                ),
                "from_zone": zone_names[raw["from_zone"]],
                "to_zone": zone_names[raw["to_zone"]],
                "employees": raw["employees"].astype(np.int64, copy=False),
                "amount_eur": raw["amount_eur"].astype(np.float64, copy=False),
            },
            copy=False,
        )

    def flush(self, min_rows: int = 0) -> None:
        """Move the rows held to a part in ``spill`` once they are ``min_rows`` or more (nothing
        without a spill folder).

        Raises:
            relocsim.safeio.OutputError: the part could not be written; the rows stay held.
        """
        if self.spill is None or not self._held or self.held_rows < min_rows:
            return
        table = pa.Table.from_pandas(self._held_frame(), preserve_index=False)
        write_part(self.spill, FILE, self._parts_written, table)
        self._parts_written += 1
        self._held = []

    def _tables(self) -> Iterator[pa.Table]:
        """The parts written, then the rows held, in the order they were logged."""
        if self.spill is not None:
            yield from read_parts(self.spill, FILE, self._parts_written)
        if self._held:
            yield pa.Table.from_pandas(self._held_frame(), preserve_index=False)

    def frame(self) -> pd.DataFrame:
        """The whole log as one table."""
        if self.spill is None or self._parts_written == 0:
            return self._held_frame()
        return pd.concat([table.to_pandas() for table in self._tables()], ignore_index=True)

    def write(self, path: Path) -> None:
        """Write the log to ``path`` as Parquet, from its parts one at a time if it has any."""
        if self.spill is None or self._parts_written == 0:
            self._held_frame().to_parquet(path, index=False)
            return
        schema = next(read_parts(self.spill, FILE, 1, pq.read_schema))
        gather(path, schema, self._tables())

    def discard_spill(self) -> None:
        """Remove the parts once ``events.parquet`` is written (the run is done)."""
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)
