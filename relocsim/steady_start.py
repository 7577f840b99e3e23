"""Steady start: a burn-in under the scenario's own rules, re-anchored to the sourced start.

The starting population (``population.csv``: log-normal sizes, geometric ages) is not the
distribution the model's own demography and location choice keep: left alone, the first years
carry a transient (jobs dip while the size distribution relaxes towards more small firms). With
``burn_in_years = B`` the model starts its clock B years before ``start_year`` (firms B years
younger at birth), simulates those years with every standing rule (demography, space need,
decisions, land market, aid contracts) and no scheduled event (a plant closing or a site opening
inside the window is refused), and then **re-anchors** the result to the sourced start
(:func:`reanchor`):

- each region x sector cell keeps the burnt-in firms' joint distribution of size, age, premises,
  growth, space stress and contracts, but as many of them (thinned, or cloned with fresh ids)
  as make the cell's jobs those of ``population.csv`` (the sourced level);
- each firm's premises are re-expressed at the land use per job of the sourced prices: the
  burn-in moved prices, and land use per job with them
  (:func:`relocsim.land_market.land_use_response`), so a firm's land is divided by its pool's
  response at the burn-in's end. Its slack or shortage against its need is kept; without this,
  firms that spread out where the burn-in's prices fell would shed the surplus in the first year
  (3.8% of Brussels' occupied land in the session-7 default);
- the land market starts again from ``land.csv`` and ``zones.csv``: the sourced vacant land and
  prices, on top of the land the re-anchored firms hold.

Then the records and step counter are cleared. The run reported from ``start_year`` starts at
the sourced job levels, land and prices, with a population whose composition is the model's own,
so the first year carries no transient. Firm counts follow from the model's mean size per cell
(reported against ``population.csv`` in docs/calibration.md).

Ids: during the burn-in, newborns of year index ``1 - B .. 0`` take ids in those year blocks
(:func:`relocsim.demography.newborn_ids`); the drawn population moves to the unused block
``-B`` and clones to block ``-(B + 1)``, so no two firms ever share an id (a shared id would
share random streams).
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from relocsim import conversion, land_market
from relocsim.demography import YEAR_SPAN
from relocsim.firms import FirmTable, remove_agents, sync_agents
from relocsim.provenance import scenario_hash
from relocsim.records import Recorder
from relocsim.scenarios import Scenario, ScenarioError, apply_overrides

if TYPE_CHECKING:
    from relocsim.model import RelocationModel

REANCHOR_STREAM = 1
"""Third word of the seed of the re-anchoring generator (the drawn population uses 0)."""


def check_window(scenario: Scenario) -> None:
    """Refuse a scheduled event (plant closure, site opening) inside the burn-in window."""
    years = scenario.burn_in_years
    first, start = scenario.start_year - years, scenario.start_year
    where = f"{scenario.source_dir or scenario.name}: field 'burn_in_years'"
    for plant in scenario.plants:
        if first <= plant.close_year < start:
            raise ScenarioError(
                f"{where}: value {years} is invalid; expected a burn-in window ({first}-"
                f"{start - 1}) free of scheduled events, but plant '{plant.name}' closes in "
                f"{plant.close_year}"
            )
    for name, zone in scenario.zones.items():
        if first <= zone.open_year < start:
            raise ScenarioError(
                f"{where}: value {years} is invalid; expected a burn-in window ({first}-"
                f"{start - 1}) free of scheduled events, but zone '{name}' opens in "
                f"{zone.open_year}"
            )


LEVERS = re.compile(
    r"^(policies\.|regions\.[^.]+\.(incentive_|aid\.)|zones\.[^.]+\.(land_subsidy|preemption|"
    r"densification|site_option|site_investor_|open_year|development_zone|reserved_for)|plants\.)"
)
"""Override paths that pull a policy lever or schedule an event: the burn-in ignores them."""

CACHE_BYTES = 256 * 2**20
"""Memory the burnt-in states kept in the process may take (at least one is kept): a sweep's
variants of one seed, or the dashboard's seed pairs rebuilt after a lever change, start from
them. The default's takes 19 MB: the dashboard's ten pairs at the most find theirs (with four
states kept, five pairs burnt in again on every change), and a sweep's or calibration's worker
holds at most this much of states it may not use again."""


@dataclass(frozen=True)
class BurntIn:
    """What a burn-in leaves: its firms (agents detached) and each pool's land use per job
    relative to the standard at its final prices (:func:`relocsim.land_market.land_use_response`).
    """

    firms: FirmTable
    land_use: np.ndarray

    @property
    def nbytes(self) -> int:
        arrays = [v for v in vars(self.firms).values() if isinstance(v, np.ndarray)]
        return self.land_use.nbytes + sum(a.nbytes for a in arrays)


_burnt: OrderedDict[tuple[str, int, int], BurntIn] = OrderedDict()


def standing_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides the burn-in applies: all but those of policy levers and scheduled events."""
    return {path: value for path, value in overrides.items() if not LEVERS.match(path)}


def burn_in(model: RelocationModel, base: Scenario, overrides: Mapping[str, Any]) -> None:
    """Start ``model`` from a burn-in of ``burn_in_years`` re-anchored to the sourced start.

    The burn-in runs ``base`` with the ``overrides`` that are not policy levers
    (:func:`standing_overrides`): a policy acts from ``start_year`` on, so a policy run and its
    baseline with the same seed start from the same firms (paired runs stay paired). A no-op
    when ``burn_in_years`` is 0. Called at the end of ``RelocationModel.__init__``.
    """
    scenario = model.scenario
    years = scenario.burn_in_years
    if years <= 0:
        return
    check_window(scenario)
    standing = apply_overrides(base, standing_overrides(overrides)) if overrides else base
    key = (scenario_hash(standing), model.seed, years)
    if key not in _burnt:
        _burnt[key] = _burn(type(model), standing, model)
        while len(_burnt) > 1 and sum(b.nbytes for b in _burnt.values()) > CACHE_BYTES:
            _burnt.popitem(last=False)
    _burnt.move_to_end(key)
    remove_agents(model.firms, model.firms.live_rows())
    sync_agents(model)  # agents of the drawn firms, if any were made, leave the model
    burnt = _burnt[key]
    model.firms = copy.deepcopy(burnt.firms)  # its agents are made when looked at
    reanchor(model, burnt.land_use)
    _forget_history(model)


def _burn(
    model_class: type[RelocationModel], standing: Scenario, model: RelocationModel
) -> BurntIn:
    """The firm table and land use per job after ``burn_in_years`` of ``standing``."""
    years = standing.burn_in_years
    warm = model_class(
        apply_overrides(standing, {"burn_in_years": 0}),
        seed=model.seed,
        threads=model.threads,
        implementation=model.implementation,
    )
    firms = warm.firms
    live = firms.live_rows()
    firms.firm_id[live] = -years * YEAR_SPAN + np.arange(len(live))
    firms.birth_year[live] -= years
    warm.year = standing.start_year - years
    for _ in range(years):
        warm.step()
    firms.compact()
    firms.agent[:] = None
    return BurntIn(firms, warm.land.densification / warm.land.planned_densification)


def reanchor(model: RelocationModel, land_use: np.ndarray) -> None:
    """Bring each region x sector cell back to its sourced jobs and the land to its sourced
    start, keeping the burnt-in composition (see the module docstring).

    Args:
        land_use: each pool's land use per job relative to the standard at the burn-in's end.
    """
    scenario, geo, firms = model.scenario, model.geo, model.firms
    rng = np.random.default_rng([model.seed, scenario.start_year, REANCHOR_STREAM])
    live = firms.live_rows()
    deciding = live[firms.close_year[live] == 0]
    region = geo.pool_region[firms.pool[deciding]]
    dropped, cloned = [], []
    for cell in scenario.population:
        r, s = geo.region_id(cell.region), geo.sector_names.index(cell.sector)
        rows = deciding[(region == r) & (firms.sector[deciding] == s)]
        if cell.jobs == 0:
            dropped.append(rows)
        elif len(rows):
            keep, extra = _draw_to_jobs(rng, firms.employees[rows], cell.jobs)
            dropped.append(np.setdiff1d(rows, rows[keep]))
            cloned.append(rows[extra])
    remove_agents(firms, np.concatenate(dropped) if dropped else np.zeros(0, np.int64))
    _clone(model, np.concatenate(cloned) if cloned else np.zeros(0, np.int64))
    live = firms.live_rows()
    plants = live[firms.close_year[live] != 0]
    deciding = live[firms.close_year[live] == 0]  # plants hold their sourced sites
    firms.land_m2[deciding] /= land_use[firms.pool[deciding]]
    occupied = np.bincount(firms.pool[live], weights=firms.land_m2[live], minlength=geo.n_pools)
    site_pools = np.bincount(firms.pool[plants], minlength=geo.n_pools) > 0
    model.land = land_market.initial_land(scenario, geo, occupied, site_pools)
    conversion.owe_yearly_flow(model.land, geo.pool_region, model.conversion, model.year)


def _draw_to_jobs(
    rng: np.random.Generator, employees: np.ndarray, jobs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which firms of a cell to keep, and which to clone, so that its jobs come to ``jobs``.

    Firms are taken in a random order, cycling through the cell again (cloning) if it holds
    fewer jobs than the target, until the jobs taken reach it (the last firm is kept if that
    lands closer to the target than stopping before it).

    Returns:
        Positions kept once (each at most once) and positions cloned (any number of times).
    """
    total = int(employees.sum())
    rounds = max(1, -(-jobs // max(total, 1)))
    order = np.concatenate([rng.permutation(len(employees)) for _ in range(rounds)])
    cumulative = np.cumsum(employees[order])
    n = int(np.searchsorted(cumulative, jobs, side="left")) + 1
    n = min(n, len(order))
    if n > 1 and abs(cumulative[n - 2] - jobs) <= abs(cumulative[n - 1] - jobs):
        n -= 1
    taken = order[:n]
    first = taken[: len(employees)]
    return np.sort(first), taken[len(employees) :]


def _clone(model: RelocationModel, rows: np.ndarray) -> None:
    """Append copies of firms ``rows`` (every column but the id) with fresh ids."""
    if not len(rows):
        return
    firms = model.firms
    years = model.scenario.burn_in_years
    values = {
        name: getattr(firms, name)[rows].copy()
        for name in firms.columns()
        if name not in ("firm_id", "agent", "alive")
    }
    ids = -(years + 1) * YEAR_SPAN + np.arange(len(rows), dtype=np.int64)
    firms.append(ids, **values)


def _forget_history(model: RelocationModel) -> None:
    """Clear the records of the burn-in; the state (firms, land, contracts) is kept."""
    firms, geo = model.firms, model.geo
    live = firms.live_rows()
    recorder = Recorder(geo, model.recorder.low_skilled_share)
    recorder.record_start(
        geo.pool_region[firms.pool[live]],
        firms.sector[live],
        firms.employees[live].astype(np.float64),
    )
    model.recorder = recorder
    model.datacollector = mesa.DataCollector(
        model_reporters=dict(model.datacollector.model_reporters)
    )
    # Mesa >= 3.5 also keeps a clock whose scheduled step events lie ahead of it: it keeps
    # running (resetting it would leave the next step event years away)
    model.steps = 0
    model.running = True
