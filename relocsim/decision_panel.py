"""The decision panel: each simulated year's stay / relocate / delocalise decisions as micro data.

A :class:`DecisionPanelCollector` attached to a :class:`~relocsim.model.RelocationModel` receives
the inputs and the outcome of every yearly decision and turns them into the two tables that
:mod:`relocsim.estimation` reads (columns and units in ``docs/estimation.md``):

* ``decisions.parquet``: one row per incumbent firm and year at risk of moving, and one per
  newborn looking for its first location (``newborn`` true: no stay alternative, the same
  nested location choice, see :mod:`relocsim.decision`);
* ``alternatives.parquet``: one row per year and land pool, the attributes of the location
  choice that change from year to year (cost of land, the land price and densification the
  aid on offer is computed from, land on offer before and after the year's choices, whether
  the pool is open, regional incentive, jobs of each sector in the pool's zone).

Both files carry the run's provenance in their Parquet metadata (key ``relocsim``): scenario,
seed, overrides and the true choice coefficients, so any simulation is a data set with a known
answer.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from relocsim.decision import SCALAR_CHOICE_COEFFICIENTS, SECTOR_CHOICE_COEFFICIENTS
from relocsim.firms import NO_REGION
from relocsim.parquet_parts import gather, read_parts, write_part

if TYPE_CHECKING:
    from relocsim.decision import Decision
    from relocsim.demography import Newborns
    from relocsim.geography import Geography
    from relocsim.model import RelocationModel

PANEL_FILE = "decisions.parquet"
ALTERNATIVES_FILE = "alternatives.parquet"
SPILL_FOLDER = ".decision-panel"
"""Where ``relocsim run`` keeps the panel's rows in its ``--out`` until the run is done."""
PART_ROWS = 500_000
"""Rows ``relocsim run`` holds in memory before it writes them to a part (about 100 MB): a
part a year at a million firms, one every eight years in the default scenario."""
METADATA_KEY = b"relocsim"

OUTCOMES = ("stay", "move", "unplaced")
NESTS = ("own", "other")


def true_coefficients(model: RelocationModel) -> dict[str, float]:
    """The choice coefficients of the model as dotted scenario paths (the answer to recover)."""
    scenario = model.scenario
    out: dict[str, float] = {}
    for name, sector in scenario.sectors.items():
        for coef in SECTOR_CHOICE_COEFFICIENTS:
            out[f"sectors.{name}.{coef}"] = float(getattr(sector, coef))
    for coef in SCALAR_CHOICE_COEFFICIENTS:
        out[f"behaviour.{coef}"] = float(getattr(scenario.behaviour, coef))
    for name, zone in scenario.zones.items():
        out[f"zones.{name}.amenity"] = float(zone.amenity)
    return out


OPTIONAL_TEXT_COLUMNS = frozenset({"dest_pool", "nest"})
"""Panel columns that are empty (None) on stay rows."""


def _text_where_empty(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the optional text columns as text (all empty in a year, they are null)."""
    for column in OPTIONAL_TEXT_COLUMNS.intersection(schema.names):
        i = schema.get_field_index(column)
        schema = schema.set(i, pa.field(column, pa.string()))
    return schema


def _with_empty_text(decisions: pd.DataFrame) -> pd.DataFrame:
    """The optional text columns as text with None where empty (one table's categories differ
    from another's, and the files hold text)."""
    for column in OPTIONAL_TEXT_COLUMNS.intersection(decisions.columns):
        text = decisions[column].astype(object)
        decisions[column] = text.where(text.notna(), None)
    return decisions


def _outcome_columns(
    choice: np.ndarray, nest: np.ndarray, pool_names: np.ndarray
) -> dict[str, np.ndarray | pd.Categorical]:
    """``outcome``, ``dest_pool`` and ``nest`` from the kernel's choice and nest codes."""
    return {
        "outcome": np.where(choice >= 0, "move", np.where(choice == -1, "stay", "unplaced")),
        # categorical: missing values (stays) without an object array of mixed types, which a
        # data-only checkpoint cannot hold
        "dest_pool": pd.Categorical(np.where(choice >= 0, pool_names[np.maximum(choice, 0)], None)),
        "nest": pd.Categorical(
            np.where(choice == -1, None, np.array(NESTS, dtype=object)[np.clip(nest - 1, 0, 1)])
        ),
    }


def _newborn_rows(
    decision: Decision,
    newborns: Newborns,
    newborn_ids: np.ndarray,
    need_m2: np.ndarray,
    year: int,
    geo: Geography,
    pool_names: np.ndarray,
) -> pd.DataFrame:
    """The newborns' location choice as panel rows: at their founder's home pool, nothing held
    (age, growth, land, stress, aid and money at stake 0), ``newborn`` true. A newborn for
    which no pool was available at all (the kernel's nest 0) chose nothing and is left out."""
    n = len(decision.rows)
    choice = decision.result.choice[n:]
    nest = decision.result.nest[n:]
    keep = nest > 0
    k = int(keep.sum())
    zero = np.zeros(k)
    return pd.DataFrame(
        {
            "firm_id": np.asarray(newborn_ids)[keep].astype(np.int64),
            "year": np.full(k, year, np.int32),
            "sector": np.array(geo.sector_names, dtype=object)[newborns.sector[keep]],
            "employees": newborns.employees[keep].astype(np.int64),
            "age": np.zeros(k, np.int32),
            "log_growth": zero,
            "pool": pool_names[newborns.home_pool[keep]],
            "land_m2": zero,
            "need_m2": np.asarray(need_m2, np.float64)[keep],
            "stress": zero,
            "aid_eur": zero,
            "aid_region": np.full(k, "", dtype=object),
            "aid_years_left": np.zeros(k, np.int32),
            "departure_cost_eur": zero,
            "premises_value_eur": zero,
            "stay_cost_eur": zero,
            **_outcome_columns(choice[keep], nest[keep], pool_names),
            "newborn": np.ones(k, bool),
        }
    )


@dataclass
class DecisionPanelCollector:
    """Collects the decision panel year by year (attach as ``model.decision_panel``).

    Attributes:
        provenance: what :meth:`write` stores in the files' metadata.
        spill: a folder :meth:`flush` moves the rows held in memory to, one part a call.
            ``relocsim run`` uses ``--out/.decision-panel`` and flushes once ``PART_ROWS`` rows
            are held and before each checkpoint: at a million firms the panel grows by about
            0.4 GB a year, and each checkpoint would rewrite all of it. None: held in memory.
    """

    provenance: dict[str, Any] = field(default_factory=dict)
    spill: Path | None = None
    _decisions: list[pd.DataFrame] = field(default_factory=list)
    _alternatives: list[pd.DataFrame] = field(default_factory=list)
    _parts_written: int = 0

    def record(
        self,
        model: RelocationModel,
        decision: Decision,
        *,
        sector_jobs: np.ndarray,
        available: np.ndarray,
        cost_per_m2: np.ndarray,
        capacity_m2: np.ndarray,
        need_m2: np.ndarray,
        newborn_need_m2: np.ndarray,
        departure_cost_eur: np.ndarray,
        premises_value_eur: np.ndarray,
        stay_cost_eur: np.ndarray,
        newborns: Newborns | None = None,
        newborn_ids: np.ndarray | None = None,
    ) -> None:
        """Record one year's decision of the incumbents and newborns (before moves).

        Args:
            sector_jobs: jobs by sector and zone at decision time (S, Z).
            available: pools open this year (M,).
            cost_per_m2: cost of a m2 of standard need per pool (EUR/m2).
            capacity_m2: land on offer per pool at the start of the choice (standard m2).
            need_m2, departure_cost_eur, premises_value_eur, stay_cost_eur: per deciding
                incumbent (stay_cost_eur: what growing in place costs a grower that stays).
            newborn_need_m2: land the year's newborns need (they compete for the same land).
            newborns, newborn_ids: the year's newborns and their ids (None: no newborn rows).
        """
        firms, geo, year = model.firms, model.geo, model.year
        decisions: list[pd.DataFrame] = []
        rows = decision.rows
        n = len(rows)
        choice = decision.result.choice[:n]
        nest = decision.result.nest[:n]
        region_names = np.array([*geo.region_names, ""], dtype=object)
        pool_names = np.array(geo.pool_names, dtype=object)
        sector_names = np.array(geo.sector_names, dtype=object)
        aid_years_left = np.where(
            firms.aid_region[rows] != NO_REGION,
            np.maximum(firms.aid_year[rows] + firms.aid_commitment[rows] - year + 1, 0),
            0,
        )
        decisions.append(
            pd.DataFrame(
                {
                    "firm_id": firms.firm_id[rows].astype(np.int64),
                    "year": np.full(n, year, np.int32),
                    "sector": sector_names[firms.sector[rows]],
                    "employees": firms.employees[rows].astype(np.int64),
                    "age": np.maximum(year - firms.birth_year[rows], 0).astype(np.int32),
                    "log_growth": firms.growth[rows].astype(np.float64),
                    "pool": pool_names[firms.pool[rows]],
                    "land_m2": firms.land_m2[rows].astype(np.float64),
                    "need_m2": np.asarray(need_m2, np.float64),
                    "stress": firms.stress[rows].astype(np.float64),
                    "aid_eur": firms.aid_amount[rows].astype(np.float64),
                    "aid_region": region_names[firms.aid_region[rows]],
                    "aid_years_left": aid_years_left.astype(np.int32),
                    "departure_cost_eur": np.asarray(departure_cost_eur, np.float64),
                    "premises_value_eur": np.asarray(premises_value_eur, np.float64),
                    "stay_cost_eur": np.asarray(stay_cost_eur, np.float64),
                    **_outcome_columns(choice, nest, pool_names),
                    "newborn": np.zeros(n, bool),
                }
            )
        )
        if newborns is not None and newborn_ids is not None:
            decisions.append(
                _newborn_rows(
                    decision, newborns, newborn_ids, newborn_need_m2, year, geo, pool_names
                )
            )
        jobs = sector_jobs[:, geo.pool_zone]
        # the largest need among the firms that looked for land this year: a pool left with at
        # least this much rejected no one in the capacity lottery
        locating = np.concatenate([np.asarray(need_m2)[choice != -1], newborn_need_m2, [0.0]])
        table = {
            "year": np.full(geo.n_pools, year, np.int32),
            "pool": pool_names,
            "cost_per_m2_eur": np.asarray(cost_per_m2, np.float64),
            # what decision.AidOnOffer prices the aid on offer with (the estimator recomputes it)
            "land_price_eur": np.asarray(model.land.price, np.float64),
            "densification": np.asarray(model.land.densification, np.float64),
            "capacity_m2": np.asarray(capacity_m2, np.float64),
            "capacity_end_m2": np.minimum(decision.result.free, capacity_m2).astype(np.float64),
            "largest_need_m2": np.full(geo.n_pools, locating.max()),
            "open": np.asarray(available, bool),
            "incentive_keur": model.rules.incentive_rate[geo.pool_region] / 1000.0,
        }
        for s, name in enumerate(geo.sector_names):
            table[f"jobs.{name}"] = jobs[s].astype(np.float64)
        self._decisions.extend(decisions)
        self._alternatives.append(pd.DataFrame(table))

    def flush(self, min_rows: int = 0) -> None:
        """Move the rows held in memory to a part in ``spill`` once they are ``min_rows`` or
        more (nothing without a spill folder).

        Raises:
            relocsim.safeio.OutputError: the part could not be written; the rows stay held.
        """
        held_rows = sum(len(frame) for frame in self._decisions)
        if self.spill is None or not self._alternatives or held_rows < min_rows:
            return
        held = {PANEL_FILE: self._held_decisions(), ALTERNATIVES_FILE: self._held_alternatives()}
        for name, frame in held.items():
            table = pa.Table.from_pandas(frame, preserve_index=False)
            write_part(self.spill, name, self._parts_written, table)
        self._parts_written += 1
        self._decisions, self._alternatives = [], []

    def _held_decisions(self) -> pd.DataFrame:
        return _with_empty_text(pd.concat(self._decisions, ignore_index=True))

    def _held_alternatives(self) -> pd.DataFrame:
        return pd.concat(self._alternatives, ignore_index=True)

    def _tables(self, name: str, read: Callable[[Path], Any] = pq.read_table) -> Iterator[Any]:
        """The parts written, then the rows held, of one file, in the order they were recorded
        (``read``: ``pq.read_schema`` for their schemas only)."""
        if self.spill is not None:
            yield from read_parts(self.spill, name, self._parts_written, read)
        if self._alternatives:
            held = self._held_decisions() if name == PANEL_FILE else self._held_alternatives()
            table = pa.Table.from_pandas(held, preserve_index=False)
            yield table if read is pq.read_table else table.schema

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The panel and the alternatives table collected so far."""
        if self.spill is not None:
            frames = [
                pd.concat([t.to_pandas() for t in self._tables(name)], ignore_index=True)
                for name in (PANEL_FILE, ALTERNATIVES_FILE)
            ]
            return _with_empty_text(frames[0]), frames[1]
        return (
            self._held_decisions() if self._decisions else pd.DataFrame(),
            self._held_alternatives() if self._alternatives else pd.DataFrame(),
        )

    def discard_spill(self) -> None:
        """Remove the parts once the panel's files are written (the run is done)."""
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)

    def writers(self) -> dict[str, Callable[[Path], None]]:
        """A writer per file name (``decisions.parquet``, ``alternatives.parquet``), each taking
        the path to write: the provenance goes into the Parquet metadata."""
        meta = json.dumps(self.provenance, sort_keys=True).encode()
        names = (PANEL_FILE, ALTERNATIVES_FILE)
        if self.spill is not None:
            return {name: partial(self._stream, name, meta) for name in names}

        def writer(frame: pd.DataFrame) -> Callable[[Path], None]:
            def write(path: Path) -> None:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                metadata = {**(table.schema.metadata or {}), METADATA_KEY: meta}
                pq.write_table(table.replace_schema_metadata(metadata), path)

            return write

        return {name: writer(frame) for name, frame in zip(names, self.tables(), strict=True)}

    def _stream(self, name: str, meta: bytes, path: Path) -> None:
        """Write one file part by part: memory holds one part at a time, not the panel."""
        schemas = list(self._tables(name, pq.read_schema))
        if not schemas:
            empty = pa.Table.from_pandas(pd.DataFrame(), preserve_index=False)
            pq.write_table(empty.replace_schema_metadata({METADATA_KEY: meta}), path)
            return
        # a part whose text columns are all empty (or that has no rows) types them as null
        schema = _text_where_empty(pa.unify_schemas(schemas, promote_options="permissive"))
        schema = schema.with_metadata({**(schema.metadata or {}), METADATA_KEY: meta})
        gather(path, schema, self._tables(name))

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``decisions.parquet`` and ``alternatives.parquet`` with the provenance."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, write in self.writers().items():
            write(out / name)
        return [out / name for name in self.writers()]


def attach(
    model: RelocationModel, request: dict[str, Any] | None = None, spill: Path | None = None
) -> None:
    """Give ``model`` a collector whose provenance holds the request and the true coefficients
    (``spill``: see :class:`DecisionPanelCollector`)."""
    model.decision_panel = DecisionPanelCollector(
        spill=spill,
        provenance={
            "scenario": model.scenario.name,
            "seed": model.seed,
            "request": request or {},
            "n_sampled": model.scenario.n_sampled,
            "money_scale_eur": model.scenario.behaviour.money_scale_eur,
            "money_size_elasticity": model.scenario.behaviour.money_size_elasticity,
            "true_coefficients": true_coefficients(model),
        },
    )


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance a run stored in a panel file (empty if none)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else {}
