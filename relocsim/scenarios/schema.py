"""The scenario schema: the plain dataclasses a run starts from, each field with its rule.

Every field that a scenario file sets is declared with :func:`param`, which puts its default, its
rule (allowed range, choices or cross-reference) and, for CSV columns, its unit next to it. The
one walker in :mod:`relocsim.scenarios.validation` reads these rules; the CLI and the dashboard
read :data:`PORTABILITY_MODES` and :data:`SITE_OPTIONS` from here. Bounds are generous limits of
what is economically sane; their purpose is that no number reaches the model's arithmetic
infinite, negative where it cannot be, or so large that it overflows.
"""

from __future__ import annotations

import difflib
import functools
import math
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LAND_USES: tuple[str, ...] = ("gsi", "ghta", "ogso", "mixed", "park")
"""Land-use classes: urban industry (GSI/ZIU), port & transport (GHTA), mixed enterprise
(OGSO/ZEMU), mixed/residential, hinterland business park."""

PORTABILITY_MODES: tuple[str, ...] = ("none", "clawback", "compensation")
SITE_OPTIONS: tuple[str, ...] = ("single", "subdivided", "housing")
LANGUAGES: tuple[str, ...] = ("nl", "fr", "de", "both")

FIRST_YEAR, LAST_YEAR = 1900, 2200
"""Calendar years a scenario may name (start year, opening and closing years)."""


class ScenarioError(ValueError):
    """A scenario file or override holds a value the model cannot use."""


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def show(value: Any) -> str:
    """``repr`` of a value, shortened so that a 400-digit number stays readable."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:28]}...{text[-12:]} ({len(text)} characters)"


def border_friction(scenario: Scenario) -> list[list[float]]:
    """Utility lost moving from region r to region q: the language border, if crossed."""
    languages = [r.language for r in scenario.regions.values()]
    penalty = scenario.behaviour.language_border
    return [
        [penalty if "both" not in (a, b) and a != b else 0.0 for b in languages] for a in languages
    ]


def _number(bound: float) -> str:
    """A bound as people write it: ``0.05``, ``2200``, ``1e6``."""
    return f"{bound:g}".replace("e+0", "e").replace("e+", "e")


# --------------------------------------------------------------------------------------------
# Rules: each returns None for an allowed value, else what was expected.


@dataclass(frozen=True)
class Interval:
    """A number in [low, high] (ends open when ``open_low``/``open_high``); always finite."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False

    def check(self, value: Any, scenario: Any) -> str | None:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        finite = not isinstance(value, float) or math.isfinite(value)
        if finite and above and below:
            return None
        left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
        return f"a number in {left}{_number(self.low)}, {_number(self.high)}{right}"


@dataclass(frozen=True)
class YearOrZero:
    """0 (never / always) or a calendar year in [FIRST_YEAR, LAST_YEAR]."""

    zero_means: str

    def check(self, value: Any, scenario: Any) -> str | None:
        if value == 0 or FIRST_YEAR <= value <= LAST_YEAR:
            return None
        return f"0 ({self.zero_means}) or a year in [{FIRST_YEAR}, {LAST_YEAR}]"


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of choices."""

    options: tuple[str, ...]

    def check(self, value: Any, scenario: Any) -> str | None:
        if value in self.options:
            return None
        return "one of " + ", ".join(self.options) + did_you_mean(value, self.options)


@dataclass(frozen=True)
class EachOf:
    """A non-empty list whose items are each one of a fixed set of choices."""

    options: tuple[str, ...]

    def check(self, value: Any, scenario: Any) -> str | None:
        if value and all(item in self.options for item in value):
            return None
        return "a ';'-separated non-empty list of " + ", ".join(self.options)


@dataclass(frozen=True)
class RefTo:
    """The name of an entry of another table of the scenario (``regions``, ``sectors``...)."""

    table: str
    may_be_empty: bool = False

    def check(self, value: Any, scenario: Any) -> str | None:
        known = getattr(scenario, self.table)
        if value in known or (self.may_be_empty and value == ""):
            return None
        empty = "empty or " if self.may_be_empty else ""
        return f"{empty}one of the {self.table}: " + ", ".join(known) + did_you_mean(value, known)


@dataclass(frozen=True)
class RefsTo:
    """A ';'-separated list, possibly empty, of entries of another table of the scenario."""

    table: str
    may_be_empty: bool = True

    def check(self, value: Any, scenario: Any) -> str | None:
        known = getattr(scenario, self.table)
        unknown = [item for item in value if item not in known]
        if not unknown and len(set(value)) == len(value):
            return None
        hint = did_you_mean(unknown[0], known) if unknown else ""
        expected = f"a ';'-separated list (or empty) of distinct {self.table}: "
        return expected + ", ".join(known) + hint


@dataclass(frozen=True)
class Name:
    """A non-empty name without surrounding blanks."""

    def check(self, value: Any, scenario: Any) -> str | None:
        return None if value and value == value.strip() else "a non-empty name"


@dataclass(frozen=True)
class Flag:
    """A boolean (its type is all there is to check)."""

    def check(self, value: Any, scenario: Any) -> str | None:
        return None


Rule = Interval | YearOrZero | OneOf | EachOf | RefTo | RefsTo | Name | Flag

SHARE = Interval(0, 1)
UTILITY = Interval(-100, 100)
"""A utility constant or coefficient: |100| already makes a choice certain (exp(100) ~ 1e43)."""
SENSITIVITY = Interval(0, 100)
"""A disutility coefficient (subtracted in the utility): non-negative, same scale as UTILITY."""


def param(default: Any, rule: Rule, unit: str = "") -> Any:
    """Declare a scenario field: its default, its rule and (for a CSV column) its unit.

    The default serves only scenarios built in Python (synthetic ones, tests): a scenario file
    must set every field.
    """
    kind = "default_factory" if isinstance(default, list | dict) else "default"
    return field(**{kind: default}, metadata={"rule": rule, "unit": unit})  # type: ignore[call-overload]


def table(factory: type, file: str, *key: str) -> Any:
    """Declare a table of the scenario read from ``file`` (CSV), its rows keyed by ``key``."""
    return field(default_factory=factory, metadata={"file": file, "key": key})


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass (cached)."""
    return typing.get_type_hints(cls)


# --------------------------------------------------------------------------------------------
# Plain data


@dataclass
class AidRegime:
    """Regional investment aid: a contract each aided firm carries.

    Attributes:
        enabled: whether the region grants investment aid.
        intensity_small: aid as a share of the aided investment for firms under 50 employees.
        intensity_medium: same for 50-249 employees.
        intensity_large: same for 250 employees or more.
        commitment_years: durability period: the aided activity must stay in the region.
        take_up: yearly probability that an eligible investing firm applies and is granted aid.
        anti_relocation_years: GBER rule: no aid to a firm that delocalised within this many years.
        jobs_commitment_share: share of its jobs at grant an aided firm must keep during the
            commitment (0: no jobs condition); a detected breach is clawed back pro rata.
        commitment_years_buildings: durability period of the aid's premises (buildings) part.
        development_zone_bonus: intensity points added in zones flagged ``development_zone``.
    """

    enabled: bool = param(True, Flag())
    intensity_small: float = param(0.2, SHARE)
    intensity_medium: float = param(0.1, SHARE)
    intensity_large: float = param(0.0, SHARE)
    commitment_years: int = param(5, Interval(1, 100))
    take_up: float = param(0.1, SHARE)
    anti_relocation_years: int = param(2, Interval(0, 100))
    jobs_commitment_share: float = param(0.0, SHARE)
    commitment_years_buildings: int = param(5, Interval(1, 100))
    development_zone_bonus: float = param(0.0, SHARE)


@dataclass
class Region:
    """A region with its own aid regime, fiscal incentives and local taxes.

    Attributes:
        name: region name (``Brussels``, ``Flanders``, ``Wallonia`` in the default).
        local_tax_eur_m2_year: local and regional taxes on business premises (EUR per m2 per year).
        incentive_eur_per_job_year: fiscal incentive paid per job kept, to firms that commit to
            keep their jobs (EUR per job per year; 0 switches it off).
        incentive_years: length of the job commitment of the incentive (years).
        incentive_take_up: yearly probability that an eligible firm signs up.
        aid: the investment aid regime.
        language: ``nl``, ``fr``, ``de`` or ``both``; moving between regions of different
            languages costs ``behaviour.language_border`` utility (``both`` never pays it).
        conversion_ha_per_year: productive land converted to housing and offices each year, as
            firms release premises (:mod:`relocsim.conversion`; 0: none).
        conversion_industrial_share: share of that flow owed by urban-industry (GSI) premises;
            the rest is owed by mixed and OGSO premises.
    """

    name: str = param("", Name())
    language: str = param("both", OneOf(LANGUAGES))
    local_tax_eur_m2_year: float = param(0.0, Interval(0, 1e4))
    incentive_eur_per_job_year: float = param(0.0, Interval(0, 1e6))
    incentive_years: int = param(5, Interval(1, 100))
    incentive_take_up: float = param(0.0, SHARE)
    conversion_ha_per_year: float = param(0.0, Interval(0, 1e5))
    conversion_industrial_share: float = param(0.0, SHARE)
    aid: AidRegime = field(default_factory=AidRegime)


@dataclass
class Sector:
    """A sector of productive activity (advice §1.3) and its behaviour.

    Attributes:
        name: sector key.
        land_per_job_m2: land a job needs (m2 of plot per job).
        growth_drift: expected yearly growth rate of a firm's employment (log-growth has mean
            drift - volatility^2 / 2).
        growth_volatility: standard deviation of yearly log-growth of a one-employee firm.
        volatility_size_elasticity: volatility falls with size as employees ** (-elasticity).
        exit_hazard: yearly exit probability of a young one-employee firm.
        birth_rate: yearly births per incumbent firm of the sector.
        low_skilled_share: share of the sector's jobs that are low-skilled.
        land_uses: land-use classes the sector may occupy (nuisance rules).
        aid_eligible: whether the sector's firms can receive investment aid.
        b_land: disutility of land cost of the needed area (per million EUR).
        b_dist: disutility of travel time from the current zone (per minute).
        b_claw: disutility of money owed or forgone on leaving the region (per million EUR).
        b_access: utility of the mean of the zone's road, rail and labour-market accessibility.
        b_water: extra utility of waterway access.
        b_agglo: utility of log same-sector jobs in the zone (agglomeration).
        b_incentive: utility of destination fiscal incentives (per thousand EUR per job-year).
        nest_scale: nested-logit scale of the move nests (0 < scale <= 1).
        asc_move: constant of moving (relative to staying).
        asc_deloc: extra constant of leaving the region.
        equipment_per_job_eur: equipment a job needs in new premises (EUR/job): with the
            premises at the land price, the investment that investment aid pays a share of.
    """

    name: str = param("", Name())
    land_per_job_m2: float = param(100.0, Interval(1, 1e5), "m2/job")
    growth_drift: float = param(0.0, Interval(-1, 1), "1/year")
    growth_volatility: float = param(0.3, Interval(0, 5), "1/year")
    volatility_size_elasticity: float = param(0.2, Interval(-1, 2), "-")
    exit_hazard: float = param(0.1, SHARE, "1/year")
    birth_rate: float = param(0.08, SHARE, "1/year")
    low_skilled_share: float = param(0.3, SHARE, "share 0-1")
    land_uses: tuple[str, ...] = param(("park",), EachOf(LAND_USES))
    aid_eligible: bool = param(True, Flag())
    b_land: float = param(1.0, SENSITIVITY, "utility per MEUR")
    b_dist: float = param(0.05, SENSITIVITY, "utility per minute")
    b_claw: float = param(2.0, SENSITIVITY, "utility per MEUR")
    b_access: float = param(1.0, UTILITY, "utility per index point")
    b_water: float = param(0.0, UTILITY, "utility per index point")
    b_agglo: float = param(0.2, UTILITY, "utility per log-job")
    b_incentive: float = param(0.1, UTILITY, "utility per kEUR/job-year")
    nest_scale: float = param(0.7, Interval(0.01, 1), "-")
    asc_move: float = param(-4.0, UTILITY, "utility")
    asc_deloc: float = param(-1.0, UTILITY, "utility")
    equipment_per_job_eur: float = param(20_000.0, Interval(0, 1e8), "EUR/job")


@dataclass
class Zone:
    """A unit of location choice: an area of one region with its land pools.

    Attributes:
        name: zone key.
        region: name of the region it belongs to.
        x_km: easting in km (any planar projection; distances are Euclidean).
        y_km: northing in km.
        radius_km: typical distance of a move inside the zone (km).
        congestion: road travel slowdown inside and out of the zone (1 = free flow).
        price_eur_m2: land price for economic activity (EUR/m2 of plot).
        access_road: road accessibility index (0-1).
        access_rail: rail accessibility index (0-1).
        access_water: waterway accessibility index (0-1).
        labour_access: labour-market accessibility index (0-1).
        amenity: zone constant of the location choice (utility): what the other terms miss
            (congestion, low-emission zone, conflicts with housing); calibrated.
        open_year: year its vacant land opens to firms (0: always open).
        site_option: for a large site: ``single`` (one investor), ``subdivided`` (mixed
            industrial park) or ``housing`` (converted, no productive land).
        site_investor_jobs: jobs of the single investor when ``site_option = single``.
        site_investor_sector: sector of that investor.
        preemption: the region pre-empts land released here and keeps it productive.
        land_subsidy: share of the land price paid by the region for firms locating here.
        densification: multiplier on land per job for firms here (< 1 densifies).
        development_zone: the region's aid adds its ``development_zone_bonus`` here.
        reserved_for: sectors that may newly locate here (moves and births), empty for every
            sector the land uses admit; firms already here stay (the advice's reservation of
            urban-industry zones for material production).
    """

    name: str = param("", Name())
    region: str = param("", RefTo("regions"))
    x_km: float = param(0.0, Interval(-1e4, 1e4), "km")
    y_km: float = param(0.0, Interval(-1e4, 1e4), "km")
    radius_km: float = param(2.0, Interval(0, 500), "km")
    congestion: float = param(1.0, Interval(0.1, 10), "ratio")
    price_eur_m2: float = param(100.0, Interval(0, 1e5, open_low=True), "EUR/m2")
    access_road: float = param(0.5, SHARE, "index 0-1")
    access_rail: float = param(0.5, SHARE, "index 0-1")
    access_water: float = param(0.0, SHARE, "index 0-1")
    labour_access: float = param(0.5, SHARE, "index 0-1")
    amenity: float = param(0.0, UTILITY, "utility")
    open_year: int = param(0, YearOrZero("always open"), "year")
    site_option: str = param("subdivided", OneOf(SITE_OPTIONS), "|".join(SITE_OPTIONS))
    site_investor_jobs: int = param(0, Interval(0, 1e6), "jobs")
    site_investor_sector: str = param("", RefTo("sectors", may_be_empty=True))
    preemption: bool = param(False, Flag())
    land_subsidy: float = param(0.0, SHARE, "share 0-1")
    densification: float = param(1.0, Interval(0.1, 2), "ratio")
    development_zone: bool = param(False, Flag())
    reserved_for: tuple[str, ...] = param((), RefsTo("sectors"), "sector list")


@dataclass
class LandPool:
    """The land of one land-use class in one zone.

    Attributes:
        zone: zone key.
        land_use: land-use class (one of :data:`LAND_USES`).
        vacant_ha: developable land not occupied at the start (ha).
        firm_share: share of the region's initial firms of sectors allowed here placed in this pool.
        new_ha_per_year: land newly zoned and equipped for firms each year (ha/yr).
    """

    zone: str = param("", RefTo("zones"))
    land_use: str = param("park", OneOf(LAND_USES))
    vacant_ha: float = param(0.0, Interval(0, 1e6), "ha")
    firm_share: float = param(0.0, Interval(0, 1e6), "weight")
    new_ha_per_year: float = param(0.0, Interval(0, 1e4), "ha/yr")


@dataclass
class PopulationCell:
    """Initial firms of one sector in one region.

    Attributes:
        region: region name.
        sector: sector name.
        firms: number of firms.
        jobs: number of jobs (sets the mean firm size).
        size_sigma: log-normal dispersion of firm size.
        growth_drift_shift: yearly growth drift of this region's firms of this sector on top of
            the sector's ``growth_drift`` (:mod:`relocsim.regional_trends`).
    """

    region: str = param("", RefTo("regions"))
    sector: str = param("", RefTo("sectors"))
    firms: int = param(0, Interval(0, 1e7), "firms")
    jobs: int = param(0, Interval(0, 1e8), "jobs")
    size_sigma: float = param(1.2, Interval(0, 5), "-")
    growth_drift_shift: float = param(0.0, Interval(-1, 1), "1/year")


@dataclass
class AidPortability:
    """What happens to unexpired aid when a firm leaves the granting region.

    Attributes:
        mode: ``none`` (nothing), ``clawback`` (the firm repays) or ``compensation`` (the
            destination region pays the origin region).
        repayment_share: share of the aid repaid when leaving in the first year of the
            commitment; it declines linearly to zero at its end.
        compensation_share: share the destination pays the origin (same linear decline).
    """

    mode: str = param("none", OneOf(PORTABILITY_MODES))
    repayment_share: float = param(1.0, SHARE)
    compensation_share: float = param(1.0, SHARE)


@dataclass
class Policies:
    """Switchable policies.

    Attributes:
        aid_portability: aid portability rules.
        speculation_tax: yearly tax on retained vacant land as a share of its value; each point
            of tax releases ``land.speculation_response`` of the retained land.
        monitoring: yearly probability that a breach of a job commitment (of an incentive or of
            an aid with a jobs condition) is
            detected and the incentive clawed back.
    """

    aid_portability: AidPortability = field(default_factory=AidPortability)
    speculation_tax: float = param(0.0, SHARE)
    monitoring: float = param(0.5, SHARE)


@dataclass
class Behaviour:
    """Firm-level behaviour of the move decision and of demography.

    Attributes:
        b_stress: utility of moving per unit of space stress (missing share of needed land).
        b_growth: utility of moving per unit of last year's log-growth.
        b_age: disutility of moving per unit of log(1 + age).
        b_size: disutility of moving per unit of log(employees).
        b_size_deloc: utility of leaving the region per unit of log(employees), on top of
            ``b_size`` (which weighs every move): larger firms move less often but, when they
            move, leave their region more often (the IBSA size gradient of Brussels leavers).
        exit_age_decay: exit hazard multiplier per year of age: exp(-decay * age) (negative: the
            hazard rises with age, a liability of senescence).
        exit_size_elasticity: exit hazard falls with size as employees ** (-elasticity).
        max_employees: cap on a firm's employees.
        money_scale_eur: EUR per unit of money in the choice utilities (1e6: per MEUR).
        language_border: utility lost moving across the language border.
        own_region_distance_scale: the distance coefficient of a move inside the firm's own
            region, as a multiple of its sector's ``b_dist`` (moves out of the region keep
            ``b_dist``): a firm that stays in its region looks for premises near its workers and
            clients, one that leaves has already given them up (1: one coefficient for both
            nests).
        money_size_elasticity: money weighs as (10 / employees) ** elasticity relative to a
            ten-job firm (a euro matters less to a big firm).
        growth_stress_penalty: log-growth lost in a year at full space stress (1/yr).
        aid_growth_semi_elasticity: log-employment gained per unit of aid intensity, spread
            evenly over the aid's commitment years.
        aid_growth_max_employees: firms at or above this size gain no growth from aid.
        exit_incentive_semi_elasticity: exit hazard falls as exp(-this x incentive received, in
            kEUR per job-year) while a job-keeping incentive runs (per kEUR/job-year).
        exit_tax_semi_elasticity: exit hazard rises as exp(this x local tax on the firm's
            premises, in kEUR per job-year) (per kEUR/job-year).
        birth_vacancy_elasticity: births in a zone scale as (vacant share / its reference) **
            this elasticity.
        birth_price_elasticity: births in a zone scale as (land price / its reference) **
            (-this elasticity).
        birth_jobs_weight: how far births follow the incumbents' jobs rather than their number:
            each incumbent counts for (1 - w) + w x its jobs / its sector's jobs per firm at the
            start (:mod:`relocsim.entry`; 0: births per firm).
        birth_density_elasticity: births in a zone scale as (its firms / its firms at the
            start) ** (-this elasticity): founding falls as a zone fills with competitors
            (:mod:`relocsim.entry`; 0: no density dependence).
    """

    b_stress: float = param(2.0, UTILITY)
    b_growth: float = param(1.0, UTILITY)
    b_age: float = param(0.3, UTILITY)
    b_size: float = param(0.1, UTILITY)
    b_size_deloc: float = param(0.0, UTILITY)
    exit_age_decay: float = param(0.05, Interval(-1, 10))
    exit_size_elasticity: float = param(0.2, Interval(-1, 5))
    max_employees: int = param(20_000, Interval(1, 1e6))
    money_scale_eur: float = param(1e6, Interval(1, 1e12))
    money_size_elasticity: float = param(0.5, Interval(0, 5))
    language_border: float = param(0.0, SENSITIVITY)
    own_region_distance_scale: float = param(1.0, Interval(0, 20))
    growth_stress_penalty: float = param(0.0, Interval(0, 1))
    aid_growth_semi_elasticity: float = param(0.0, Interval(0, 5))
    aid_growth_max_employees: int = param(150, Interval(1, 1e6))
    exit_incentive_semi_elasticity: float = param(0.0, Interval(0, 10))
    exit_tax_semi_elasticity: float = param(0.0, Interval(0, 10))
    birth_vacancy_elasticity: float = param(0.0, Interval(0, 5))
    birth_price_elasticity: float = param(0.0, Interval(0, 5))
    birth_jobs_weight: float = param(0.0, SHARE)
    birth_density_elasticity: float = param(0.0, Interval(0, 5))


@dataclass
class LandMarket:
    """How land supply and prices move.

    Attributes:
        target_occupancy: occupancy at which prices of large sites are stable (other pools are
            stable at their starting occupancy, when their prices were observed).
        price_elasticity: yearly log-price change per point of occupancy above target.
        max_price_change: cap on the yearly change of the log price.
        price_reversion: yearly share of the log-gap to the starting price that closes.
        retained_share: share of vacant land held back by owners (speculation/retention).
        speculation_response: share of retained land released per unit of speculation tax.
        conversion_rate: yearly share of released productive land in mixed zones lost to
            housing/offices (pre-emption stops it).
        mixed_price_premium: price multiplier of the mixed/residential class.
        tax_capitalisation_years: years of local tax added to the land price a firm weighs.
        need_price_elasticity: elasticity of land per job to the pool's price relative to its
            starting price (firms use less land where it is dear; 0: fixed land per job).
        shortfall_price_elasticity: yearly log-price change per unit of a region's unmet land
            demand (firms that found no land) relative to the land it offered.
        conversion_premium_eur_m2: what housing and office developers pay above the land price
            for premises owed to conversion (EUR/m2); a firm selling its premises gets it on
            its share of its pool's owed conversion (0: no buy-out).
        supply_vacancy_elasticity: elasticity of the land newly zoned in a pool to its vacancy
            rate relative to its reference (:func:`relocsim.land_market.zone_new_land`): planners
            and park developers equip less new land where land stands vacant (0: the planned
            flow every year whatever the vacancy).
    """

    target_occupancy: float = param(0.85, Interval(0.05, 1))
    price_elasticity: float = param(0.5, Interval(0, 100))
    max_price_change: float = param(0.1, SHARE)
    price_reversion: float = param(0.15, SHARE)
    retained_share: float = param(0.3, SHARE)
    speculation_response: float = param(10.0, Interval(0, 1000))
    conversion_rate: float = param(0.3, SHARE)
    mixed_price_premium: float = param(1.5, Interval(0.1, 10))
    tax_capitalisation_years: float = param(10.0, Interval(0, 100))
    need_price_elasticity: float = param(0.0, Interval(0, 2))
    shortfall_price_elasticity: float = param(0.0, Interval(0, 10))
    conversion_premium_eur_m2: float = param(0.0, Interval(0, 20000))
    supply_vacancy_elasticity: float = param(0.0, Interval(0, 20))


@dataclass
class Plant:
    """A large plant placed explicitly at the start, possibly with a scheduled closure (a shock).

    Attributes:
        name: plant name (e.g. ``audi_brussels``).
        zone: zone of the plant.
        land_use: land-use class of its plot.
        sector: its sector.
        jobs: its employees.
        land_ha: its plot (ha).
        close_year: year it closes, its jobs lost and its land released (0: never; it stays an
            anchor that takes no yearly decision).
    """

    name: str = param("", Name())
    zone: str = param("", RefTo("zones"))
    land_use: str = param("gsi", OneOf(LAND_USES))
    sector: str = param("", RefTo("sectors"))
    jobs: int = param(0, Interval(1, 1e6))
    land_ha: float = param(0.0, Interval(0, 1e5, open_low=True))
    close_year: int = param(0, YearOrZero("never"))


@dataclass
class Scenario:
    """Everything a run starts from.

    Attributes:
        name: scenario name.
        start_year: first simulated year.
        years: default number of simulated years.
        burn_in_years: years simulated before ``start_year`` under the scenario's own rules and
            then forgotten, so that the first reported year carries no transient
            (:mod:`relocsim.steady_start`; 0: start from ``population.csv`` as drawn).
        regions: regions by name.
        sectors: sectors by name.
        zones: zones by name.
        land: land pools by zone then land-use class.
        population: initial firm population cells.
        policies: policy switches.
        behaviour: behaviour parameters.
        land_market: land-market parameters.
        plants: large plants placed explicitly, with scheduled closures.
        travel_speed_kmh: mean door-to-door road speed at free flow (km/h).
        detour_factor: road distance over straight-line distance.
        n_sampled: sampled alternatives in the location choice (0 = all).
        source_dir: where the scenario was loaded from (for messages).
    """

    name: str = param("scenario", Name())
    start_year: int = param(2025, Interval(FIRST_YEAR, LAST_YEAR))
    years: int = param(30, Interval(0, 1000))
    burn_in_years: int = param(0, Interval(0, 500))
    regions: dict[str, Region] = field(default_factory=dict)
    sectors: dict[str, Sector] = table(dict, "sectors.csv", "name")
    zones: dict[str, Zone] = table(dict, "zones.csv", "name")
    land: dict[str, dict[str, LandPool]] = table(dict, "land.csv", "zone", "land_use")
    population: list[PopulationCell] = table(list, "population.csv", "region", "sector")
    policies: Policies = field(default_factory=Policies)
    behaviour: Behaviour = field(default_factory=Behaviour)
    land_market: LandMarket = field(default_factory=LandMarket)
    plants: list[Plant] = field(default_factory=list)
    travel_speed_kmh: float = param(60.0, Interval(0, 300, open_low=True))
    detour_factor: float = param(1.3, Interval(1, 5))
    n_sampled: int = param(0, Interval(0, 1e6))
    source_dir: str = field(default="", metadata={"internal": True})
