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
