"""Control function for the endogeneity of the land price (Petrin & Train 2010).

A pool-year unobservable ``xi_ta`` (a pool's appeal that year, seen by firms and by the land
market but not in the data) raises both the pool's utility and its land price, so the plain
estimate of ``b_land`` is biased towards zero. With instruments ``Z`` in the alternatives
table (columns that move the price but not the appeal), the control function estimator:

1. first stage, one row per (year, pool) of the panel's years: ``cost_per_m2_eur`` (the land
   term of the utility) on the instruments and the exogenous pool-year terms (year effects,
   the zone's access and waterway indices, the regional incentive), by least squares;
2. the residual ``v_ta`` (divided by its standard deviation) enters every pool's lower-level
   utility as one more attribute with one pooled coefficient ``cf_land``; what ``xi`` depends
   on ``v`` is then controlled for and ``b_land`` is consistent (if ``xi`` is linear in ``v``
   given the instruments, as in a first stage that is a linear projection).

Standard errors are corrected for the estimated first stage by Murphy & Topel (1985):
``V = V_2 + H^-1 C V_1 C' H^-1``, ``H`` the likelihood's Hessian, ``C`` the derivative of its
score over the first-stage coefficients (central differences of the analytic gradient) and
``V_1`` the first stage's covariance clustered by pool. The cross term of the two scores is
zero: the second-stage score has mean zero given the pool-year data, which the first-stage
score is a function of. (A bootstrap over firms would not do: it keeps the pool-year data,
hence the first stage, fixed, so it cannot see the first stage's noise.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from relocsim.decision import ZoneQualities
from relocsim.estimation.design import ChoiceData, Layout
from relocsim.estimation.panel import Panel, PanelError
from relocsim.geography import Geography
from relocsim.scenarios import Scenario

ENDOGENOUS = "cost_per_m2_eur"
"""The land term of the utility: the land price net of subsidy, plus taxes, per standard m2."""
NAME = "cf_land"
"""Parameter name of the control-function term (utility per standard deviation of ``v``)."""
WEAK_F = 10.0
"""First-stage F statistic of the instruments below which they are called weak."""


@dataclass
class FirstStage:
    """The first-stage regression at the (year, pool) level.

    Attributes:
        names: regressor names (K1,).
        design: regressors (T * M, K1), rows year-major in the panel's years and pool order.
        outcome: ``cost_per_m2_eur`` (T * M,).
        coef: least-squares coefficients (K1,).
        cov: their covariance, clustered by pool (K1, K1).
        sd: standard deviation of the residual (the control's unit).
        n_years, n_pools: T and M.
        f_stat: Wald F statistic of the instruments.
        instruments: instrument column names.
    """

    names: list[str]
    design: np.ndarray
    outcome: np.ndarray
    coef: np.ndarray
    cov: np.ndarray
    sd: float
    n_years: int
    n_pools: int
    f_stat: float
    instruments: tuple[str, ...]

    def table(self, coef: np.ndarray | None = None) -> np.ndarray:
        """Standardised residual by year and pool (T, M) at ``coef`` (default: the estimate)."""
        coef = self.coef if coef is None else coef
        return ((self.outcome - self.design @ coef) / self.sd).reshape(self.n_years, self.n_pools)


def first_stage(
    panel: Panel, scenario: Scenario, geo: Geography, instruments: tuple[str, ...]
) -> FirstStage:
    """Regress the land cost on the instruments and exogenous pool-year terms.

    Raises:
        PanelError: an instrument column is missing, not numeric, NaN, or constant once the
            exogenous terms are accounted for.
    """
    alt, file = panel.alternatives, panel.alternatives_path
    for col in instruments:
        if col not in alt.columns:
            raise PanelError(
                f"{file}: no instrument column {col!r} (the spec's control_function); columns "
                f"are {', '.join(map(str, alt.columns))}"
            )
        if not pd.api.types.is_numeric_dtype(alt[col]) or pd.api.types.is_bool_dtype(alt[col]):
            raise PanelError(
                f"{file}: instrument column {col!r} must be numeric, found {alt[col].dtype}"
            )
        bad = np.flatnonzero(~np.isfinite(alt[col].to_numpy(np.float64, na_value=np.nan)))
        if bad.size:
            raise PanelError(
                f"{file}: row {bad[0]}, column {col!r}: instrument not a finite number "
                f"({bad.size} such rows)"
            )
    years = np.unique(panel.decisions["year"].to_numpy())
    pool_index = {name: i for i, name in enumerate(geo.pool_names)}
    alt = alt[alt["year"].isin(years)]
    t = np.searchsorted(years, alt["year"].to_numpy())
    a = alt["pool"].map(pool_index).to_numpy()
    n_t, m = len(years), geo.n_pools

    def by_row(values: np.ndarray) -> np.ndarray:
        out = np.zeros(n_t * m)
        out[t * m + a] = values
        return out

    quality = ZoneQualities.from_scenario(scenario, geo)
    pool = np.tile(np.arange(m), n_t)
    exogenous = {f"year[{y}]": (np.repeat(years, m) == y).astype(float) for y in years}
    candidates = {
        "access": quality.access[geo.pool_zone][pool],
        "water": quality.water[geo.pool_zone][pool],
        "incentive_keur": by_row(alt["incentive_keur"].to_numpy(np.float64)),
    }
    exogenous |= {k: v for k, v in candidates.items() if np.ptp(v) > 0}
    base = np.column_stack(list(exogenous.values()))
    z = np.column_stack([by_row(alt[c].to_numpy(np.float64)) for c in instruments])
    partialled = z - base @ np.linalg.lstsq(base, z, rcond=None)[0]
    for i, col in enumerate(instruments):
        if np.abs(partialled[:, i]).max() <= 1e-9 * max(np.abs(z[:, i]).max(), 1.0):
            raise PanelError(
                f"{file}: instrument column {col!r} is constant (within each year, or explained "
                "by the year effects, access, waterway and incentive); it cannot move the land "
                "cost"
            )
    design = np.column_stack([base, z])
    y = by_row(alt[ENDOGENOUS].to_numpy(np.float64))
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    resid = y - design @ coef
    cov = _clustered_cov(design, resid, pool)
    q = len(instruments)
    b, v = coef[-q:], cov[-q:, -q:]
    f_stat = float(b @ np.linalg.solve(v, b) / q)
    return FirstStage(
        names=[*exogenous, *instruments],
        design=design,
        outcome=y,
        coef=coef,
        cov=cov,
        sd=float(resid.std()) or 1.0,
        n_years=n_t,
        n_pools=m,
        f_stat=f_stat,
        instruments=tuple(instruments),
    )


def _clustered_cov(x: np.ndarray, resid: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Least-squares covariance clustered by ``cluster`` (G / (G - 1) small-sample factor)."""
    bread = np.linalg.pinv(x.T @ x)
    groups = np.unique(cluster)
    by_group = np.zeros((len(groups), x.shape[1]))
    np.add.at(by_group, np.searchsorted(groups, cluster), x * resid[:, None])
    g = len(groups)
    return bread @ (by_group.T @ by_group) @ bread * g / max(g - 1, 1)


def add_control(data: ChoiceData, layout: Layout, stage: FirstStage) -> tuple[ChoiceData, Layout]:
    """The likelihood's arrays and layout with the control as one more lower-level attribute
    (table rows by year, coefficient ``cf_land`` pooled over sectors, starting at 0)."""
    offset = data.tables.shape[0]
    data = replace(
        data,
        tables=np.ascontiguousarray(np.vstack([data.tables, stage.table()])),
        row=np.ascontiguousarray(np.column_stack([data.row, offset + data.year_idx]), np.int32),
        scale=np.ascontiguousarray(np.column_stack([data.scale, np.ones(data.n)])),
    )
    n_s, p = layout.beta_idx.shape[0], layout.n_params
    layout = replace(
        layout,
        names=[*layout.names, NAME],
        paths=[*layout.paths, []],  # the simulator has no such coefficient: no override
        beta_idx=np.column_stack([layout.beta_idx, np.full(n_s, p)]),
        beta_fixed=np.column_stack([layout.beta_fixed, np.zeros(n_s)]),
        start=np.append(layout.start, 0.0),
        lower_names=[*layout.lower_names, NAME],
    )
    return data, layout


def with_first_stage(data: ChoiceData, stage: FirstStage, coef: np.ndarray) -> ChoiceData:
    """``data`` (built by :func:`add_control`) with the control at first-stage ``coef``."""
    tables = data.tables.copy()
    tables[-stage.n_years :] = stage.table(coef)
    return replace(data, tables=tables)


def score_derivative(
    grad_at: Callable[[ChoiceData], np.ndarray], data: ChoiceData, stage: FirstStage
) -> np.ndarray:
    """C: derivative of the likelihood's gradient over the first-stage coefficients (P, K1).

    Args:
        grad_at: the gradient over the parameters (at the estimate) given the data.
    """
    cols = []
    for k in range(len(stage.coef)):
        step = 1e-3 * max(np.sqrt(stage.cov[k, k]), 1e-8 * max(abs(stage.coef[k]), 1.0))
        up, down = stage.coef.copy(), stage.coef.copy()
        up[k] += step
        down[k] -= step
        g_up = grad_at(with_first_stage(data, stage, up))
        g_down = grad_at(with_first_stage(data, stage, down))
        cols.append((g_up - g_down) / (2 * step))
    return np.column_stack(cols)


def murphy_topel(cov: np.ndarray, c: np.ndarray, stage: FirstStage) -> np.ndarray:
    """What the first stage adds to a covariance: ``H^-1 C V_1 C' H^-1`` (``cov`` = ``H^-1``)."""
    return cov @ c @ stage.cov @ c.T @ cov
