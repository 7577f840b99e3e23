"""The decision panel written for outside estimators: larch 6 and Biogeme 3.3.

Both express the simulator's model (``docs/estimation.md``) on alternatives stay + every pool:
stay has utility 0, pool ``a`` of nest ``n`` the nest's upper-level terms plus the nest scale
times our pool utility; the nested logit nests the pools "own region" and "other regions"
under one shared scale. Their lower coefficients are therefore ours times the nest scale
(:func:`to_outside`, :func:`from_outside`). The aid on offer and the resale term carry
``b_land``'s coefficient, so they join the land attribute. With sampled alternatives
(multinomial logit) the alternatives are stay and the sample's slots, each pool's utility
shifted by the log of its weight: exactly our sampled likelihood.

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
FREE_UPPER = ("asc_move", "b_stress", "b_growth", "b_age", "b_size", "asc_deloc", "b_size_deloc")
"""Upper-level coefficients the outside models can estimate (same value as ours)."""
NEST = "nest_scale"


class OutsideModelError(ValueError):
    """A panel, scenario or spec the outside estimators cannot express."""


@dataclass
class LongTable:
    """The decisions as one row per case and alternative (stay first, then the pools).

    Attributes:
        frame: ``idca`` table indexed by (caseid, altid): altid 0 stay, ``l + 1`` slot ``l``
            (pool ``l`` with full choice sets, the ``l``-th sampled pool otherwise); columns:
            one per free coefficient (its attribute), ``offset`` (fixed terms and, with
            sampled alternatives, the log expansion factor), ``avail`` and ``chose``.
        free: the free coefficients, in the columns' order (``nest_scale`` last if free).
        own: with full choice sets, the pools of the cases' own region (M,): the nests.
        n_slots: alternatives besides stay (M pools, or the sample's width).
    """

    frame: pd.DataFrame
    free: tuple[str, ...]
    own: np.ndarray | None
    n_slots: int

    @property
    def nested(self) -> bool:
        return NEST in self.free

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(c for c in self.free if c != NEST)


def long_table(
    panel: Panel, scenario: Scenario, spec: Spec, sample: Sample | None = None
) -> LongTable:
    """The panel as a case-alternative table both larch and Biogeme read.

    Args:
        sample: sampled alternatives (multinomial logit only): the alternatives are then stay
            and the sample's slots, each pool's utility shifted by the log of its expansion
            factor, so that the model is exactly :func:`relocsim.estimation.fit`'s sampled
            likelihood (``docs/estimation.md``, "Sampled alternatives").

    Raises:
        OutsideModelError: naming what the outside estimators cannot express.
    """
    free = _free_coefficients(spec)
    nested = NEST in free
    if nested and sample is not None:
        raise OutsideModelError("sampled alternatives: the outside models are MNL only there")
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

    def upper(c: str) -> np.ndarray:
        """Upper-level attribute ``c`` of every pool (N, M): its nest's value (z_own, z_other)."""
        j = UPPER.index(c)
        return np.where(own, data.z_own[:, j, None], data.z_other[:, j, None])

    resale = data.z_own[:, layout.resale_col]
    attribute = {
        "b_land": x[:, lower[0]] + x[:, layout.aid_col] + resale[:, None],
        "b_dist": x[:, lower[1]],
    }
    attribute |= {c: upper(c) for c in FREE_UPPER}
    # the fixed terms: lower ones enter larch's utility times the nest scale (0 if nested)
    offset = lam[s][:, None] * lower_offset
    for j, c in enumerate(UPPER):
        if c not in free and c != "resale":
            offset += gamma[s][:, j, None] * upper(c)
    avail = available(data, np.arange(n))
    if sample is None:
        slots, chosen, log_w = np.broadcast_to(np.arange(m), (n, m)), data.chosen + 1, None
    else:
        slots = np.maximum(sample.alts, 0)
        chosen = np.where(data.chosen >= 0, 1, 0)  # the sample's first slot is the chosen pool
        log_w = np.log(np.where(sample.alts >= 0, sample.weights, 1.0))

    def with_stay(values: np.ndarray) -> np.ndarray:
        picked = np.take_along_axis(values, slots, axis=1)
        return np.concatenate([np.zeros((n, 1)), picked], axis=1).ravel()

    width = slots.shape[1]
    in_sample = np.ones((n, width), bool) if sample is None else sample.alts >= 0
    columns = {c: with_stay(attribute[c]) for c in free if c != NEST}
    columns["offset"] = with_stay(offset)
    if log_w is not None:
        columns["offset"] += np.concatenate([np.zeros((n, 1)), log_w], axis=1).ravel()
    columns["avail"] = np.concatenate(
        [np.ones((n, 1)), np.take_along_axis(avail, slots, axis=1) & in_sample], axis=1
    ).ravel()
    columns["chose"] = np.eye(width + 1)[chosen].ravel()
    index = pd.MultiIndex.from_product(
        [np.arange(n), np.arange(width + 1)], names=["caseid", "altid"]
    )
    return LongTable(
        pd.DataFrame(columns, index=index), free, own[0] if sample is None else None, width
    )


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
    newborns = int((data.z_own[:, UPPER.index("newborn")] > 0).sum())
    if newborns:
        raise OutsideModelError(
            f"{newborns} newborn decisions (no stay alternative): leave them out, the outside "
            "models give every case the stay alternative"
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
        assert table.own is not None  # full choice sets (long_table refuses sampled nests)
        for name, in_nest in (("own", table.own), ("other", ~table.own)):
            pools = [a + 1 for a in range(table.n_slots) if in_nest[a]]
            model.graph.new_node(parameter=NEST, children=pools, name=name)
    else:
        model.lock_value(NEST, 1.0)
    return model


def biogeme_model(
    table: LongTable, name: str = "relocsim", tolerance: float = 1e-10, **settings: Any
) -> Any:
    """A Biogeme 3.3 ``BIOGEME`` object of the table's multinomial logit.

    One row per case; per alternative ``j`` (0 stay, ``l + 1`` slot ``l``) the columns
    ``<coefficient>_j``, ``offset_j`` and ``avail_j``; utility ``sum_c c * <c>_j + offset_j``.
    Biogeme reads and writes no file (no ``biogeme.toml``, no HTML or YAML report). Its
    default stopping tolerance (relative gradient 6e-6) leaves the third digit of weakly
    identified coefficients unsettled: ``tolerance`` tightens it. ``settings``: other Biogeme
    parameters (e.g. ``second_derivatives``).
    """
    if table.nested:
        raise OutsideModelError(
            "nest_scale free: Biogeme is a reference for the multinomial logit only (its nested "
            "logit compiles one JAX expression per alternative, too large here)"
        )
    import biogeme.biogeme as bio
    from biogeme.database import Database
    from biogeme.expressions import Beta, Variable
    from biogeme.models import loglogit
    from biogeme.parameters import Parameters

    n_alt = table.n_slots + 1
    wide = {
        f"{col}_{j}": values
        for col in (*table.attributes, "offset", "avail")
        for j, values in enumerate(table.frame[col].to_numpy().reshape(-1, n_alt).T)
    }
    chose = table.frame["chose"].to_numpy().reshape(-1, n_alt).argmax(axis=1)
    wide["choice"] = chose.astype(float)
    database = Database(name, pd.DataFrame(wide))
    betas = {c: Beta(c, 0.0, None, None, 0) for c in table.attributes}
    utility = {
        j: sum((betas[c] * Variable(f"{c}_{j}") for c in table.attributes), Variable(f"offset_{j}"))
        for j in range(n_alt)
    }
    availability = {j: Variable(f"avail_{j}") for j in range(n_alt)}
    logprob = loglogit(utility, availability, Variable("choice"))
    # a Parameters object: no biogeme.toml read or written in the working directory
    model = bio.BIOGEME(
        database,
        logprob,
        parameters=Parameters(),
        generate_html=False,
        generate_yaml=False,
        save_iterations=False,  # else it writes __<name>.iter in the working directory
        tolerance=tolerance,
        **settings,
    )
    model.model_name = name
    return model
