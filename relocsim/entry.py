"""Entry: how many incumbents a firm counts for when a zone breeds newborn firms.

Births are drawn per zone and sector in proportion to the incumbents
(:func:`relocsim.demography.births`). Counted per firm, entry compounds on itself: as the
population tilts to small firms, more firms breed more firms, and the number of firms drifts
away from the jobs they hold (a birth rate above the exit rate makes it grow without bound).
The labour-market view of entry (Audretsch & Fritsch 1994, Regional Studies 28(4): founders
come from the workforce, so entry rates are standardised by employment) counts jobs instead:
then the number of firms settles where births per job x jobs = exits, and follows the jobs.
``behaviour.birth_jobs_weight`` w blends the two: each incumbent counts for
``(1 - w) + w x its jobs / its sector's jobs per firm at the start``, so that at the start the
expected births are the same whatever w, and ``sectors.*.birth_rate`` keeps its unit (births
per incumbent firm).

Founding also falls as a zone fills with firms: organisational ecology's density dependence of
founding (Hannan & Carroll 1992, *Dynamics of Organizational Populations*; Carroll & Hannan 2000)
has entry rates fall with the number of incumbents once a population is established, as
competitors crowd the same clients and workers. ``behaviour.birth_density_elasticity`` d scales
a zone's births per incumbent by (its firms / its firms at the start) ** (-d)
(:func:`density_response`). The zone's firms are counted when births are drawn, after the year's
exits (the incumbents that breed), its start before the first year's: with exits of about 10% a
year the term starts near 0.9 ** -d (1.05 at the default's 0.504), a level the calibrated birth
rates absorb, and moves only as the zone fills or empties.
Without it, births per incumbent above the exit hazard make a zone's firms grow without bound
wherever land does not run out first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from relocsim.firms import FirmTable
from relocsim.scenarios import Scenario


def jobs_per_firm(scenario: Scenario, sector_names: Sequence[str]) -> np.ndarray:
    """Jobs per firm of each sector in ``population.csv`` (all regions; 1 for an empty sector)."""
    jobs, firms = np.zeros(len(sector_names)), np.zeros(len(sector_names))
    for cell in scenario.population:
        s = list(sector_names).index(cell.sector)
        jobs[s] += cell.jobs
        firms[s] += cell.firms
    return np.divide(jobs, firms, out=np.ones(len(sector_names)), where=firms > 0)


def incumbent_weight(
    firms: FirmTable, rows: np.ndarray, jobs_weight: float, per_firm: np.ndarray
) -> np.ndarray | None:
    """How many incumbents each of ``rows`` counts for (None: one each, when ``jobs_weight``
    is 0)."""
    if jobs_weight == 0:
        return None
    relative = firms.employees[rows] / per_firm[firms.sector[rows]]
    return (1.0 - jobs_weight) + jobs_weight * relative


def zone_firms(
    firms: FirmTable, rows: np.ndarray, pool_zone: np.ndarray, n_zones: int
) -> np.ndarray:
    """Number of firms ``rows`` in each zone (Z,)."""
    return np.bincount(pool_zone[firms.pool[rows]], minlength=n_zones).astype(np.float64)


def density_response(counts: np.ndarray, reference: np.ndarray, elasticity: float) -> np.ndarray:
    """How much a zone's births per incumbent fall as it fills (Z,): (counts / reference) **
    (-elasticity), the ratio kept in [0.1, 10] as :func:`relocsim.land_market.birth_attraction`
    keeps its own. A zone without firms at the start (a site opening later) has no reference
    and keeps 1."""
    if elasticity == 0:
        return np.ones(len(counts))
    has_reference = reference > 0
    ratio = np.clip(counts / np.where(has_reference, reference, 1.0), 0.1, 10.0)
    return np.where(has_reference, ratio ** (-elasticity), 1.0)
