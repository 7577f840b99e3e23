"""The decision panel written for outside estimators: larch 6 and Biogeme 3.3.

Both express the simulator's model (``docs/estimation.md``) on alternatives stay + every pool:
stay has utility 0, pool ``a`` of nest ``n`` the nest's upper-level terms plus the nest scale
times our pool utility; the nested logit nests the pools "own region" and "other regions"
under one shared scale. Their lower coefficients are therefore ours times the nest scale
(:func:`to_outside`, :func:`from_outside`). The aid on offer and the resale term carry
``b_land``'s coefficient, so they join the land attribute.

What they can express is narrower than :func:`relocsim.estimation.fit`, and the builder
refuses the rest by name: pooled coefficients among :data:`FREE_LOWER` and
:data:`FREE_UPPER` (and ``nest_scale``); no unplaced firm (a move without a pool); start
choice sets (no ``capacity_end_m2`` rationing columns); for the nested logit one origin region
(their nests are the same for every case) and no fixed pool term besides 0 (larch's analytic
gradient ignores a fixed offset multiplied by its nest parameter). Biogeme is a reference for
the multinomial logit only (its nested logit compiles one JAX expression per alternative).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from relocsim.estimation.design import UPPER, ChoiceData, build_data, build_layout
from relocsim.estimation.likelihood import Sample
from relocsim.estimation.panel import Panel
from relocsim.estimation.sampling import available
from relocsim.estimation.spec import Spec
from relocsim.geography import build_geography
from relocsim.scenarios import Scenario

FREE_LOWER = ("b_land", "b_dist")
"""Pool-level coefficients the outside models can estimate (scaled by the nest scale there)."""
FREE_UPPER = ("asc_move", "b_stress", "b_growth", "b_age", "b_size", "asc_deloc")
"""Upper-level coefficients the outside models can estimate (same value as ours)."""
NEST = "nest_scale"


class OutsideModelError(ValueError):
    """A panel, scenario or spec the outside estimators cannot express."""


@dataclass
class LongTable:
    """The decisions as one row per case and alternative (stay first, then the pools).

    Attributes:
        frame: ``idca`` table indexed by (caseid, altid), altid 0 stay and ``a + 1`` pool ``a``;
            columns: one per free coefficient (its attribute), ``offset`` (fixed terms),
            ``avail`` and ``chose``.
        free: the free coefficients, in the columns' order (``nest_scale`` last if free).
        own: pools in the cases' own region (M,) (the nest of each pool).
        n_pools: M.
    """

    frame: pd.DataFrame
    free: tuple[str, ...]
    own: np.ndarray
    n_pools: int

    @property
    def nested(self) -> bool:
        return NEST in self.free

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(c for c in self.free if c != NEST)


def long_table(panel: Panel, scenario: Scenario, spec: Spec) -> LongTable:
    """The panel as a case-alternative table both larch and Biogeme read.

    Raises:
        OutsideModelError: naming what the outside estimators cannot express.
    """
    free = _free_coefficients(spec)
    nested = NEST in free
    geo = build_geography(scenario)
    layout = build_layout(scenario, geo, spec)
    data = build_data(panel, scenario, geo=geo)
    _check_data(data, nested)
    beta, gamma, lam = layout.effective(layout.start)
    if not nested and not np.allclose(lam, 1.0):
        raise OutsideModelError(
            f"nest scales {sorted(set(lam.tolist()))} fixed below 1: the multinomial logit needs "
            "nest_scale = 1 in the scenario, or nest_scale free (the nested logit)"
        )
    s, n, m = data.sector, data.n, data.n_pools
    x = data.scale[:, :, None] * data.tables[data.row]  # (N, K, M)
    lower = [layout.lower_names.index(c) for c in FREE_LOWER]
    fixed_k = [k for k in range(x.shape[1]) if k not in (*lower, layout.aid_col)]
    lower_offset = np.einsum("ik,ikm->im", beta[s][:, fixed_k], x[:, fixed_k])
    if nested and lower_offset.any():
        raise OutsideModelError(
            "fixed pool terms are not 0 (set b_access, b_water, b_agglo, b_incentive, b_claw, "
            "language_border and the zone constants to 0 or free them): larch's gradient "
            "ignores a fixed offset multiplied by its nest parameter"
        )
    own = data.alt_region[None, :] == data.dec_region[:, None]
    resale = data.z_own[:, layout.resale_col]
    fixed_j = [j for j, c in enumerate(UPPER) if c not in free and c != "resale"]
    upper_fixed = (gamma[s][:, fixed_j] * data.z_own[:, fixed_j]).sum(1)
    ones = np.ones((n, m))
    attribute = {
        "b_land": x[:, lower[0]] + x[:, layout.aid_col] + resale[:, None],
        "b_dist": x[:, lower[1]],
        "asc_deloc": (~own).astype(float),
    }
    for j, c in enumerate(UPPER[:-2]):  # asc_move .. b_size: the same for every pool
        attribute[c] = data.z_own[:, j][:, None] * ones
    # the fixed terms: lower ones enter larch's utility times the nest scale (0 if nested)
    offset = lam[s][:, None] * lower_offset + upper_fixed[:, None]
    if "asc_deloc" not in free:
        offset += np.where(own, 0.0, gamma[s][:, UPPER.index("asc_deloc")][:, None])

    def with_stay(values: np.ndarray) -> np.ndarray:
        return np.concatenate([np.zeros((n, 1)), values], axis=1).ravel()

    avail = available(data, np.arange(n))
    columns = {c: with_stay(attribute[c]) for c in free if c != NEST}
    columns["offset"] = with_stay(offset)
    columns["avail"] = np.concatenate([np.ones((n, 1)), avail], axis=1).ravel()
    columns["chose"] = np.eye(m + 1)[data.chosen + 1].ravel()
    index = pd.MultiIndex.from_product([np.arange(n), np.arange(m + 1)], names=["caseid", "altid"])
    return LongTable(pd.DataFrame(columns, index=index), free, own[0], m)


def _free_coefficients(spec: Spec) -> tuple[str, ...]:
    supported = (*FREE_LOWER, *FREE_UPPER, NEST)
    free = tuple(c for c, mode in spec.modes.items() if mode != "fixed")
    for c in free:
        if c not in supported or spec.mode(c) != "pooled":
            raise OutsideModelError(
                f"coefficient {c!r} = {spec.mode(c)!r}: the outside models take pooled "
                f"coefficients among {supported}"
            )
    if spec.zone_constants:
        raise OutsideModelError("zone_constants = true: not supported by the outside models")
    return tuple(c for c in supported if c in free)


def _check_data(data: ChoiceData, nested: bool) -> None:
    unplaced = int(((data.chosen < 0) & (data.outcome > 0)).sum())
    if unplaced:
        raise OutsideModelError(
            f"{unplaced} unplaced decisions (a move without a pool): leave them out, the "
            "outside models have no such outcome"
        )
    if data.room_need.any():
        raise OutsideModelError(
            "the panel has rationing columns (capacity_end_m2, largest_need_m2): drop them, the "
            "outside models use the start choice sets"
        )
    if nested and len(np.unique(data.dec_region)) > 1:
        raise OutsideModelError(
            "decisions from several origin regions: the outside nested logits need one (their "
            "nests own / other region are the same for every case)"
        )


def to_outside(params: Mapping[str, float]) -> dict[str, float]:
    """Our estimates as the outside models' parameters (lower ones times the nest scale)."""
    lam = float(params.get(NEST, 1.0))
    return {k: float(v) * (lam if k in FREE_LOWER else 1.0) for k, v in params.items()}


def from_outside(values: Mapping[str, float]) -> dict[str, float]:
    """The outside models' parameters as ours (the inverse of :func:`to_outside`)."""
    lam = float(values.get(NEST, 1.0))
    return {k: float(v) / (lam if k in FREE_LOWER else 1.0) for k, v in values.items()}


def larch_model(table: LongTable) -> Any:
    """A larch 6 ``Model`` of the table: MNL, or the two-level nested logit if nest_scale is
    free (nests own / other region, one shared parameter ``nest_scale``)."""
    import larch as lx

    ds = lx.Dataset.construct.from_idca(table.frame)
    model = lx.Model(ds)
    utility = lx.P("one") * lx.X("offset")
    for c in table.attributes:
        utility = utility + lx.P(c) * lx.X(c)
    model.utility_ca = utility
    model.lock_value("one", 1.0)
    model.availability_ca_var = "avail"
    model.choice_ca_var = "chose"
    if table.nested:
        for name, in_nest in (("own", table.own), ("other", ~table.own)):
            pools = [a + 1 for a in range(table.n_pools) if in_nest[a]]
            model.graph.new_node(parameter=NEST, children=pools, name=name)
    else:
        model.lock_value(NEST, 1.0)
    return model


def sampled_table(table: LongTable, sample: Sample) -> LongTable:
    """The table restricted to each case's sampled alternatives (stay and the sampled pools),
    with the sampling correction ``log(weight)`` (expansion factor) added to ``offset``."""
    n = len(table.frame) // (table.n_pools + 1)
    keep = np.zeros((n, table.n_pools + 1), bool)
    log_w = np.zeros((n, table.n_pools + 1))
    keep[:, 0] = True
    valid = sample.alts >= 0
    rows = np.broadcast_to(np.arange(n)[:, None], sample.alts.shape)[valid]
    cols = sample.alts[valid] + 1
    keep[rows, cols] = True
    log_w[rows, cols] = np.log(sample.weights[valid])
    frame = table.frame.copy()
    frame["offset"] = frame["offset"].to_numpy() + log_w.ravel()
    frame["avail"] = frame["avail"].to_numpy() * keep.ravel()
    return LongTable(frame, table.free, table.own, table.n_pools)
