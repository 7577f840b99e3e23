"""Reading and validating the decision panel (``decisions`` + ``alternatives`` tables).

The format is the one :mod:`relocsim.decision_panel` writes and ``docs/estimation.md``
documents. Every problem is reported as a :class:`PanelError` naming the file, the row
(0-based, header excluded) and the column.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from relocsim.decision_panel import (
    ALTERNATIVES_FILE,
    NESTS,
    OUTCOMES,
    PANEL_FILE,
    read_provenance,
)
from relocsim.geography import Geography

NON_NEGATIVE = (
    "employees",
    "age",
    "land_m2",
    "need_m2",
    "stress",
    "aid_eur",
    "aid_years_left",
    "departure_cost_eur",
    "premises_value_eur",
    "stay_cost_eur",
)
"""Numeric decision columns that cannot be negative."""
NUMERIC_COLUMNS = ("firm_id", "year", "log_growth", *NON_NEGATIVE)
"""Every numeric decision column (the non-negative ones, ids, year and log-growth)."""
TEXT_COLUMNS = ("sector", "pool", "outcome")
OPTIONAL_TEXT = ("dest_pool", "nest", "aid_region")
ALT_NUMERIC = (
    "year",
    "cost_per_m2_eur",
    "land_price_eur",
    "densification",
    "capacity_m2",
    "incentive_keur",
)


class PanelError(ValueError):
    """Decision data the estimator cannot use."""


@dataclass
class Panel:
    """A decision panel and the yearly attributes of its alternatives.

    Attributes:
        decisions: one row per firm-year at risk (see docs/estimation.md).
        alternatives: one row per year and pool.
        provenance: what the producing run stored (true coefficients), or empty.
        path: the decisions file.
        sha256: hash of the decisions and alternatives files' bytes.
    """

    decisions: pd.DataFrame
    alternatives: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    path: str = PANEL_FILE
    alternatives_path: str = ALTERNATIVES_FILE
    sha256: str = ""


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise PanelError(f"{path}: no such file")
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def read_panel(data: str | Path) -> Panel:
    """Read a panel: a run folder, or a decisions file with ``alternatives.*`` beside it."""
    data = Path(data)
    if data.is_dir():
        candidates = [data / PANEL_FILE, data / "decisions.csv"]
        decisions_path = next((p for p in candidates if p.exists()), candidates[0])
    else:
        decisions_path = data
    suffix = decisions_path.suffix
    alternatives_path = decisions_path.with_name(f"alternatives{suffix}")
    decisions = _read_table(decisions_path)
    alternatives = _read_table(alternatives_path)
    digest = hashlib.sha256()
    for p in (decisions_path, alternatives_path):
        digest.update(p.read_bytes())
    provenance = read_provenance(decisions_path) if suffix == ".parquet" else {}
    return Panel(
        decisions,
        alternatives,
        provenance,
        str(decisions_path),
        str(alternatives_path),
        digest.hexdigest(),
    )


def _fail(file: str, rows: np.ndarray, column: str, problem: str) -> None:
    rows = np.flatnonzero(rows)
    if rows.size:
        more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
        raise PanelError(f"{file}: row {rows[0]}, column {column!r}: {problem}{more}")


def _require(frame: pd.DataFrame, file: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PanelError(f"{file}: missing column(s) {missing}")


def _numeric(frame: pd.DataFrame, file: str, columns: tuple[str, ...]) -> None:
    for col in columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            raise PanelError(f"{file}: column {col!r} must be numeric, found {frame[col].dtype}")
        _fail(file, frame[col].isna().to_numpy(), col, "missing value (NaN)")
        _fail(file, ~np.isfinite(frame[col].to_numpy(np.float64)), col, "not a finite number")


def _boolean(frame: pd.DataFrame, file: str, col: str) -> None:
    if not pd.api.types.is_bool_dtype(frame[col]):
        raise PanelError(f"{file}: column {col!r} must be true/false, found {frame[col].dtype}")


def _known(frame: pd.DataFrame, file: str, col: str, names: tuple[str, ...], what: str) -> None:
    values = frame[col]
    bad = values.notna().to_numpy() & ~values.isin(names).to_numpy()
    if bad.any():
        first = values[bad].iloc[0]
        _fail(file, bad, col, f"unknown {what} {first!r}; expected one of the scenario's {what}s")


def validate_panel(panel: Panel, geo: Geography) -> None:
    """Check the panel against the scenario's geography; raise :class:`PanelError` if bad.

    Checks: columns present and numeric, no NaN, known sectors and pools, no duplicate
    firm-years, non-negative areas and money, employees > 0, outcomes consistent with their
    destination and nest, a firm's next row in the pool its outcome left it in, and one
    alternatives row per year and pool of the panel.
    """
    d, f = panel.decisions, panel.path
    _require(d, f, NUMERIC_COLUMNS + TEXT_COLUMNS + OPTIONAL_TEXT)
    _numeric(d, f, NUMERIC_COLUMNS)
    for col in TEXT_COLUMNS:
        _fail(f, d[col].isna().to_numpy(), col, "missing value")
    _known(d, f, "sector", geo.sector_names, "sector")
    _known(d, f, "pool", geo.pool_names, "pool")
    _known(d, f, "dest_pool", geo.pool_names, "pool")
    _known(d, f, "outcome", OUTCOMES, "outcome")
    _known(d, f, "nest", NESTS, "nest")
    for col in NON_NEGATIVE:
        _fail(f, (d[col] < 0).to_numpy(), col, "negative value; expected >= 0")
    _fail(f, (d["employees"] <= 0).to_numpy(), "employees", "expected at least one employee")
    _fail(f, (d["need_m2"] <= 0).to_numpy(), "need_m2", "expected a positive land need")
    if "newborn" in d.columns:  # optional: newborns' first location choice (no stay)
        _boolean(d, f, "newborn")
        stay = d["outcome"].to_numpy() == "stay"
        _fail(f, d["newborn"].to_numpy() & stay, "outcome", "a newborn cannot stay (no location)")
    dup = d.duplicated(["firm_id", "year"]).to_numpy()
    _fail(f, dup, "firm_id", "duplicate firm-year (firm_id, year appear twice)")

    outcome = d["outcome"].to_numpy()
    has_dest = d["dest_pool"].notna().to_numpy()
    has_nest = d["nest"].notna().to_numpy()
    _fail(f, (outcome == "move") & ~has_dest, "dest_pool", "outcome 'move' without a pool")
    _fail(f, (outcome != "move") & has_dest, "dest_pool", "a destination but no move")
    _fail(f, (outcome != "stay") & ~has_nest, "nest", "a move or unplaced row needs its nest")
    _fail(f, (outcome == "stay") & has_nest, "nest", "a nest on a 'stay' row")
    pool_index = {name: i for i, name in enumerate(geo.pool_names)}
    origin = geo.pool_region[d["pool"].map(pool_index).to_numpy()]
    moved = outcome == "move"
    dest = d["dest_pool"].map(pool_index).to_numpy()
    dest_region = np.where(moved, geo.pool_region[np.where(moved, dest, 0).astype(int)], -1)
    nest_own = d["nest"].to_numpy() == "own"
    _fail(
        f,
        moved & (nest_own != (dest_region == origin)),
        "nest",
        "nest disagrees with the regions of 'pool' and 'dest_pool'",
    )
    _check_paths(d, f, moved)
    _check_alternatives(panel, geo)


def _check_paths(d: pd.DataFrame, file: str, moved: np.ndarray) -> None:
    """A firm seen in consecutive years must be where its previous outcome left it."""
    order = np.lexsort((d["year"].to_numpy(), d["firm_id"].to_numpy()))
    firm = d["firm_id"].to_numpy()[order]
    year = d["year"].to_numpy()[order]
    pool = d["pool"].to_numpy()[order]
    after = np.where(moved, d["dest_pool"].to_numpy(), d["pool"].to_numpy())[order]
    nxt = (firm[1:] == firm[:-1]) & (year[1:] == year[:-1] + 1)
    unplaced = d["outcome"].to_numpy()[order][:-1] == "unplaced"
    wrong = nxt & (pool[1:] != after[:-1]) & ~unplaced
    bad = np.zeros(len(d), bool)
    bad[order[1:][wrong]] = True
    _fail(file, bad, "pool", "not where the firm's previous year's row left it")


def _check_alternatives(panel: Panel, geo: Geography) -> None:
    a, f = panel.alternatives, panel.alternatives_path
    jobs = tuple(f"jobs.{s}" for s in geo.sector_names)
    _require(a, f, ("pool", "open", *ALT_NUMERIC, *jobs))
    _numeric(a, f, ALT_NUMERIC + jobs)
    _boolean(a, f, "open")
    _known(a, f, "pool", geo.pool_names, "pool")
    _fail(f, a.duplicated(["year", "pool"]).to_numpy(), "pool", "duplicate year and pool")
    if "largest_need_m2" in a.columns:  # optional, as capacity_end_m2: the rationing data
        _numeric(a, f, ("largest_need_m2",))
        _fail(f, (a["largest_need_m2"] < 0).to_numpy(), "largest_need_m2", "negative value")
    if "capacity_end_m2" in a.columns:
        _numeric(a, f, ("capacity_end_m2",))
        _fail(
            f,
            (a["capacity_end_m2"] > a["capacity_m2"]).to_numpy(),
            "capacity_end_m2",
            "more land on offer after the year's choices than before (capacity_m2)",
        )
    for col in ("cost_per_m2_eur", "land_price_eur", "capacity_m2", *jobs):
        _fail(f, (a[col] < 0).to_numpy(), col, "negative value; expected >= 0")
    _fail(f, (a["densification"] <= 0).to_numpy(), "densification", "expected > 0")
    counts = a.groupby("year")["pool"].nunique()
    years = np.unique(panel.decisions["year"].to_numpy())
    for year in years:
        if counts.get(year, 0) != geo.n_pools:
            raise PanelError(
                f"{f}: year {year} has {counts.get(year, 0)} pools; expected all "
                f"{geo.n_pools} pools of the scenario for every year of {panel.path}"
            )
