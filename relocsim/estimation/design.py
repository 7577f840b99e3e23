"""The estimation problem as arrays: attribute tables, decisions, and the parameter layout.

The simulator's nested logit (:mod:`relocsim.decision`, :mod:`relocsim._reference`) for a firm
``i`` of sector ``s`` deciding in year ``t``:

* lower level, pool ``a``: ``u_ia = sum_k beta[s, k] * scale[i, k] * table[row[i, k], a]`` with
  the attributes of :data:`LOWER`: land cost ``-w_i need_i cost_ta / money``, travel time
  ``-tt[zone_i, zone_a]``, loss on leaving ``-w_i loss_i / money`` if ``a`` is in another region,
  access, waterway, agglomeration ``log1p(jobs_tsz / 100)``, incentive, the language border,
  the aid on offer ``w_i A_t[g_i, a] / money`` (coefficient ``b_land_s``, derived; ``A`` from
  :meth:`relocsim.decision.ChoiceGroups.aid_on_offer` for the firm's origin region, sector and
  size class, at year ``t``'s land price) and the zone constants;
  ``w_i = (10 / typical size of i's class) ** elasticity``. Pools are available if the sector
  may use them, they are open in year ``t`` and the land on offer covers the firm's need.
* upper level: stay ``-lambda_s b_land_s w_i K_i / money`` (``K`` the cost of growing in
  place); nest own region / other regions ``sum_j gamma[s, j] * z_nest[i, j] + lambda_s *
  logsum_nest``, with the attributes of :data:`UPPER` (``asc_deloc`` and ``b_size_deloc``,
  times ``log(employees)``, only in the other-regions nest). The upper level is a multinomial logit,
  so the stay utility is carried to the two nests with its sign flipped: stay 0 and the resale
  attribute ``w_i (P_i + K_i) / money`` in both nests, with the derived coefficient
  ``lambda_s * b_land_s``. A newborn (``newborn`` rows of the panel: a firm choosing its first
  location) has no stay alternative and no move propensity: its nests carry only ``asc_deloc``
  (other regions) and the ``newborn`` attribute, and its aid on offer is the newborn groups'.

Each effective coefficient is a free parameter (shared by the sectors when pooled) or fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from relocsim.decision import (
    AGGLOMERATION_JOBS,
    REFERENCE_SIZE,
    SIZE_BOUNDS,
    TYPICAL_SIZE,
    AidOnOffer,
    ChoiceGroups,
    ChoiceParameters,
    ZoneQualities,
)
from relocsim.estimation.panel import Panel, PanelError
from relocsim.estimation.spec import SCALAR_COEFFICIENTS, Spec
from relocsim.geography import Geography, build_geography, choice_travel_time
from relocsim.public_accounts import RegionRules
from relocsim.scenarios import Scenario

LOWER = ("b_land", "b_dist", "b_claw", "b_access", "b_water", "b_agglo", "b_incentive")
"""Lower-level attributes with a per-sector coefficient (then the language border, zones)."""
AID = "aid_on_offer"
"""Lower-level attribute after the language border whose coefficient is b_land (derived)."""
UPPER = (
    "asc_move",
    "b_stress",
    "b_growth",
    "b_age",
    "b_size",
    "asc_deloc",
    "b_size_deloc",
    "resale",
    "newborn",
)
"""Upper-level (nest) attributes; ``resale`` (resale value plus cost of staying) has the derived
coefficient lambda * b_land; ``newborn`` (1 on a newborn's rows) the fixed coefficient
:data:`NEWBORN_SHIFT`."""
NEWBORN_SHIFT = 100.0
"""Added to both nests of a newborn, which has no stay alternative: its stay probability is then
below exp(-100 - max nest utility), nothing next to 1 (the nest utilities of a newborn are its
logsums times the nest scale, never near -60), and the kernel needs no branch of its own."""

STAY, OWN, OTHER = 0, 1, 2
NEUTRAL = {"nest_scale": 0.8}
"""Neutral starting values (others start at 0)."""
LAMBDA_BOUNDS = (1e-3, 1.0)


@dataclass
class ChoiceData:
    """The decisions and their alternatives as the likelihood kernels read them.

    Attributes:
        tables: attribute values by table row and pool (R_t, M).
        row: table row of each decision's attribute (N, K).
        scale: multiplier of each decision's attribute (N, K).
        allowed: 1 if the pool is open to the decision's sector that year (R_a, M).
        allow_row: row of ``allowed`` of each decision (N,).
        capacity: land on offer per year and pool, standard m2 (T, M).
        capacity_end: land left on offer after the year's capacity lottery (T, M).
        room_need: land a pool must have left after the lottery to have rejected no one (N,):
            a mover's pool choice enters the likelihood, conditionally on the pools of its
            nest left with that much, if its pool is one of them (docs/estimation.md,
            "Capacity rationing"); without ``capacity_end_m2`` data, 0 (the start set).
        year_idx: year index of each decision (N,).
        need: land each decision needs, standard m2 (N,).
        alt_region, dec_region: region of each pool (M,) and of each decision's origin (N,).
        sector: sector of each decision (N,).
        outcome: 0 stay, 1 own-region nest, 2 other-region nest (N,).
        chosen: chosen pool, -1 for stay or unplaced (N,).
        z_own, z_other: upper-level attributes of the two nests (N, J).
        firm: firm id of each decision (for clustering) (N,).
    """

    tables: np.ndarray
    row: np.ndarray
    scale: np.ndarray
    allowed: np.ndarray
    allow_row: np.ndarray
    capacity: np.ndarray
    capacity_end: np.ndarray
    room_need: np.ndarray
    year_idx: np.ndarray
    need: np.ndarray
    alt_region: np.ndarray
    dec_region: np.ndarray
    sector: np.ndarray
    outcome: np.ndarray
    chosen: np.ndarray
    z_own: np.ndarray
    z_other: np.ndarray
    firm: np.ndarray
    _blocks: KernelBlocks | None = field(default=None, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.sector)

    @property
    def n_pools(self) -> int:
        return self.tables.shape[1]

    def subset(self, rows: np.ndarray) -> ChoiceData:
        """The decisions ``rows`` (shared alternative tables)."""
        per_decision = [
            "row",
            "scale",
            "allow_row",
            "year_idx",
            "need",
            "room_need",
            "dec_region",
            "sector",
            "outcome",
            "chosen",
            "z_own",
            "z_other",
            "firm",
        ]
        values = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "_blocks"}
        for k in per_decision:
            values[k] = np.ascontiguousarray(values[k][rows])
        return ChoiceData(**values)

    def blocks(self) -> KernelBlocks:
        """The compiled kernel's blocks of decisions (computed once, then cached)."""
        if self._blocks is None:
            self._blocks = kernel_blocks(self)
        return self._blocks


BLOCK = 256
"""Most decisions per kernel block (the unit of parallel work and of the fixed-order sums)."""
SHARED_LEVELS = 64
"""An attribute whose scale takes at most this many values is folded into the blocks' base."""


@dataclass(frozen=True)
class KernelBlocks:
    """How the compiled kernel cuts the decisions into blocks sharing their pool-level terms.

    Decisions of one block have the same sector, year, origin region, availability row, table
    row of every attribute and scale of every shared attribute: the part of the utility
    those attributes make (``sum_k beta_k scale_k table[row_k, a]``) is computed once per block
    and per evaluation, and its gradient summed over the block's pools at the block's end.

    Attributes:
        order: decisions, block after block (N,).
        start: block ``b`` is ``order[start[b]:start[b + 1]]`` (B + 1,).
        shared: 1 for the attributes folded into the base (K,).
    """

    order: np.ndarray
    start: np.ndarray
    shared: np.ndarray


def kernel_blocks(data: ChoiceData, block: int = BLOCK) -> KernelBlocks:
    """Group the decisions of ``data`` into blocks of at most ``block`` (see KernelBlocks)."""
    shared = np.zeros(data.scale.shape[1], np.uint8)
    key = np.zeros(data.n, np.int64)
    columns = [data.sector, data.year_idx, data.dec_region, data.allow_row, *data.row.T]
    for k in range(data.scale.shape[1]):
        levels, inverse = np.unique(data.scale[:, k], return_inverse=True)
        if len(levels) <= SHARED_LEVELS:
            shared[k] = 1
            columns.append(inverse)
    for col in columns:  # dense ids of the combinations seen so far (no overflow)
        _, col = np.unique(np.asarray(col, np.int64), return_inverse=True)
        _, key = np.unique(key * (col.max(initial=0) + 1) + col, return_inverse=True)
    order = np.argsort(key, kind="stable")
    sizes = np.bincount(key)
    starts = [0]
    for size in sizes:
        starts.extend(starts[-1] + np.minimum(np.arange(block, size + block, block), size))
    return KernelBlocks(
        order=order.astype(np.int32),
        start=np.asarray(starts, np.int64),
        shared=shared,
    )


@dataclass
class Layout:
    """Where the free parameters go in the effective coefficients.

    Attributes:
        names: parameter names (P,).
        paths: scenario dotted paths each parameter overrides (P lists).
        beta_idx, beta_fixed: parameter index (-1: fixed) and fixed value of beta (S, K).
        gamma_idx, gamma_fixed: same for gamma (S, J) (the resale column is derived).
        lam_idx, lam_fixed: same for the nest scales (S,).
        start: starting values (P,).
        lower_names: attribute names (K,).
        land_col, resale_col: columns of b_land in beta and of resale in gamma.
        aid_col: column of the aid on offer in beta (its coefficient is b_land's), or None.
    """

    names: list[str]
    paths: list[list[str]]
    beta_idx: np.ndarray
    beta_fixed: np.ndarray
    gamma_idx: np.ndarray
    gamma_fixed: np.ndarray
    lam_idx: np.ndarray
    lam_fixed: np.ndarray
    start: np.ndarray
    lower_names: list[str]
    land_col: int = 0
    resale_col: int = UPPER.index("resale")
    aid_col: int | None = None

    @property
    def n_params(self) -> int:
        return len(self.names)

    def bounds(self) -> list[tuple[float | None, float | None]]:
        nest = set(self.lam_idx[self.lam_idx >= 0].tolist())
        return [LAMBDA_BOUNDS if p in nest else (None, None) for p in range(self.n_params)]

    def effective(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(beta (S, K), gamma (S, J), lam (S,)) from the parameter vector."""
        theta = np.asarray(theta, np.float64)
        beta = np.where(self.beta_idx >= 0, theta[np.maximum(self.beta_idx, 0)], self.beta_fixed)
        gamma = np.where(
            self.gamma_idx >= 0, theta[np.maximum(self.gamma_idx, 0)], self.gamma_fixed
        )
        lam = np.where(self.lam_idx >= 0, theta[np.maximum(self.lam_idx, 0)], self.lam_fixed)
        gamma[:, self.resale_col] = lam * beta[:, self.land_col]
        if self.aid_col is not None:
            beta[:, self.aid_col] = beta[:, self.land_col]
        return beta, gamma, lam

    def local_index(self) -> np.ndarray:
        """Parameter of each local coefficient (K lower, J upper, nest scale) by sector (S, Q)."""
        return np.concatenate([self.beta_idx, self.gamma_idx, self.lam_idx[:, None]], axis=1)

    def to_theta(
        self, theta: np.ndarray, local: np.ndarray, sector: np.ndarray | None = None
    ) -> np.ndarray:
        """Map gradients over local coefficients to the parameters (chain rule, resale and aid
        terms).

        Args:
            local: (S, Q) summed per sector, or (N, Q) per decision with ``sector`` given.
        """
        beta, _, lam = self.effective(theta)
        k, j = beta.shape[1], len(UPPER)
        local = np.array(local, np.float64)
        s = np.arange(len(lam)) if sector is None else sector
        res = local[:, k + self.resale_col]
        local[:, self.land_col] += res * lam[s]
        local[:, k + j] += res * beta[s, self.land_col]
        local[:, k + self.resale_col] = 0.0
        if self.aid_col is not None:
            local[:, self.land_col] += local[:, self.aid_col]
            local[:, self.aid_col] = 0.0
        idx = self.local_index()[s]
        out = np.zeros((local.shape[0], self.n_params))
        for q in range(local.shape[1]):
            ok = idx[:, q] >= 0
            np.add.at(out, (np.flatnonzero(ok), idx[ok, q]), local[ok, q])
        return out.sum(axis=0) if sector is None else out


def size_weight(employees: np.ndarray, elasticity: float) -> np.ndarray:
    """Weight of money for each firm's size class, as in :class:`relocsim.decision.ChoiceGroups`."""
    size_class = np.searchsorted(SIZE_BOUNDS, employees, side="right")
    return ((REFERENCE_SIZE / TYPICAL_SIZE) ** elasticity)[size_class]


def build_layout(scenario: Scenario, geo: Geography, spec: Spec) -> Layout:
    """Lay out the free parameters of ``spec``, other coefficients fixed at the scenario's."""
    sectors = list(scenario.sectors.values())
    n_s = len(sectors)
    names: list[str] = []
    paths: list[list[str]] = []
    start: list[float] = []

    def add(name: str, path: list[str], value: float) -> int:
        names.append(name)
        paths.append(path)
        start.append(value)
        return len(names) - 1

    def sector_block(coef: str) -> tuple[np.ndarray, np.ndarray]:
        fixed = np.array([getattr(s, coef) for s in sectors], np.float64)
        idx = np.full(n_s, -1)
        mode = spec.mode(coef)
        neutral = NEUTRAL.get(coef, 0.0)
        if mode == "pooled":
            value = float(fixed.mean()) if spec.start == "scenario" else neutral
            idx[:] = add(coef, [f"sectors.{s.name}.{coef}" for s in sectors], value)
        elif mode == "sector":
            for i, s in enumerate(sectors):
                value = fixed[i] if spec.start == "scenario" else neutral
                idx[i] = add(f"{coef}[{s.name}]", [f"sectors.{s.name}.{coef}"], value)
        return idx, fixed

    def scalar(coef: str) -> tuple[np.ndarray, np.ndarray]:
        fixed = np.full(n_s, float(getattr(scenario.behaviour, coef)))
        idx = np.full(n_s, -1)
        if spec.mode(coef) == "pooled":
            value = fixed[0] if spec.start == "scenario" else 0.0
            idx[:] = add(coef, [f"behaviour.{coef}"], value)
        return idx, fixed

    beta_cols = [sector_block(c) for c in LOWER] + [scalar("language_border")]
    beta_cols.append((np.full(n_s, -1), np.zeros(n_s)))  # aid on offer: b_land (derived)
    lower_names = [*LOWER, "language_border", AID]
    zone_names = list(geo.zone_names)
    amenity = np.array([scenario.zones[z].amenity for z in zone_names])
    if spec.zone_constants:
        for z, name in enumerate(zone_names):
            idx = np.full(n_s, -1)
            if z > 0:  # the first zone is the reference: its constant stays at the scenario's
                value = amenity[z] if spec.start == "scenario" else 0.0
                idx[:] = add(f"amenity[{name}]", [f"zones.{name}.amenity"], value)
            beta_cols.append((idx, np.full(n_s, amenity[z])))
            lower_names.append(f"amenity[{name}]")
    else:
        beta_cols.append((np.full(n_s, -1), np.ones(n_s)))
        lower_names.append("amenity")
    gamma_cols = []
    for coef in UPPER:
        if coef == "resale":
            gamma_cols.append((np.full(n_s, -1), np.zeros(n_s)))
        elif coef == "newborn":
            gamma_cols.append((np.full(n_s, -1), np.full(n_s, NEWBORN_SHIFT)))
        elif coef in SCALAR_COEFFICIENTS:
            gamma_cols.append(scalar(coef))
        else:
            gamma_cols.append(sector_block(coef))
    lam_idx, lam_fixed = sector_block("nest_scale")
    return Layout(
        names=names,
        paths=paths,
        beta_idx=np.stack([c[0] for c in beta_cols], axis=1),
        beta_fixed=np.stack([c[1] for c in beta_cols], axis=1),
        gamma_idx=np.stack([c[0] for c in gamma_cols], axis=1),
        gamma_fixed=np.stack([c[1] for c in gamma_cols], axis=1),
        lam_idx=lam_idx,
        lam_fixed=lam_fixed,
        start=np.array(start, np.float64),
        lower_names=lower_names,
        aid_col=lower_names.index(AID),
    )


def _language_border(scenario: Scenario) -> np.ndarray:
    """1 where moving from region r to region q crosses the language border (R, R)."""
    languages = [r.language for r in scenario.regions.values()]
    return np.array(
        [[float("both" not in (a, b) and a != b) for b in languages] for a in languages]
    )


def aid_on_offer(
    scenario: Scenario, geo: Geography, price: np.ndarray, densification: np.ndarray
) -> np.ndarray:
    """Aid on offer (EUR) by year, choice group and pool (T, 2 * R * S * C, M).

    The simulator's own :meth:`relocsim.decision.ChoiceGroups.aid_on_offer` at each year's land
    price and densification by pool (T, M); groups are numbered as the simulator's, ``((n * R
    + r) * S + s) * C + c`` with ``n`` 1 for newborns (to whom the anti-relocation rule does not
    apply).
    """
    n_r = len(geo.region_names)
    none = np.zeros(0, np.int64)
    groups = ChoiceGroups.of(
        none,
        none,
        np.zeros(0),
        ChoiceParameters.from_scenario(scenario),
        scenario.behaviour.money_size_elasticity,
        n_r,
        newborn=np.zeros(0, bool),
    )
    rules = RegionRules.from_scenario(scenario)
    development = np.array(
        [scenario.zones[geo.zone_names[z]].development_zone for z in geo.pool_zone]
    )
    land_per_job = np.array([s.land_per_job_m2 for s in scenario.sectors.values()])
    return np.stack(
        [
            groups.aid_on_offer(
                AidOnOffer(rules, price[t], densification[t], development, land_per_job),
                geo.pool_region,
            )
            for t in range(len(price))
        ]
    )


def build_data(
    panel: Panel, scenario: Scenario, zone_constants: bool = False, geo: Geography | None = None
) -> ChoiceData:
    """Turn a validated panel and its scenario into the likelihood's arrays.

    Args:
        zone_constants: one attribute per zone (to estimate the zone constants) instead of the
            scenario's constants as one fixed attribute.
    """
    geo = geo or build_geography(scenario)
    d, alt = panel.decisions, panel.alternatives
    behaviour = scenario.behaviour
    money = behaviour.money_scale_eur
    n, m, n_s = len(d), geo.n_pools, len(geo.sector_names)
    n_z, n_r = len(geo.zone_names), len(geo.region_names)
    pool_index = {name: i for i, name in enumerate(geo.pool_names)}
    sector_index = {name: i for i, name in enumerate(geo.sector_names)}
    years = np.unique(d["year"].to_numpy())
    year_idx = np.searchsorted(years, d["year"].to_numpy()).astype(np.int32)
    t = len(years)

    alt = alt[alt["year"].isin(years)].copy()
    alt["t"] = np.searchsorted(years, alt["year"].to_numpy())
    alt["a"] = alt["pool"].map(pool_index)

    def by_year(column: str) -> np.ndarray:
        out = np.zeros((t, m))
        out[alt["t"].to_numpy(), alt["a"].to_numpy()] = alt[column].to_numpy(np.float64)
        return out

    cost, capacity, incentive, is_open = (
        by_year(c) for c in ("cost_per_m2_eur", "capacity_m2", "incentive_keur", "open")
    )
    # without the land left after the lottery, no rationing correction (the start set)
    rationed = "capacity_end_m2" in alt and "largest_need_m2" in alt
    capacity_end = by_year("capacity_end_m2") if rationed else capacity
    largest = by_year("largest_need_m2").max(axis=1) if rationed else np.zeros(t)
    jobs = np.stack([by_year(f"jobs.{s}") for s in geo.sector_names], axis=1)  # (T, S, M)
    quality = ZoneQualities.from_scenario(scenario, geo)
    zone_a, region_a = geo.pool_zone, geo.pool_region
    crossing = (region_a[None, :] != np.arange(n_r)[:, None]).astype(np.float64)
    tables = [
        -cost / money,  # land: rows t
        -choice_travel_time(geo, scenario.behaviour.own_region_distance_scale)[:, zone_a],  # dist
        -crossing,  # claw: rows region
        quality.access[zone_a][None, :],
        quality.water[zone_a][None, :],
        np.log1p(jobs / AGGLOMERATION_JOBS).reshape(t * n_s, m),  # agglo: rows t * S + s
        incentive,  # rows t
        -_language_border(scenario)[:, region_a],  # rows region
        # aid on offer: rows ((t * 2 + newborn) * R + region) * S * C + (sector * C + size class)
        aid_on_offer(scenario, geo, by_year("land_price_eur"), by_year("densification")).reshape(
            -1, m
        ),
    ]
    sector = d["sector"].map(sector_index).to_numpy().astype(np.int32)
    pool = d["pool"].map(pool_index).to_numpy()
    zone_i, region_i = zone_a[pool], region_a[pool]
    employees = d["employees"].to_numpy(np.float64)
    weight = size_weight(employees, behaviour.money_size_elasticity)
    need = d["need_m2"].to_numpy(np.float64)
    loss = d["departure_cost_eur"].to_numpy(np.float64)
    zero = np.zeros(n, np.int64)
    size_class = np.searchsorted(SIZE_BOUNDS, employees, side="right")
    newborn = d["newborn"].to_numpy(bool) if "newborn" in d.columns else np.zeros(n, bool)
    origin = (year_idx * 2 + newborn) * n_r + region_i
    group = (origin * n_s + sector) * len(TYPICAL_SIZE) + size_class
    rows = [
        *(year_idx, zone_i, region_i, zero, zero, year_idx * n_s + sector, year_idx, region_i),
        group,
    ]
    scales = [weight * need, 1.0, weight * loss / money, 1.0, 1.0, 1.0, 1.0, 1.0, weight / money]
    amenity = np.array([scenario.zones[z].amenity for z in geo.zone_names])
    if zone_constants:  # one indicator attribute per zone
        tables += [(zone_a == z).astype(np.float64)[None, :] for z in range(n_z)]
        rows += [zero] * n_z
        scales += [1.0] * n_z
    else:  # the scenario's zone constants as one attribute with coefficient 1
        tables.append(amenity[zone_a][None, :])
        rows.append(zero)
        scales.append(1.0)
    offsets = np.cumsum([0] + [len(x) for x in tables])
    all_tables = np.concatenate(tables, axis=0)
    row = np.stack([offsets[k] + np.asarray(r) for k, r in enumerate(rows)], axis=1)
    scale = np.stack([np.broadcast_to(np.asarray(c, np.float64), n) for c in scales], axis=1)
    outcome_text = d["outcome"].to_numpy()
    nest_text = d["nest"].to_numpy()
    outcome = np.where(outcome_text == "stay", STAY, np.where(nest_text == "own", OWN, OTHER))
    chosen = d["dest_pool"].map(pool_index).fillna(-1).to_numpy().astype(np.int32)
    allowed = (geo.allowed[None, :, :] & (is_open[:, None, :] > 0)).reshape(t * n_s, m)
    age = d["age"].to_numpy(np.float64)
    growth = np.maximum(d["log_growth"].to_numpy(np.float64), 0.0)
    # the stay utility -lambda b_land w K / money, moved to both nests (module docstring)
    held = d["premises_value_eur"].to_numpy(np.float64) + d["stay_cost_eur"].to_numpy(np.float64)
    resale = weight * held / money
    incumbent = (~newborn).astype(np.float64)  # a newborn has no move propensity
    log_size = np.log(employees) * incumbent
    common = [
        incumbent,
        d["stress"].to_numpy(np.float64) * incumbent,
        growth * incumbent,
        -np.log1p(age) * incumbent,
        -log_size,
    ]
    data = ChoiceData(
        tables=np.ascontiguousarray(all_tables),
        row=np.ascontiguousarray(row, dtype=np.int32),
        scale=np.ascontiguousarray(scale),
        allowed=np.ascontiguousarray(allowed, dtype=np.uint8),
        allow_row=(year_idx * n_s + sector).astype(np.int32),
        capacity=np.ascontiguousarray(capacity),
        capacity_end=np.ascontiguousarray(capacity_end),
        room_need=largest[year_idx].astype(np.float64),
        year_idx=year_idx,
        need=need,
        alt_region=region_a.astype(np.int32),
        dec_region=region_i.astype(np.int32),
        sector=sector,
        outcome=outcome.astype(np.int8),
        chosen=chosen,
        z_own=np.ascontiguousarray(
            np.stack([*common, np.zeros(n), np.zeros(n), resale, newborn], axis=1)
        ),
        z_other=np.ascontiguousarray(
            np.stack([*common, np.ones(n), log_size, resale, newborn], axis=1)
        ),
        firm=d["firm_id"].to_numpy(np.int64),
    )
    _check_chosen_available(data, panel)
    return data


def _check_chosen_available(data: ChoiceData, panel: Panel) -> None:
    """The chosen pool must have been open to the sector with room for the firm's need."""
    moved = np.flatnonzero(data.chosen >= 0)
    a = data.chosen[moved]
    ok = (data.allowed[data.allow_row[moved], a] > 0) & (
        data.capacity[data.year_idx[moved], a] >= data.need[moved]
    )
    if not ok.all():
        i = moved[~ok][0]
        raise PanelError(
            f"{panel.path}: row {i}, column 'dest_pool': pool "
            f"{panel.decisions['dest_pool'].iloc[i]!r} was not available to this firm in year "
            f"{panel.decisions['year'].iloc[i]} (closed, not allowed for its sector, or less land "
            f"on offer in {panel.alternatives_path} than its need_m2); {int((~ok).sum())} such rows"
        )


__all__ = [
    "ChoiceData",
    "KernelBlocks",
    "Layout",
    "aid_on_offer",
    "build_data",
    "build_layout",
    "kernel_blocks",
]
