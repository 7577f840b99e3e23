"""Firms: their state as columnar NumPy arrays, and the Mesa agents that are its public face.

The yearly stages and the compiled kernel read and write :class:`FirmTable` columns directly;
a :class:`Firm` agent holds only its row number and reads its attributes from the table on
demand, so nothing is copied between agents and arrays during a step. Rows of exited firms stay
(``alive`` is False) until :meth:`FirmTable.compact` reclaims them.

The agents are made lazily: a step only marks rows born or dead, and :func:`sync_agents` (called
when the model's ``agents`` or ``agents_by_type`` is read) registers agents for live rows that
have none and removes those of dead rows. Registering a Mesa agent costs a few microseconds
(weak-reference sets), about a third of a 1M-firm year when every birth and exit paid it.
"""

from __future__ import annotations

import dataclasses
import itertools
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

if TYPE_CHECKING:
    from relocsim.model import RelocationModel

NO_REGION = -1
"""Marker of an empty aid or incentive contract."""


@dataclass
class FirmTable:
    """Columnar firm state; row ``r`` of every column is one firm.

    Attributes:
        firm_id: stable firm id (key of the firm's random stream).
        alive: whether the row holds an active firm.
        sector: sector id.
        pool: land pool id (zone and region follow from it).
        employees: jobs.
        land_m2: land held (m2).
        birth_year: year founded.
        growth: last year's log-growth of employment.
        stress: share of its needed land the firm lacks (0: none).
        aid_amount: unexpired investment aid (EUR; 0: none).
        aid_year: year the aid was granted.
        aid_region: granting region (NO_REGION: none).
        aid_commitment: years the aided activity must stay in the region.
        aid_buildings_eur: the part of ``aid_amount`` that paid for premises (EUR).
        aid_commitment_buildings: years the aided premises must stay in the region.
        aid_jobs: jobs when the aid was granted (for its jobs condition).
        aid_intensity: share of the investment the aid paid (drives the aid's growth effect).
        saved_year: first year the firm survived only thanks to a policy (0: never).
        policy_jobs: jobs the firm gained from the aid's extra growth so far (its own
            counterfactual: the same draws without the aid).
        incentive_region: region paying a job-keeping incentive (NO_REGION: none).
        incentive_jobs: jobs the firm committed to keep.
        incentive_until: last year of the commitment.
        incentive_rate: incentive per committed job and year (EUR).
        incentive_paid: incentive received so far under the contract (EUR).
        last_deloc_year: last year the firm left a region (GBER anti-relocation rule).
        close_year: scheduled closure year of a plant (0: none).
        agent: a weak reference to the firm's Mesa agent (object column; None: not made). The
            model holds the agent: a strong reference here would close a cycle through a NumPy
            object array, which the cyclic collector cannot see into, and the model would never
            be freed.
        size: rows in use.
    """

    firm_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    sector: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    pool: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    employees: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    land_m2: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    birth_year: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    growth: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    stress: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    aid_amount: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    aid_year: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    aid_region: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    aid_commitment: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    aid_buildings_eur: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    aid_commitment_buildings: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    aid_jobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    aid_intensity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    saved_year: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    policy_jobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    incentive_region: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    incentive_jobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    incentive_until: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    incentive_rate: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    incentive_paid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    last_deloc_year: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    close_year: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    agent: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    size: int = 0

    def columns(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if f.name != "size"]

    def live_rows(self) -> np.ndarray:
        """Row numbers of active firms, in row order."""
        return np.flatnonzero(self.alive[: self.size])

    def append(self, ids: np.ndarray, **values: np.ndarray) -> np.ndarray:
        """Add firms with ``ids``; unspecified columns get empty-contract values.

        Returns:
            The new rows.
        """
        n = len(ids)
        self._reserve(self.size + n)
        rows = np.arange(self.size, self.size + n)
        self.size += n
        defaults = {
            "alive": True,
            "aid_region": NO_REGION,
            "incentive_region": NO_REGION,
            "last_deloc_year": -10_000,
        }
        for name in self.columns():
            column = getattr(self, name)
            if name == "firm_id":
                column[rows] = ids
            elif name in values:
                column[rows] = values[name]
            elif name != "agent":
                column[rows] = defaults.get(name, 0)
        return rows

    def _reserve(self, needed: int) -> None:
        capacity = len(self.alive)
        if needed <= capacity:
            return
        new_capacity = max(needed, int(capacity * 1.5) + 1024)
        for name in self.columns():
            old = getattr(self, name)
            new = (
                np.zeros(new_capacity, dtype=old.dtype)
                if old.dtype != object
                else np.empty(new_capacity, dtype=object)
            )
            new[:capacity] = old
            setattr(self, name, new)

    def compact(self) -> None:
        """Drop rows of exited firms when they are most of the table; re-point the agents."""
        live = self.live_rows()
        if len(live) * 2 > self.size:
            return
        _remove_dead_agents(self)
        for name in self.columns():
            column = getattr(self, name)
            column[: len(live)] = column[live]
        self.size = len(live)
        self.alive[self.size :] = False
        self.agent[self.size :] = None
        for row in _rows_with_agents(self).tolist():
            agent = self.agent[row]()
            if agent is not None:
                agent.row = row


class _IdCounters(weakref.WeakKeyDictionary):
    """Mesa 3.3's per-model counters of agent ids (``Agent._ids``), without holding the model.

    Mesa 3.3 keeps them in a class-level dict keyed by the model, so every model whose agents
    were made outlived its run; Mesa 3.5 numbers agents in the model and never reads this."""

    def __getitem__(self, model: Any) -> Any:
        try:
            return super().__getitem__(model)
        except KeyError:
            counter = itertools.count(1)
            self[model] = counter
            return counter


class Firm(mesa.Agent):
    """One firm, the public face of a :class:`FirmTable` row.

    Attributes read through to the table: ``firm_id``, ``sector``, ``zone``, ``region``,
    ``employees``, ``land_m2``, ``age``, ``aid_amount``, ``stress``.
    """

    model: RelocationModel
    _ids = _IdCounters()

    def __init__(self, model: RelocationModel, row: int) -> None:
        super().__init__(model)
        self.row = row

    @property
    def _table(self) -> FirmTable:
        return self.model.firms

    @property
    def firm_id(self) -> int:
        return int(self._table.firm_id[self.row])

    @property
    def sector(self) -> str:
        return self.model.geo.sector_names[self._table.sector[self.row]]

    @property
    def zone(self) -> str:
        return self.model.geo.zone_names[self.model.geo.pool_zone[self._table.pool[self.row]]]

    @property
    def region(self) -> str:
        return self.model.geo.region_names[self.model.geo.pool_region[self._table.pool[self.row]]]

    @property
    def land_use(self) -> str:
        return self.model.geo.pool_names[self._table.pool[self.row]].split(".")[-1]

    @property
    def employees(self) -> int:
        return int(self._table.employees[self.row])

    @property
    def land_m2(self) -> float:
        return float(self._table.land_m2[self.row])

    @property
    def age(self) -> int:
        return int(self.model.year - self._table.birth_year[self.row])

    @property
    def aid_amount(self) -> float:
        return float(self._table.aid_amount[self.row])

    @property
    def stress(self) -> float:
        return float(self._table.stress[self.row])

    def __repr__(self) -> str:
        return (
            f"Firm(id={self.firm_id}, sector={self.sector}, zone={self.zone}, "
            f"employees={self.employees})"
        )


def create_agents(model: RelocationModel, rows: np.ndarray) -> None:
    """Create the Mesa agents of ``rows`` (and mark the model as one whose agents were made)."""
    table = model.firms
    if len(rows):
        model.agents_made = True
    for row in rows.tolist():
        table.agent[row] = weakref.ref(Firm(model, row))  # the model holds the agent


def remove_agents(table: FirmTable, rows: np.ndarray) -> None:
    """Mark exited rows dead; their agents, if any, leave the model at the next
    :func:`sync_agents` or compaction."""
    table.alive[rows] = False


def sync_agents(model: RelocationModel) -> None:
    """Make the model's Mesa agents the live firms: remove the agents of dead rows and create
    those of live rows that have none."""
    table = model.firms
    _remove_dead_agents(table)
    missing = table.alive[: table.size] & np.equal(table.agent[: table.size], None)
    create_agents(model, np.flatnonzero(missing))


def _rows_with_agents(table: FirmTable) -> np.ndarray:
    return np.flatnonzero(np.not_equal(table.agent[: table.size], None))


def _remove_dead_agents(table: FirmTable) -> None:
    rows = _rows_with_agents(table)
    dead = rows[~table.alive[rows]]
    for ref in table.agent[dead]:
        agent = ref()
        if agent is not None:
            agent.remove()
    table.agent[dead] = None
