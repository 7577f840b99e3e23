"""RelocationModel: the Mesa model whose ``step`` is one simulated year.

The year flows one way, each stage a call into the module that owns it:
demography -> space need -> nested stay/relocate/delocalise decision and location choice (the
compiled kernel) -> land market -> public accounts -> data collection.
Firm state lives in :class:`relocsim.firms.FirmTable` columns; the Mesa agents are its face.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import mesa
import numpy as np

from relocsim import (
    conversion,
    demography,
    entry,
    land_market,
    public_accounts,
    regional_trends,
    space_need,
    steady_start,
)
from relocsim import decision as decisions
from relocsim._rng import Streams
from relocsim.firms import NO_REGION, FirmTable, remove_agents, sync_agents
from relocsim.geography import build_geography
from relocsim.population import initial_firms
from relocsim.public_accounts import Ledger, RegionRules
from relocsim.records import Recorder, Results
from relocsim.scenarios import Scenario, apply_overrides, border_friction, load_scenario


@dataclass
class YearFlow:
    """What one simulated year hands from stage to stage (arrays over firms or pools).

    Attributes:
        ledger: the year's public money by region.
        newborns: firms drawn by demography that still have to find a location.
        offered: vacant land on offer per pool (m2), less what growth in place took;
            ``offered_before_growth`` the same before growth in place (the land a region offered,
            against which its shortfall is measured).
        grew: rows of firms that grew in place, ``grown_jobs`` the jobs their new land hosts,
            ``grown_m2`` that land and ``grown_cost_eur`` what it costs them (the stay branch's
            land cost); after the moves, only the growers that stayed.
        decision: the kernel's answer for deciding incumbents and newborns.
        newborn_ids: ids given to the newborns before the choice (they key their random streams).
        departure_cost_eur, held, decision_region: per deciding incumbent, the money it owes or
            forfeits by leaving its region, the conditional money it holds, and its region (for
            the deadweight counterfactual).
        movers, born: rows that moved, rows born this year.
        subsidised: (pools, m2) taken this year, for the land subsidy bill.
        shortfall: per pool, its region's unmet land demand (standard m2 of the newborns and
            movers that found no land) relative to the land the region offered.
    """

    ledger: Ledger
    newborns: demography.Newborns | None = None
    offered: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grew: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    grown_jobs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grown_m2: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grown_cost_eur: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decision: decisions.Decision | None = None
    newborn_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    departure_cost_eur: np.ndarray = field(default_factory=lambda: np.zeros(0))
    held: np.ndarray = field(default_factory=lambda: np.zeros(0))
    decision_region: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    movers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    born: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    subsidised: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    shortfall: np.ndarray | None = None
    offered_before_growth: np.ndarray = field(default_factory=lambda: np.zeros(0))


HEADLINE_SERIES = ("firms", "jobs", "relocations", "delocalisations")
"""Model-level series of Mesa's DataCollector (module-level functions keep the model picklable)."""


_agents_hidden = False
"""Whether a model froze the collector's view of the process since the last model started
(``RelocationModel._hide_agents``)."""


def _show_hidden_agents() -> None:
    """Give the collector back what a model with agents froze, as the next model starts: a
    finished model, held together by reference cycles, can then be freed. Nothing is collected
    here; the collector's own schedule does it."""
    global _agents_hidden
    if _agents_hidden:
        gc.unfreeze()
        _agents_hidden = False


def _simulated_year(model: RelocationModel) -> int:
    return model.year - 1


def _last_year(name: str, model: RelocationModel) -> float:
    return model.recorder.last_year.get(name, 0.0)


class RelocationModel(mesa.Model):
    """Firms that grow, stay, relocate or delocalise, one year per step.

    Args:
        scenario: a :class:`Scenario`, or a built-in name / path / ``synthetic:...`` spec.
        seed: the run's seed (``rng`` is accepted as an alias, as Mesa's batch_run passes it).
        overrides: dotted-path overrides (``{"policies.aid_portability.mode": "none"}``).
        threads: threads of the location-choice kernel (default: all cores or
            ``RELOCSIM_THREADS``); results do not depend on it.
        implementation: ``kernel`` (compiled) or ``reference`` (the plain NumPy location
            choice, same results, slower; for checks and benchmarks).
        **parameters: more overrides with ``__`` for dots
            (``policies__aid_portability__mode="none"``), so that ``mesa.batch_run`` can vary them.

    Attributes:
        scenario: the validated scenario in use.
        year: the year the next step simulates.
        firms: the columnar firm state.
        geo: regions, zones, land pools and travel times.
        land: the land market state.
        datacollector: Mesa's collector of the headline model series.
        agents_made: whether any firm's Mesa agent was made (they are made when looked at).
    """

    def __init__(
        self,
        scenario: Scenario | str = "brussels-metro",
        seed: int | None = 0,
        overrides: Mapping[str, Any] | None = None,
        threads: int | None = None,
        implementation: str = "kernel",
        rng: int | None = None,
        **parameters: Any,
    ) -> None:
        seed = int(rng if rng is not None and seed in (None, 0) else (seed or 0))
        super().__init__(rng=seed)
        _show_hidden_agents()
        self.agents_made = False  # set when a firm's Mesa agent is first made
        base = load_scenario(scenario) if isinstance(scenario, str) else scenario
        changes = {**(overrides or {}), **{k.replace("__", "."): v for k, v in parameters.items()}}
        self.scenario = apply_overrides(base, changes) if changes else base
        self.seed = seed
        self.threads = threads or int(os.environ.get("RELOCSIM_THREADS", 0)) or None
        self.implementation = implementation
        self.year = self.scenario.start_year
        self.geo = build_geography(self.scenario)
        sectors = list(self.scenario.sectors.values())
        self.land_per_job = np.array([s.land_per_job_m2 for s in sectors])
        self.sector_demography = demography.SectorDemography.from_scenario(self.scenario)
        self.drift_shift = regional_trends.drift_shift_table(self.scenario, self.geo)
        self.jobs_per_firm = entry.jobs_per_firm(self.scenario, self.geo.sector_names)
        self.conversion = conversion.yearly_flow(self.scenario, list(self.geo.region_names))
        self.choice_parameters = decisions.ChoiceParameters.from_scenario(self.scenario)
        self.qualities = decisions.ZoneQualities.from_scenario(self.scenario, self.geo)
        self.rules = RegionRules.from_scenario(self.scenario)
        self.pool_development = np.array(
            [
                self.scenario.zones[self.geo.zone_names[z]].development_zone
                for z in self.geo.pool_zone
            ]
        )
        self.border = np.array(border_friction(self.scenario), dtype=np.float64)
        self.recorder = Recorder(self.geo, np.array([s.low_skilled_share for s in sectors]))
        self.firms = FirmTable()
        self.decision_panel: Any = None  # a relocsim.decision_panel collector, if attached
        if self.scenario.burn_in_years <= 0:
            self._populate()  # a burn-in brings its own population (relocsim.steady_start)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "year": _simulated_year,
                **{name: partial(_last_year, name) for name in HEADLINE_SERIES},
            }
        )
        self.running = True
        steady_start.burn_in(self, base, changes)  # no-op unless burn_in_years > 0
        self.start_zone_firms = entry.zone_firms(
            self.firms, self.firms.live_rows(), self.geo.pool_zone, len(self.geo.zone_names)
        )  # the reference of density-dependent founding: the (re-anchored) start
        self._hide_agents()

    # ------------------------------------------------------------------ set-up

    @property
    def streams(self) -> Streams:
        """This year's per-firm random streams (keyed by seed, year, firm id and stage)."""
        return Streams(self.seed, self.year)

    def _populate(self) -> None:
        # the starting population is drawn once, before any policy acts: one seeded generator
        start = initial_firms(
            self.scenario, self.geo, np.random.default_rng([self.seed, self.year, 0])
        )
        self._add_firms(
            np.arange(len(start.employees), dtype=np.int64),
            sector=start.sector,
            pool=start.pool,
            employees=start.employees,
            land_m2=start.land_m2,
            birth_year=start.birth_year,
            close_year=start.plant_close_year,
        )
        occupied = np.bincount(start.pool, weights=start.land_m2, minlength=self.geo.n_pools)
        site_pools = (
            np.bincount(start.pool[start.plant_close_year > 0], minlength=self.geo.n_pools) > 0
        )
        self.land = land_market.initial_land(self.scenario, self.geo, occupied, site_pools)
        conversion.owe_yearly_flow(self.land, self.geo.pool_region, self.conversion, self.year)
        self.recorder.record_start(
            self.geo.pool_region[start.pool], start.sector, start.employees.astype(np.float64)
        )

    def _newborn_ids(self, cell: np.ndarray, index: np.ndarray) -> np.ndarray:
        return demography.newborn_ids(self.year - self.scenario.start_year + 1, cell, index)

    def _add_firms(self, ids: np.ndarray, **columns: np.ndarray) -> np.ndarray:
        return self.firms.append(ids, **columns)  # their agents are made when looked at

    @property
    def agents(self) -> mesa.agent.AgentSet:
        """Mesa's set of all agents, the live firms' made or removed now (see relocsim.firms)."""
        if "firms" in vars(self):
            sync_agents(self)
        return super().agents

    @property
    def agents_by_type(self) -> dict[type[mesa.Agent], mesa.agent.AgentSet]:
        """Mesa's agents by type, the live firms' made or removed now (see relocsim.firms)."""
        if "firms" in vars(self):
            sync_agents(self)
        return super().agents_by_type

    # ------------------------------------------------------------------ the year

    def step(self) -> None:
        """Simulate one year: each stage reads what the earlier ones put in ``flow``."""
        flow = YearFlow(ledger=Ledger(len(self.geo.region_names)))
        self._demography(flow)  # exits, closures, growth, newborns drawn
        self._space_need(flow)  # growth in place, space stress
        self._decide(flow)  # nested stay / relocate / delocalise choice (kernel)
        self._relocate(flow)  # moves and births carried out
        self._land_market(flow)  # housing conversion, new land, prices
        self._public_accounts(flow)  # contracts, clawback, deadweight, aid
        self._collect(flow.ledger)
        self.year += 1
        if self.year >= self.scenario.start_year + self.scenario.years:
            self.running = False

    def run(self, years: int | None = None, progress: Any = None) -> Results:
        """Simulate ``years`` years (default: the scenario's) and return the results.

        Args:
            years: years to simulate.
            progress: optional callable called with the year after each step.
        """
        for _ in range(self.scenario.years if years is None else years):
            self.step()
            if progress is not None:
                progress(self.year - 1)
        return self.results()

    def results(self, events: bool = True) -> Results:
        """The tables of the years simulated so far (``events`` False: the event log's table is
        left empty, for a caller that writes it from ``recorder.event_log`` part by part)."""
        return self.recorder.results(events)

    # ------------------------------------------------------------------ stages

    def _demography(self, flow: YearFlow) -> None:
        firms, year, streams, behaviour = (
            self.firms,
            self.year,
            self.streams,
            self.scenario.behaviour,
        )
        live = firms.live_rows()
        closed = demography.closing_plants(firms, live, year)
        deciding = self._deciding(live)
        terms = self._policy_terms(deciding)  # exits change no one's terms: reused for growth
        exited, saved = demography.exits(
            firms,
            deciding,
            year,
            self.sector_demography,
            behaviour,
            streams,
            incentive_keur=terms.incentive_keur,
            tax_keur=terms.tax_keur,
        )
        self._book_jobs(flow.ledger, "jobs_created_survival", saved, firms.employees[saved])
        firms.saved_year[saved] = np.where(
            firms.saved_year[saved] == 0, year, firms.saved_year[saved]
        )
        self._remove(closed, "closed")
        self._remove(exited, "exited")
        survivors = firms.alive[deciding]
        live, deciding = firms.live_rows(), deciding[survivors]
        before = firms.employees[deciding].copy()
        boost = terms.aid_boost[survivors]
        shift = regional_trends.drift_shift(self.drift_shift, self.geo, firms, deciding)
        created = demography.grow(
            firms, deciding, self.sector_demography, behaviour, streams, boost, shift
        )
        self._book_jobs(flow.ledger, "jobs_created_growth", deciding, created)
        gained = created != 0  # few firms hold aid: skip the rest
        firms.policy_jobs[deciding[gained]] += created[gained]
        self.recorder.growth(firms, deciding, firms.employees[deciding] - before)
        self._site_investors()
        attraction = land_market.birth_attraction(
            self.land,
            self.geo.pool_zone,
            len(self.geo.zone_names),
            year,
            behaviour.birth_vacancy_elasticity,
            behaviour.birth_price_elasticity,
        ) * entry.density_response(
            entry.zone_firms(firms, live, self.geo.pool_zone, len(self.geo.zone_names)),
            self.start_zone_firms,
            behaviour.birth_density_elasticity,
        )
        flow.newborns = demography.births(
            firms,
            live,
            self.geo.pool_zone,
            len(self.geo.zone_names),
            self.sector_demography,
            streams,
            attraction,
            entry.incumbent_weight(firms, live, behaviour.birth_jobs_weight, self.jobs_per_firm),
        )

    def _policy_terms(self, rows: np.ndarray) -> demography.PolicyTerms:
        """What aid, incentives and local taxes do to the demography of firms ``rows``."""
        firms, year = self.firms, self.year
        region = self.geo.pool_region[firms.pool[rows]]
        employees = firms.employees[rows].astype(np.float64)
        # the boost is spread over the aid's (equipment) commitment, so it runs for those years
        # only, not for the longer premises commitment (Brussels: 10 years for buildings)
        aided = np.zeros(len(rows), dtype=bool)
        held = np.flatnonzero(firms.aid_region[rows] != NO_REGION)  # few hold aid: skip the rest
        aided[held] = public_accounts.remaining_commitment(firms, rows[held], year) > 0
        incentive = public_accounts.incentive_rate_paid(firms, rows, year, region)
        tax = self.land.tax_eur_m2_year[firms.pool[rows]] * firms.land_m2[rows]
        return demography.PolicyTerms(
            aid_boost=demography.aid_boost(
                firms.aid_intensity[rows],
                firms.aid_commitment[rows],
                employees,
                aided,
                self.scenario.behaviour,
            ),
            incentive_keur=incentive / 1000.0,
            tax_keur=tax / np.maximum(employees, 1.0) / 1000.0,
        )

    def _book_jobs(self, ledger: Ledger, channel: str, rows: np.ndarray, jobs: np.ndarray) -> None:
        some = jobs != 0  # most firms owe nothing to a policy: skip them
        ledger.add(channel, self.geo.pool_region[self.firms.pool[rows[some]]], jobs[some])

    def _remove(self, rows: np.ndarray, how: str) -> None:
        firms = self.firms
        self.recorder.exits(self.year, firms, rows, how)
        land_market.release(
            self.land,
            firms.pool[rows],
            firms.land_m2[rows],
            self.scenario.land_market.conversion_rate,
        )
        firms.land_m2[rows] = 0.0
        public_accounts.close_contracts(firms, rows)
        remove_agents(firms, rows)

    def _site_investors(self) -> None:
        """A large site opened to one investor this year is taken whole by it.

        The investor is an anchor plant: it holds its parcel and jobs and takes no yearly decision.
        """
        for name, zone in self.scenario.zones.items():
            if not (
                zone.site_option == "single"
                and zone.open_year == self.year
                and zone.site_investor_jobs > 0
            ):
                continue
            z = self.geo.zone_id(name)
            for pool in np.flatnonzero(self.geo.pool_zone == z):
                vacant = self.land.vacant_m2[pool]
                if vacant <= 0:
                    continue
                sector = self.geo.sector_names.index(zone.site_investor_sector)
                # ids of site investors: the cells after the zone-by-sector birth cells
                cell = len(self.geo.zone_names) * len(self.geo.sector_names) + z
                rows = self._add_firms(
                    self._newborn_ids(np.array([cell]), np.array([0])),
                    sector=np.array([sector]),
                    pool=np.array([pool]),
                    employees=np.array([zone.site_investor_jobs]),
                    land_m2=np.array([vacant]),
                    birth_year=np.array([self.year]),
                    close_year=np.array([land_market.NEVER]),
                )
                land_market.occupy(self.land, np.array([pool]), np.array([vacant]))
                self.recorder.births(self.year, self.firms, rows)
                break

    def _deciding(self, live: np.ndarray) -> np.ndarray:
        """Firms that take yearly decisions: all but the plants placed by the scenario."""
        return live[self.firms.close_year[live] == 0]

    def _space_need(self, flow: YearFlow) -> None:
        firms, land = self.firms, self.land
        live = self._deciding(firms.live_rows())
        space_need.release_surplus(
            firms, live, land, self.land_per_job, self.scenario.land_market.conversion_rate
        )
        offered = land_market.offered_m2(
            land, self.year, self.scenario.land_market, self.scenario.policies.speculation_tax
        )
        before = firms.land_m2[live].copy()
        flow.offered_before_growth = offered.copy()
        grew = space_need.grow_in_place(firms, live, land, offered, self.land_per_job, self.streams)
        taken = firms.land_m2[grew] - before[np.searchsorted(live, grew)]
        pool = firms.pool[grew]
        per_job = self.land_per_job[firms.sector[grew]] * land.densification[pool]
        flow.offered, flow.grew, flow.grown_m2 = offered, grew, taken
        flow.grown_jobs = space_need.jobs_hosted(taken, per_job)
        # staying costs the grower its extra land, priced as a move branch prices land
        standard_cost = land_market.cost_per_m2(land, self.scenario.land_market)
        flow.grown_cost_eur = taken / land.densification[pool] * standard_cost[pool]

    def _decide(self, flow: YearFlow) -> None:
        firms, geo, scenario = self.firms, self.geo, self.scenario
        newborns = flow.newborns
        live = firms.live_rows()
        movable = self._deciding(live)
        zone = geo.pool_zone[firms.pool[live]]
        n_zones = len(geo.zone_names)
        sector_jobs = np.bincount(
            firms.sector[live] * n_zones + zone,
            weights=firms.employees[live],
            minlength=len(geo.sector_names) * n_zones,
        )
        available = (self.land.open_year <= self.year) & (self.land.developable_m2 > 0)
        utility = decisions.sector_utility(
            self.choice_parameters,
            geo,
            self.qualities,
            sector_jobs.reshape(len(geo.sector_names), n_zones),
            self.rules.incentive_rate / 1000.0,
            available,
        )
        region = geo.pool_region[firms.pool[movable]]
        # only firms with an aid or incentive contract can owe or hold anything: skip the rest
        bound = np.flatnonzero(
            (firms.aid_region[movable] != NO_REGION)
            | (firms.incentive_region[movable] != NO_REGION)
        )
        rows, origin = movable[bound], region[bound]
        flow.departure_cost_eur, flow.held = np.zeros(len(movable)), np.zeros(len(movable))
        flow.departure_cost_eur[bound] = public_accounts.departure_cost(
            firms, rows, self.year, origin, scenario.policies.aid_portability
        ).departure_cost_eur
        flow.held[bound] = public_accounts.unexpired_aid(
            firms, rows, self.year, origin
        ) + public_accounts.incentive_at_stake(firms, rows, self.year, origin)
        flow.decision_region = region
        # a grower weighs growing in place (paying for the extra land) against moving (selling
        # the premises it held before): decision.py's module docstring
        grower = np.searchsorted(movable, flow.grew)
        held_m2 = firms.land_m2[movable].copy()
        held_m2[grower] -= flow.grown_m2
        stay_cost = np.zeros(len(movable))
        stay_cost[grower] = flow.grown_cost_eur
        # ids are given before the choice: they key the newborns' random streams
        flow.newborn_ids = self._newborn_ids(newborns.cell, newborns.index)
        choice_inputs = {
            "cost_per_m2": land_market.cost_per_m2(self.land, scenario.land_market),
            "capacity_m2": flow.offered / self.land.densification,
            "need_m2": space_need.standard_need_m2(firms, movable, self.land_per_job),
            "newborn_need_m2": newborns.employees * self.land_per_job[newborns.sector],
            "departure_cost_eur": flow.departure_cost_eur,
            "premises_value_eur": land_market.premises_value(
                self.land, scenario.land_market, firms.pool[movable], held_m2
            ),
            "stay_cost_eur": stay_cost,
        }
        flow.decision = decisions.decide(
            firms=firms,
            rows=movable,
            newborns=newborns,
            newborn_ids=flow.newborn_ids,
            geo=geo,
            params=self.choice_parameters,
            behaviour=scenario.behaviour,
            utility=utility,
            border_friction=self.border,
            aid_on_offer=decisions.AidOnOffer(
                self.rules,
                self.land.price,
                self.land.densification,
                self.pool_development,
                self.land_per_job,
            ),
            year=self.year,
            seed=self.seed,
            n_sampled=scenario.n_sampled,
            threads=self.threads,
            implementation=self.implementation,
            **choice_inputs,
        )
        if self.decision_panel is not None:  # estimation data: see relocsim.decision_panel
            self.decision_panel.record(
                self,
                flow.decision,
                sector_jobs=sector_jobs.reshape(len(geo.sector_names), n_zones),
                available=available,
                newborns=newborns,
                newborn_ids=flow.newborn_ids,
                **choice_inputs,
            )

    def _relocate(self, flow: YearFlow) -> None:
        """Carry out the moves and births the kernel placed."""
        firms, geo, year = self.firms, self.geo, self.year
        decision, newborns = flow.decision, flow.newborns
        n = len(decision.rows)
        choice = decision.result.choice
        incumbents = choice[:n]
        stuck = decision.rows[incumbents == decisions.UNPLACED]
        self.recorder.unplaced(year, firms, stuck)
        moving = decisions.is_move(incumbents)
        rows = decision.rows[moving]
        to_pool = incumbents[moving]
        from_pool = firms.pool[rows].copy()
        origin, destination = geo.pool_region[from_pool], geo.pool_region[to_pool]
        need = space_need.standard_need_m2(firms, rows, self.land_per_job)
        new_land = need * self.land.densification[to_pool]
        land_market.release(
            self.land, from_pool, firms.land_m2[rows], self.scenario.land_market.conversion_rate
        )
        land_market.occupy(self.land, to_pool, new_land)
        flow.subsidised.append((to_pool, new_land))
        crossing = origin != destination
        aided = crossing & public_accounts.holds_aid_from(firms, rows, year, origin)
        self.recorder.aided_leavers(origin[aided], firms.sector[rows[aided]])
        repaid = public_accounts.settle_departures(
            flow.ledger,
            firms,
            rows[crossing],
            origin[crossing],
            destination[crossing],
            year,
            self.scenario.policies.aid_portability,
        )
        firms.pool[rows] = to_pool
        firms.land_m2[rows] = new_land
        firms.stress[rows] = 0.0
        firms.last_deloc_year[rows[crossing]] = year
        self.recorder.moves(year, firms, rows, from_pool, to_pool, repaid)

        self._settle_growth_in_place(flow, rows)

        placed = decisions.is_move(choice[n:])
        born = self._add_firms(
            flow.newborn_ids[placed],
            sector=newborns.sector[placed],
            pool=choice[n:][placed],
            employees=newborns.employees[placed],
            land_m2=(
                newborns.employees[placed]
                * self.land_per_job[newborns.sector[placed]]
                * self.land.densification[choice[n:][placed]]
            ),
            birth_year=np.full(int(placed.sum()), year),
        )
        self.recorder.births_unplaced(
            geo.pool_region[newborns.home_pool[~placed]], newborns.sector[~placed]
        )
        flow.shortfall = land_market.shortfall(
            geo.pool_region,
            flow.offered_before_growth,
            np.concatenate([firms.pool[stuck], newborns.home_pool[~placed]]),
            np.concatenate(
                [
                    space_need.standard_need_m2(firms, stuck, self.land_per_job),
                    newborns.employees[~placed] * self.land_per_job[newborns.sector[~placed]],
                ]
            ),
        )
        land_market.occupy(self.land, firms.pool[born], firms.land_m2[born])
        flow.subsidised.append((firms.pool[born], firms.land_m2[born]))
        self.recorder.births(year, firms, born)
        flow.movers, flow.born = rows, born

    def _settle_growth_in_place(self, flow: YearFlow, movers: np.ndarray) -> None:
        """Growers that stayed pay for their extra land; those that moved gave it back with their
        premises (their grown land left with the rest and is not paid)."""
        firms = self.firms
        stayed = ~np.isin(flow.grew, movers)
        flow.grew, flow.grown_m2 = flow.grew[stayed], flow.grown_m2[stayed]
        flow.grown_jobs = flow.grown_jobs[stayed]
        pool = firms.pool[flow.grew]
        paid = flow.grown_m2 * self.land.price[pool] * (1.0 - self.land.subsidy[pool])
        self.recorder.grew_in_place(self.year, firms, flow.grew, paid)
        flow.subsidised.append((pool, flow.grown_m2))

    def _land_market(self, flow: YearFlow) -> None:
        land_market.convert_sites_to_housing(self.land, self.year)
        conversion.owe_yearly_flow(self.land, self.geo.pool_region, self.conversion, self.year + 1)
        land_market.zone_new_land(self.land, self.scenario.land_market, self.year)
        land_market.update_prices(self.land, self.scenario.land_market, self.year, flow.shortfall)

    def _public_accounts(self, flow: YearFlow) -> None:
        firms, geo, year = self.firms, self.geo, self.year
        ledger, decision = flow.ledger, flow.decision
        streams = self.streams
        pools = np.concatenate([p for p, _ in flow.subsidised]).astype(np.int64)
        m2 = np.concatenate([m for _, m in flow.subsidised])
        ledger.add(
            "land_subsidy_paid",
            geo.pool_region[pools],
            m2 * self.land.price[pools] * self.land.subsidy[pools],
        )

        holders = np.flatnonzero(flow.held > 0)
        keep_with = decisions.retention_probability(decision, holders)
        keep_without = decisions.retention_probability(
            decision, holders, flow.departure_cost_eur[holders]
        )
        holder_rows = decision.rows[holders]
        public_accounts.record_retention(
            ledger,
            flow.decision_region[holders],
            flow.held[holders],
            firms.employees[holder_rows],
            keep_with,
            keep_without,
            saved=firms.saved_year[holder_rows] > 0,
            policy_jobs=firms.policy_jobs[holder_rows],
        )

        live = firms.live_rows()
        live_region = geo.pool_region[firms.pool[live]]
        public_accounts.expire_contracts(firms, live, year)
        public_accounts.pay_incentives(
            ledger, firms, live, live_region, year, self.scenario.policies.monitoring, streams
        )
        caught, repaid = public_accounts.enforce_aid_jobs(
            ledger,
            firms,
            live,
            live_region,
            year,
            self.rules,
            self.scenario.policies.monitoring,
            streams,
        )
        self.recorder.repaid(year, firms, caught, repaid)
        public_accounts.sign_incentives(firms, live, live_region, year, self.rules, streams)
        # aid pays a share of the investment: the jobs a grower's new land hosts and that land,
        # or all the jobs and land of a firm in new premises (movers and newborns)
        invested, invested_m2 = np.zeros(firms.size), np.zeros(firms.size)
        invested[flow.grew], invested_m2[flow.grew] = flow.grown_jobs, flow.grown_m2
        for rows in (flow.movers, flow.born):
            invested[rows], invested_m2[rows] = firms.employees[rows], firms.land_m2[rows]
        investing = np.flatnonzero((invested > 0) & firms.alive[: firms.size])
        pool = firms.pool[investing]
        aided = public_accounts.grant_aid(
            ledger,
            firms,
            investing,
            geo.pool_region[pool],
            self.pool_development[pool],
            invested[investing],
            invested_m2[investing] * self.land.price[pool],
            year,
            self.rules,
            streams,
        )
        self.recorder.aid_granted(year, firms, aided)

    def _collect(self, ledger: Ledger) -> None:
        firms, geo = self.firms, self.geo
        live = firms.live_rows()
        saved = live[firms.saved_year[live] > 0]
        self._book_jobs(ledger, "jobs_in_saved_firms", saved, firms.employees[saved])
        pool = firms.pool[live]
        land = self.land
        self.recorder.close_year(
            self.year,
            geo.pool_region[pool],
            firms.sector[live],
            geo.pool_zone[pool],
            firms.employees[live].astype(np.float64),
            firms.land_m2[live],
            {
                "developable_m2": land.developable_m2,
                "occupied_m2": land.occupied_m2,
                "price": land.price,
                "converted_m2": land.converted_m2,
            },
            ledger,
        )
        self.datacollector.collect(self)
        firms.compact()
        self._hide_agents()

    def _hide_agents(self) -> None:
        """A million long-lived agents make every cyclic collection scan them all; they form no
        garbage while the model runs, so move them out of the collector's sight. Only where
        agents were made (they are made when looked at): freezing hides every object of the
        process from the collector until the next model starts (:func:`_show_hidden_agents`),
        and a finished model, held together by reference cycles, cannot be freed before. Batch
        runs (sweeps, calibrations) and the dashboard make no agents and freeze nothing."""
        global _agents_hidden
        if self.agents_made:
            gc.freeze()
            _agents_hidden = True
