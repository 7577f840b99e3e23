"""Ages of the starting firms: the age a firm of its size has under the model's own growth law.

``population.csv`` gives each region x sector cell its firms and jobs (log-normal sizes) but no
ages. Drawn blind to size, large firms start as young as small ones, while the model grows a
firm of 100+ jobs out of a newborn of about 2 over decades. The burn-in (ten years) cannot undo
that: with size-blind ages (before session 9) the mean age of Brussels firms of 100+ jobs went
from 20 at the start to 34, 43 and 48 years after 10, 20 and 30 simulated years, and since moves
fall with age (``behaviour.b_age``) their leaving fell with it (29 leavers per 1,000 a year in
2025-34, 17 in 2035-44; docs/calibration.md, "Session 9").

With a constant flow of births, the firms of age a in a stationary population are the survivors
of one cohort at age a. So one synthetic cohort per sector and drift is followed through the
model's own yearly growth (:func:`relocsim.demography.gibrat_log_growth`,
:func:`relocsim.demography.resized`) from the newborn size distribution, each lineage weighted by
its survival under :func:`relocsim.demography.exit_hazard` (weights, not exit draws, keep the old
ages of the large sizes populated). The survivors are tabulated by age and size band (powers of
two), and each starting firm draws its age from the column of its size band. Space stress, aid
and incentives are left out of the cohort: the burn-in adds them.
"""

from __future__ import annotations

import numpy as np

from relocsim.demography import (
    NEWBORN_SIZE_P,
    SectorDemography,
    exit_hazard,
    gibrat_log_growth,
    resized,
)
from relocsim.scenarios import Behaviour

COHORT_LINEAGES = 4000
"""Synthetic lineages followed per sector and drift."""
MAX_AGE_YEARS = 120
"""Oldest age tabulated; lineages older than this are negligible at the model's exit hazards."""


def size_band(employees: np.ndarray) -> np.ndarray:
    """Size band of each firm: 0 for 1 job, 1 for 2-3, 2 for 4-7, ... (floor of log2).

    Read off the binary exponent rather than computed with ``log2``, whose last bit may differ
    between CPUs: at a power of two that bit is the band."""
    _, exponent = np.frexp(np.maximum(employees, 1))
    return (exponent - 1).astype(np.int64)


def cohort_table(
    params: SectorDemography,
    behaviour: Behaviour,
    sector: int,
    drift_shift: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Survivors of one cohort by age (rows, 0 .. MAX_AGE_YEARS) and size band (columns)."""
    employees = rng.geometric(NEWBORN_SIZE_P, COHORT_LINEAGES).astype(np.int64)
    # newborns are not held to the cap on growth (demography.births), so a cap below the
    # largest newborn must not cut the table
    largest = max(behaviour.max_employees, int(employees.max()))
    n_bands = int(size_band(np.array([largest]))[0]) + 1
    table = np.zeros((MAX_AGE_YEARS + 1, n_bands))
    survival = np.ones(COHORT_LINEAGES)
    sectors = np.full(COHORT_LINEAGES, sector)
    for age in range(MAX_AGE_YEARS + 1):
        table[age] = np.bincount(size_band(employees), weights=survival, minlength=n_bands)
        shock = rng.standard_normal(COHORT_LINEAGES)
        rounding = rng.random(COHORT_LINEAGES)
        size = employees.astype(np.float64)
        growth = gibrat_log_growth(params, sectors, size, drift_shift, shock)
        employees = resized(size, growth, rounding, behaviour.max_employees)
        survival *= 1.0 - np.minimum(
            exit_hazard(params, behaviour, sectors, employees, age + 1), 1.0
        )
    return table


def draw_ages(
    rng: np.random.Generator,
    employees: np.ndarray,
    sector: np.ndarray,
    drift_shift: np.ndarray,
    params: SectorDemography,
    behaviour: Behaviour,
) -> np.ndarray:
    """An age (whole years, >= 0) for each firm, from the stationary ages of its size band under
    its sector's growth law with its cell's ``drift_shift``.

    A band the cohort never reaches (a size above what the drift lets firms grow to) takes the
    ages of the largest band it reaches.
    """
    ages = np.zeros(len(employees), np.int64)
    shifts, shift_index = np.unique(drift_shift, return_inverse=True)
    kind = sector.astype(np.int64) * len(shifts) + shift_index  # (sector, shift), in that order
    for k in np.unique(kind):
        rows = np.flatnonzero(kind == k)
        s, shift = divmod(int(k), len(shifts))
        table = cohort_table(params, behaviour, s, float(shifts[shift]), rng)
        reached = np.flatnonzero(table.sum(axis=0) > 0)
        band = size_band(employees[rows])
        band = reached[np.clip(np.searchsorted(reached, band, side="right") - 1, 0, None)]
        u = rng.random(len(rows))
        for b in np.flatnonzero(np.bincount(band)):
            cdf = np.cumsum(table[:, b])
            in_band = band == b
            ages[rows[in_band]] = np.searchsorted(cdf, u[in_band] * cdf[-1], side="right")
    return ages
