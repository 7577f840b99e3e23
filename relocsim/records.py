"""Records: what a run reports, gathered year by year and returned as pandas DataFrames.

:class:`Recorder` receives each stage's events as arrays (no per-firm Python work) and the
end-of-year state; :class:`Results` holds the tables users read:

- ``yearly``: by year, region and sector: firms, jobs, low-skilled jobs, land, births, exits,
  relocations (inside the region), delocalisations (out of it, counted at the origin), aided
  delocalisations (of firms leaving during an aid commitment), arrivals (from other regions),
  jobs moved in and out, jobs from growth of incumbents, births and exits, what firms growing in
  place paid for their extra land (``land_paid_eur``, net of the land subsidy), and net new jobs
  (change in jobs minus jobs that merely crossed a border);
- ``flows``: origin-destination moves by year and region pair (firms, jobs);
- ``zones``: land, price, firms and jobs by year and zone;
- ``accounts``: public money by year and region, with the deadweight share and the cost per job
  retained; jobs the policies kept from moving away (``jobs_retained``) apart from the jobs they
  created (``jobs_created_growth``: aided firms' extra growth; ``jobs_created_survival``: firms
  alive only thanks to their incentive; ``jobs_in_saved_firms``: end-of-year jobs of all firms
  ever so saved), each from the model's own per-firm counterfactual;
- ``events``: the per-firm event log (born, grew, moved, delocalised, exited, closed, unplaced,
  aided, repaid; ``amount_eur`` is the aid, the repayment, or for ``grew`` what the firm paid
  for the land it grew into in place; :mod:`relocsim.event_log`);
- ``sizes``: firms, relocations and delocalisations by year, region and size class (larger firms
  leave Brussels more often).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from relocsim.event_log import EventLog
from relocsim.firms import FirmTable
from relocsim.geography import Geography
from relocsim.public_accounts import JOB_CHANNELS, MONEY_COLUMNS, Ledger

SIZE_CLASSES = ("1-4", "5-9", "10-49", "50-99", "100+")
SIZE_BOUNDS = np.array([5, 10, 50, 100])
"""Lower bounds of the size classes after the first (employees)."""

YEARLY_COUNTS = (
    "births",
    "exits",
    "relocations",
    "delocalisations",
    "aided_delocalisations",
    "arrivals",
    "jobs_in",
    "jobs_out",
    "unplaced",
    "births_unplaced",
    "jobs_growth",
    "jobs_born",
    "jobs_exited",
    "land_paid_eur",
)


@dataclass
class Results:
    """The tables of a run (see the module docstring for their columns)."""

    yearly: pd.DataFrame
    flows: pd.DataFrame
    zones: pd.DataFrame
    accounts: pd.DataFrame
    events: pd.DataFrame
    sizes: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
        """Write every table as ``<name>.parquet`` (or ``.csv``) in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in self.tables().items():
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                table.to_parquet(path, index=False)
            else:
                table.to_csv(path, index=False)
            written.append(path)
        return written


class Recorder:
    """Accumulates a run's records; :meth:`results` turns them into :class:`Results`."""

    def __init__(self, geo: Geography, low_skilled_share: np.ndarray) -> None:
        self.geo = geo
        self.low_skilled_share = low_skilled_share
        n_cells = len(geo.region_names) * len(geo.sector_names)
        self._start_jobs = np.zeros(n_cells)
        self._counts = {name: np.zeros(n_cells) for name in YEARLY_COUNTS}
        self._yearly: list[pd.DataFrame] = []
        self._flows: list[pd.DataFrame] = []
        self._zones: list[pd.DataFrame] = []
        self._accounts: list[pd.DataFrame] = []
        self.event_log = EventLog(tuple(geo.zone_names), tuple(geo.sector_names))
        self._sizes: list[pd.DataFrame] = []
        n_size_cells = len(geo.region_names) * len(SIZE_CLASSES)
        self._size_moves = {
            "relocations": np.zeros(n_size_cells),
            "delocalisations": np.zeros(n_size_cells),
        }
        self.last_year: dict[str, float] = {}

    # ---- during the year

    def _cell(self, region: np.ndarray, sector: np.ndarray) -> np.ndarray:
        return np.asarray(region, np.int64) * len(self.geo.sector_names) + sector

    def record_start(self, region: np.ndarray, sector: np.ndarray, employees: np.ndarray) -> None:
        """Remember the starting jobs by region and sector (for the first year's net new jobs)."""
        self._start_jobs = np.bincount(
            self._cell(region, sector), weights=employees, minlength=len(self._start_jobs)
        )

    def latest(self) -> dict[str, pd.DataFrame]:
        """The last closed year's yearly, flows, zones, accounts and sizes tables (cheap: no
        event log), for views that update every year."""
        if not self._yearly:
            return {}
        flows = (
            self._flows[-1]
            if self._flows
            else pd.DataFrame(
                columns=["year", "origin_region", "destination_region", "firms", "jobs"]
            )
        )
        return {
            "yearly": self._yearly[-1],
            "flows": flows,
            "zones": self._zones[-1],
            "accounts": self._accounts[-1],
            "sizes": self._sizes[-1],
        }

    def count(
        self, name: str, region: np.ndarray, sector: np.ndarray, weight: np.ndarray | None = None
    ) -> None:
        """Add firms (or ``weight``, e.g. jobs) to a yearly counter by region and sector."""
        counts = self._counts[name]
        weights = None if weight is None else np.broadcast_to(weight, len(region))
        # bincount adds in input order, as np.add.at would, and is much faster on a million rows
        counts += np.bincount(self._cell(region, sector), weights, minlength=len(counts))

    def _size_cell(self, region: np.ndarray, employees: np.ndarray) -> np.ndarray:
        size_class = np.searchsorted(SIZE_BOUNDS, employees, side="right")
        return np.asarray(region, np.int64) * len(SIZE_CLASSES) + size_class

    def count_moves_by_size(self, name: str, region: np.ndarray, employees: np.ndarray) -> None:
        """Add moves to the size-class table by region of origin."""
        np.add.at(self._size_moves[name], self._size_cell(region, employees), 1.0)

    # ---- the economics' bookkeeping: one method per kind of event

    def _zone_of(self, firms: FirmTable, rows: np.ndarray) -> np.ndarray:
        return self.geo.pool_zone[firms.pool[rows]]

    def _region_of(self, firms: FirmTable, rows: np.ndarray) -> np.ndarray:
        return self.geo.pool_region[firms.pool[rows]]

    def exits(self, year: int, firms: FirmTable, rows: np.ndarray, how: str = "exited") -> None:
        """Firms that exit (``exited``) or whose plant closes as scheduled (``closed``)."""
        sector, jobs = firms.sector[rows], firms.employees[rows]
        self.event_log.append(
            year, how, firms.firm_id[rows], sector, self._zone_of(firms, rows), -1, jobs
        )
        region = self._region_of(firms, rows)
        self.count("exits", region, sector)
        self.count("jobs_exited", region, sector, jobs)

    def births(self, year: int, firms: FirmTable, rows: np.ndarray) -> None:
        """Firms born (or site investors arrived) this year, already placed."""
        sector, jobs = firms.sector[rows], firms.employees[rows]
        self.event_log.append(
            year, "born", firms.firm_id[rows], sector, -1, self._zone_of(firms, rows), jobs
        )
        region = self._region_of(firms, rows)
        self.count("births", region, sector)
        self.count("jobs_born", region, sector, jobs)

    def births_unplaced(self, home_region: np.ndarray, sector: np.ndarray) -> None:
        """Newborns that found no land and were not born."""
        self.count("births_unplaced", home_region, sector)

    def growth(self, firms: FirmTable, rows: np.ndarray, jobs_change: np.ndarray) -> None:
        """Jobs gained (or lost) by incumbents' growth."""
        self.count("jobs_growth", self._region_of(firms, rows), firms.sector[rows], jobs_change)

    def grew_in_place(
        self, year: int, firms: FirmTable, rows: np.ndarray, paid_eur: np.ndarray
    ) -> None:
        """Firms that took more land in their own pool, with what they paid for it (EUR)."""
        zone = self._zone_of(firms, rows)
        ids, sector, jobs = firms.firm_id[rows], firms.sector[rows], firms.employees[rows]
        self.event_log.append(year, "grew", ids, sector, zone, zone, jobs, paid_eur)
        self.count("land_paid_eur", self._region_of(firms, rows), sector, paid_eur)

    def unplaced(self, year: int, firms: FirmTable, rows: np.ndarray) -> None:
        """Firms that chose to move but found no room anywhere (they stay)."""
        sector = firms.sector[rows]
        zone = self._zone_of(firms, rows)
        self.event_log.append(
            year, "unplaced", firms.firm_id[rows], sector, zone, -1, firms.employees[rows]
        )
        self.count("unplaced", self._region_of(firms, rows), sector)

    def aided_leavers(self, origin: np.ndarray, sector: np.ndarray) -> None:
        """Delocalisations of firms leaving during an aid commitment."""
        self.count("aided_delocalisations", origin, sector)

    def moves(
        self,
        year: int,
        firms: FirmTable,
        rows: np.ndarray,
        from_pool: np.ndarray,
        to_pool: np.ndarray,
        repaid: np.ndarray,
    ) -> None:
        """Moves carried out: relocations inside the region, delocalisations out of it (with what
        each delocaliser repaid, ``repaid`` over the crossing firms), flows and size classes."""
        geo = self.geo
        sector, jobs, ids = firms.sector[rows], firms.employees[rows], firms.firm_id[rows]
        origin, destination = geo.pool_region[from_pool], geo.pool_region[to_pool]
        from_zone, to_zone = geo.pool_zone[from_pool], geo.pool_zone[to_pool]
        crossing = origin != destination
        inside = ~crossing
        for name, which in (("moved", inside), ("delocalised", crossing)):
            self.event_log.append(
                year, name, ids[which], sector[which], from_zone[which], to_zone[which], jobs[which]
            )
        paying = np.flatnonzero(crossing)[repaid > 0]
        self.event_log.append(
            year,
            "repaid",
            ids[paying],
            sector[paying],
            from_zone[paying],
            to_zone[paying],
            jobs[paying],
            repaid[repaid > 0],
        )
        self.count("relocations", origin[inside], sector[inside])
        self.count("delocalisations", origin[crossing], sector[crossing])
        self.count("arrivals", destination[crossing], sector[crossing])
        self.count("jobs_out", origin[crossing], sector[crossing], jobs[crossing])
        self.count("jobs_in", destination[crossing], sector[crossing], jobs[crossing])
        self.count_moves_by_size("relocations", origin[inside], jobs[inside])
        self.count_moves_by_size("delocalisations", origin[crossing], jobs[crossing])
        self.flows(year, origin, destination, jobs)

    def repaid(self, year: int, firms: FirmTable, rows: np.ndarray, amount: np.ndarray) -> None:
        """Firms caught in breach of a commitment, with the EUR each repaid."""
        zone = self._zone_of(firms, rows)
        sector, jobs = firms.sector[rows], firms.employees[rows]
        self.event_log.append(year, "repaid", firms.firm_id[rows], sector, zone, zone, jobs, amount)

    def aid_granted(self, year: int, firms: FirmTable, rows: np.ndarray) -> None:
        """Firms granted investment aid this year, with its amount."""
        zone = self._zone_of(firms, rows)
        ids, sector, jobs = firms.firm_id[rows], firms.sector[rows], firms.employees[rows]
        self.event_log.append(year, "aided", ids, sector, zone, zone, jobs, firms.aid_amount[rows])

    def flows(
        self, year: int, origin: np.ndarray, destination: np.ndarray, jobs: np.ndarray
    ) -> None:
        """Record this year's moves as an origin-destination table of regions."""
        n_regions = len(self.geo.region_names)
        pair = np.asarray(origin, np.int64) * n_regions + destination
        firms = np.bincount(pair, minlength=n_regions**2)
        moved_jobs = np.bincount(pair, weights=jobs, minlength=n_regions**2)
        keep = firms > 0
        names = np.array(self.geo.region_names)
        index = np.flatnonzero(keep)
        self._flows.append(
            pd.DataFrame(
                {
                    "year": year,
                    "origin_region": names[index // n_regions],
                    "destination_region": names[index % n_regions],
                    "firms": firms[keep].astype(np.int64),
                    "jobs": moved_jobs[keep].astype(np.int64),
                }
            )
        )

    # ---- at the end of the year

    def close_year(
        self,
        year: int,
        region: np.ndarray,
        sector: np.ndarray,
        zone: np.ndarray,
        employees: np.ndarray,
        land_m2: np.ndarray,
        pools: dict[str, np.ndarray],
        ledger: Ledger,
    ) -> None:
        """Snapshot the year's stocks and counters into the tables and reset the counters."""
        geo = self.geo
        n_regions, n_sectors = len(geo.region_names), len(geo.sector_names)
        cells = self._cell(region, sector)
        size = n_regions * n_sectors
        jobs = np.bincount(cells, weights=employees, minlength=size)
        previous = self._yearly[-1]["jobs"].to_numpy() if self._yearly else self._start_jobs
        frame = pd.DataFrame(
            {
                "year": year,
                "region": np.repeat(geo.region_names, n_sectors),
                "sector": np.tile(geo.sector_names, n_regions),
                "firms": np.bincount(cells, minlength=size).astype(np.int64),
                "jobs": jobs.astype(np.int64),
                "low_skilled_jobs": np.rint(jobs * np.tile(self.low_skilled_share, n_regions)),
                "land_ha": np.bincount(cells, weights=land_m2, minlength=size) / 1e4,
            }
        )
        for name, values in self._counts.items():
            frame[name] = values.astype(np.int64)
            values[:] = 0
        frame["net_new_jobs"] = (jobs - previous) - (frame["jobs_in"] - frame["jobs_out"])
        frame["low_skilled_jobs"] = frame["low_skilled_jobs"].astype(np.int64)
        self._yearly.append(frame)
        self._zones.append(self._zone_frame(year, zone, employees, pools))
        self._sizes.append(self._size_frame(year, region, employees))
        self._accounts.append(self._account_frame(year, ledger))
        self.last_year = {
            "firms": float(len(employees)),
            "jobs": float(employees.sum()),
            "relocations": float(frame["relocations"].sum()),
            "delocalisations": float(frame["delocalisations"].sum()),
        }

    def _size_frame(self, year: int, region: np.ndarray, employees: np.ndarray) -> pd.DataFrame:
        n_cells = len(self.geo.region_names) * len(SIZE_CLASSES)
        frame = pd.DataFrame(
            {
                "year": year,
                "region": np.repeat(self.geo.region_names, len(SIZE_CLASSES)),
                "size_class": np.tile(SIZE_CLASSES, len(self.geo.region_names)),
                "firms": np.bincount(self._size_cell(region, employees), minlength=n_cells),
            }
        )
        for name, values in self._size_moves.items():
            frame[name] = values.astype(np.int64)
            values[:] = 0
        return frame

    def _zone_frame(
        self, year: int, zone: np.ndarray, employees: np.ndarray, pools: dict[str, np.ndarray]
    ) -> pd.DataFrame:
        geo = self.geo
        n_zones = len(geo.zone_names)

        def by_zone(values: np.ndarray) -> np.ndarray:
            return np.bincount(geo.pool_zone, weights=values, minlength=n_zones)

        developable = by_zone(pools["developable_m2"])
        occupied = by_zone(pools["occupied_m2"])
        jobs = np.bincount(zone, weights=employees, minlength=n_zones)
        price = np.divide(
            by_zone(pools["price"] * pools["developable_m2"]),
            developable,
            out=np.zeros(n_zones),
            where=developable > 0,
        )
        return pd.DataFrame(
            {
                "year": year,
                "zone": geo.zone_names,
                "region": np.array(geo.region_names)[geo.zone_region],
                "firms": np.bincount(zone, minlength=n_zones).astype(np.int64),
                "jobs": jobs.astype(np.int64),
                "occupied_ha": occupied / 1e4,
                "developable_ha": developable / 1e4,
                "vacant_ha": (developable - occupied) / 1e4,
                "converted_ha": by_zone(pools["converted_m2"]) / 1e4,
                "price_eur_m2": price,
                "jobs_per_ha": np.divide(
                    jobs, occupied / 1e4, out=np.zeros(n_zones), where=occupied > 0
                ),
                "x_km": geo.zone_xy[:, 0],
                "y_km": geo.zone_xy[:, 1],
            }
        )

    def _account_frame(self, year: int, ledger: Ledger) -> pd.DataFrame:
        v = ledger.values
        net_cost = (
            v["aid_paid"]
            - v["aid_recovered"]
            + v["incentives_paid"]
            - v["incentives_recovered"]
            + v["land_subsidy_paid"]
            + v["compensation_paid"]
            - v["compensation_received"]
        )
        frame = pd.DataFrame({"year": year, "region": self.geo.region_names})
        for name in MONEY_COLUMNS:
            frame[name] = v[name]
        frame["net_transfer"] = v["compensation_received"] - v["compensation_paid"]
        frame["aid_held"] = v["aid_held"]
        frame["deadweight_share"] = np.divide(
            v["aid_held_anyway"],
            v["aid_held"],
            out=np.full(len(net_cost), np.nan),
            where=v["aid_held"] > 0,
        )
        frame["jobs_retained"] = v["jobs_retained"]
        # jobs created by policy (growth and survival channels), apart from jobs kept from moving
        for name in JOB_CHANNELS:
            frame[name] = v[name]
        frame["net_public_cost"] = net_cost
        frame["cost_per_job_retained"] = np.divide(
            net_cost,
            v["jobs_retained"],
            out=np.full(len(net_cost), np.nan),
            where=v["jobs_retained"] > 1e-9,
        )
        return frame

    # ---- the end

    def results(self, events: bool = True) -> Results:
        """The tables of the years recorded (``events`` False: the event log's table is left
        empty, for a caller that writes it from :attr:`event_log` part by part)."""
        empty_flows = pd.DataFrame(
            columns=["year", "origin_region", "destination_region", "firms", "jobs"]
        )

        def stack(parts: list[pd.DataFrame], empty: pd.DataFrame | None = None) -> pd.DataFrame:
            if not parts:
                return empty if empty is not None else pd.DataFrame()
            return pd.concat(parts, ignore_index=True)

        return Results(
            yearly=stack(self._yearly),
            flows=stack(self._flows, empty_flows),
            zones=stack(self._zones),
            accounts=stack(self._accounts),
            events=self.event_log.frame() if events else self.event_log.empty(),
            sizes=stack(self._sizes),
        )
