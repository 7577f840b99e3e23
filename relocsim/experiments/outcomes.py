"""Outcome metrics: scalars computed from a run's tables that a study keeps and analyses.

Each metric is an :class:`OutcomeSpec`: a table, a column, row filters, how rows of a year are
reduced (``sum`` or ``mean``), optionally a denominator column (``per``: a ratio of sums), and which
years count (``final`` year only, or ``all`` years reduced by ``over_years``). The built-in metrics
in :data:`BUILTIN` are written the same way; a study may list them by name or define its own::

    outputs = [
        "brussels_jobs",
        { name = "audi_jobs_per_ha", table = "zones", column = "jobs", per = "occupied_ha",
          where = { zone = "bxl_audi_vorst" } },
    ]

Filter values may be a value, a list of values, or a text starting with ``!`` (not equal); the
sector value ``industrial`` stands for heavy_industry + material_production + green_circular.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from relocsim.experiments.errors import StudyError

INDUSTRIAL: tuple[str, ...] = ("heavy_industry", "material_production", "green_circular")
TABLES: tuple[str, ...] = ("yearly", "flows", "zones", "accounts", "sizes")
STATS: tuple[str, ...] = ("sum", "mean")
YEARS: tuple[str, ...] = ("final", "all")
OVER_YEARS: tuple[str, ...] = ("sum", "mean", "max", "min")


@dataclass(frozen=True)
class OutcomeSpec:
    """How to compute one scalar outcome from a run's tables.

    Attributes:
        name: column name of the outcome in the results table.
        table: ``yearly``, ``flows``, ``zones``, ``accounts`` or ``sizes``.
        column: the column reduced.
        where: row filters, column -> value, list of values or ``"!value"``.
        stat: reduction of the rows of one year: ``sum`` or ``mean`` (NaN skipped).
        per: denominator column: the outcome is sum(column) / sum(per) per year.
        years: ``final`` (the last simulated year) or ``all``.
        over_years: with ``years = "all"``: ``sum``, ``mean``, ``max`` or ``min`` of the yearly
            values (a year without rows counts as 0 for sums).
        description: what it measures, for tables and plots.
    """

    name: str
    table: str
    column: str
    where: tuple[tuple[str, Any], ...] = ()
    stat: str = "sum"
    per: str = ""
    years: str = "final"
    over_years: str = "sum"
    description: str = field(default="", compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["where"] = {k: v for k, v in self.where}
        return out


def _spec(name: str, table: str, column: str, description: str, **kw: Any) -> OutcomeSpec:
    where = tuple(sorted(kw.pop("where", {}).items()))
    return OutcomeSpec(name, table, column, where=where, description=description, **kw)


BXL = {"region": "Brussels"}
BXL_ALL = {"years": "all", "over_years": "sum"}
BUILTIN: dict[str, OutcomeSpec] = {
    s.name: s
    for s in [
        _spec("brussels_jobs", "yearly", "jobs", "jobs in Brussels, final year", where=BXL),
        _spec("brussels_firms", "yearly", "firms", "firms in Brussels, final year", where=BXL),
        _spec(
            "brussels_industrial_jobs",
            "yearly",
            "jobs",
            "industrial jobs in Brussels, final year",
            where={**BXL, "sector": "industrial"},
        ),
        _spec(
            "brussels_low_skilled_jobs",
            "yearly",
            "low_skilled_jobs",
            "low-skilled jobs in Brussels, final year",
            where=BXL,
        ),
        _spec(
            "brussels_net_new_jobs_total",
            "yearly",
            "net_new_jobs",
            "net new jobs in Brussels (moves across borders excluded), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_delocalisations_total",
            "yearly",
            "delocalisations",
            "firms leaving Brussels for another region, all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_delocalisations_per_year",
            "yearly",
            "delocalisations",
            "firms leaving Brussels per year (mean)",
            where=BXL,
            years="all",
            over_years="mean",
        ),
        _spec(
            "brussels_delocalised_jobs_total",
            "flows",
            "jobs",
            "jobs moved out of Brussels to another region, all years",
            where={"origin_region": "Brussels", "destination_region": "!Brussels"},
            **BXL_ALL,
        ),
        _spec(
            "brussels_arrivals_total",
            "yearly",
            "arrivals",
            "firms arriving in Brussels from another region, all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_relocations_total",
            "yearly",
            "relocations",
            "moves inside Brussels, all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_aid_paid_total",
            "accounts",
            "aid_paid",
            "investment aid paid by Brussels (EUR), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_aid_recovered_total",
            "accounts",
            "aid_recovered",
            "aid recovered by Brussels by clawback (EUR), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_compensation_received_total",
            "accounts",
            "compensation_received",
            "interregional compensation received by Brussels (EUR), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_net_transfer_total",
            "accounts",
            "net_transfer",
            "net interregional transfer to Brussels (EUR), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_net_public_cost_total",
            "accounts",
            "net_public_cost",
            "net public cost of Brussels (EUR), all years",
            where=BXL,
            **BXL_ALL,
        ),
        _spec(
            "brussels_deadweight_share",
            "accounts",
            "deadweight_share",
            "share of Brussels aid to firms that would have stayed anyway (mean over years)",
            where=BXL,
            stat="mean",
            years="all",
            over_years="mean",
        ),
        _spec(
            "brussels_land_price",
            "zones",
            "price_eur_m2",
            "mean land price over Brussels zones (EUR/m2), final year",
            where=BXL,
            stat="mean",
        ),
        _spec(
            "brussels_occupancy",
            "zones",
            "occupied_ha",
            "occupied share of developable land in Brussels, final year",
            where=BXL,
            per="developable_ha",
        ),
        _spec(
            "brussels_vacant_ha",
            "zones",
            "vacant_ha",
            "vacant developable land in Brussels (ha), final year",
            where=BXL,
        ),
        _spec(
            "brussels_converted_ha",
            "zones",
            "converted_ha",
            "productive land converted to housing/offices in Brussels (ha), final year",
            where=BXL,
        ),
        _spec(
            "brussels_jobs_per_ha",
            "zones",
            "jobs",
            "jobs per occupied ha in Brussels, final year",
            where=BXL,
            per="occupied_ha",
        ),
        _spec(
            "urban_industry_zone_jobs",
            "zones",
            "jobs",
            "jobs in bxl_canal_south + bxl_mixed_enterprise + bxl_audi_vorst, final year",
            where={"zone": ["bxl_canal_south", "bxl_mixed_enterprise", "bxl_audi_vorst"]},
        ),
        _spec(
            "audi_jobs",
            "zones",
            "jobs",
            "jobs on the Audi Vorst site, final year",
            where={"zone": "bxl_audi_vorst"},
        ),
        _spec(
            "audi_jobs_per_ha",
            "zones",
            "jobs",
            "jobs per occupied ha on the Audi Vorst site, final year",
            where={"zone": "bxl_audi_vorst"},
            per="occupied_ha",
        ),
        _spec(
            "audi_occupied_ha",
            "zones",
            "occupied_ha",
            "occupied land on the Audi Vorst site (ha), final year",
            where={"zone": "bxl_audi_vorst"},
        ),
        _spec("metro_jobs", "yearly", "jobs", "jobs in all regions, final year"),
        _spec(
            "metro_industrial_jobs",
            "yearly",
            "jobs",
            "industrial jobs in all regions, final year",
            where={"sector": "industrial"},
        ),
        _spec(
            "metro_low_skilled_jobs",
            "yearly",
            "low_skilled_jobs",
            "low-skilled jobs in all regions, final year",
        ),
    ]
}


def parse_outcomes(raw: Any, where: str) -> list[OutcomeSpec]:
    """Parse a study's ``outputs`` list (built-in names or inline tables).

    Raises:
        StudyError: an unknown name or a malformed definition, naming the entry.
    """
    if not isinstance(raw, list) or not raw:
        raise StudyError(
            f"{where}: field 'outputs': expected a non-empty list of outcome "
            f"names or tables, got {raw!r}"
        )
    specs: list[OutcomeSpec] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            if item not in BUILTIN:
                raise StudyError(
                    f"{where}: field 'outputs[{i}]': unknown outcome {item!r}; "
                    "built-in outcomes are: " + ", ".join(BUILTIN) + " (or define one as a table)"
                )
            specs.append(BUILTIN[item])
            continue
        if not isinstance(item, dict):
            raise StudyError(f"{where}: field 'outputs[{i}]': expected a name or a table")
        item = dict(item)
        allowed = {
            "name",
            "table",
            "column",
            "where",
            "stat",
            "per",
            "years",
            "over_years",
            "description",
        }
        missing = [k for k in ("name", "table", "column") if k not in item]
        unknown = set(item) - allowed
        if missing or unknown:
            raise StudyError(
                f"{where}: field 'outputs[{i}]': "
                + (f"missing '{missing[0]}'" if missing else f"unknown key '{sorted(unknown)[0]}'")
                + f"; expected keys {', '.join(sorted(allowed))}"
            )
        checks = {"table": TABLES, "stat": STATS, "years": YEARS, "over_years": OVER_YEARS}
        for key, options in checks.items():
            if key in item and item[key] not in options:
                raise StudyError(
                    f"{where}: field 'outputs[{i}].{key}': value {item[key]!r} is "
                    f"invalid; expected one of {', '.join(options)}"
                )
        filters = item.pop("where", {})
        if not isinstance(filters, dict):
            raise StudyError(f"{where}: field 'outputs[{i}].where': expected a table")
        item["where"] = tuple(
            sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in filters.items())
        )
        specs.append(OutcomeSpec(**item))
    names = [s.name for s in specs]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise StudyError(f"{where}: field 'outputs': duplicated name {sorted(duplicated)[0]!r}")
    return specs


def _mask(frame: pd.DataFrame, spec: OutcomeSpec) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in spec.where:
        if column not in frame.columns:
            raise KeyError(f"outcome {spec.name!r}: table {spec.table!r} has no column {column!r}")
        values = frame[column]
        if column == "sector" and value == "industrial":
            value = INDUSTRIAL
        if isinstance(value, list | tuple):
            mask &= values.isin(list(value)).to_numpy()
        elif isinstance(value, str) and value.startswith("!"):
            mask &= (values != value[1:]).to_numpy()
        else:
            mask &= (values == value).to_numpy()
    return mask


def compute_outcome(tables: dict[str, pd.DataFrame], spec: OutcomeSpec) -> float:
    """Compute one outcome from a run's tables (NaN when there is nothing to measure)."""
    frame = tables[spec.table]
    years = tables["yearly"]["year"]
    if len(years) == 0:
        return float("nan")
    all_years = np.sort(years.unique())
    for column in (spec.column, spec.per):
        if column and column not in frame.columns:
            raise KeyError(
                f"outcome {spec.name!r}: table {spec.table!r} has no column "
                f"{column!r}; it has {', '.join(frame.columns)}"
            )
    rows = frame[_mask(frame, spec)]
    if spec.years == "final":
        all_years = all_years[-1:]
    rows = rows[rows["year"].isin(all_years)]
    grouped = rows.groupby("year")
    if spec.per:
        num = grouped[spec.column].sum().reindex(all_years, fill_value=0.0)
        den = grouped[spec.per].sum().reindex(all_years, fill_value=0.0)
        per_year = num / den.where(den != 0)
    elif spec.stat == "mean":
        per_year = grouped[spec.column].mean().reindex(all_years)
    else:
        per_year = grouped[spec.column].sum().reindex(all_years, fill_value=0.0)
    values = per_year.to_numpy(dtype=float)
    if spec.years == "final":
        return float(values[-1])
    if np.all(np.isnan(values)):
        return float("nan")
    reduce = {"sum": np.nansum, "mean": np.nanmean, "max": np.nanmax, "min": np.nanmin}
    return float(reduce[spec.over_years](values))


def compute_outcomes(tables: dict[str, pd.DataFrame], specs: list[OutcomeSpec]) -> dict[str, float]:
    """Compute every outcome of ``specs`` from a run's tables."""
    return {spec.name: compute_outcome(tables, spec) for spec in specs}
