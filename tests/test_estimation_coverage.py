"""Coverage of the estimator's 95% intervals over data sets the simulator draws itself.

The data sets share one design (a small synthetic scenario's firms, newborns, land and prices in
its first year: 3,066 decisions, 266 of them newborns') and differ only in the random draws of
the simulator's own decision (:func:`relocsim.decision.decide`: the compiled choice kernel with
its capacity lottery), so the truth is the scenario's coefficients and each data set is what
``decisions.parquet`` would hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from relocsim import decision, decision_panel
from relocsim import model as model_module
from relocsim.estimation import Panel, fit, parse_spec
from relocsim.model import RelocationModel
from relocsim.scenarios import load_scenario

SCENARIO = "synthetic:n_firms=3000,n_zones=20,n_regions=2,seed=0"
DRAWS = range(100, 200)
"""Seeds of the 100 redrawn decisions (the model itself runs with seed 0)."""
COMMON = {"asc_move": -2.0, "b_dist": 0.045}
"""Set alike in every sector so that pooled coefficients have one true value; asc_move raised
from about -4.4 so that about one firm in seven looks for land (more information per firm)."""
SPEC = {
    "coefficients": {
        "b_land": "pooled",
        "b_dist": "pooled",
        "asc_move": "pooled",
        "nest_scale": "pooled",
    },
    "options": {"start": "neutral"},
}


def redrawn_panels(monkeypatch: pytest.MonkeyPatch) -> tuple[object, list[Panel]]:
    """One simulated year whose decision is drawn again with each seed of :data:`DRAWS`."""
    scenario = load_scenario(SCENARIO)
    overrides = {f"sectors.{s}.{c}": v for s in scenario.sectors for c, v in COMMON.items()}
    model = RelocationModel(scenario, seed=0, overrides=overrides)
    decision_panel.attach(model)
    provenance = model.decision_panel.provenance
    collectors = [decision_panel.DecisionPanelCollector(provenance=provenance) for _ in DRAWS]
    redrawn: list[decision.Decision] = []
    decide = decision.decide

    def decide_and_redraw(**inputs):
        redrawn.extend(decide(**{**inputs, "seed": seed}) for seed in DRAWS)
        return decide(**inputs)

    class Redraws(decision_panel.DecisionPanelCollector):
        def record(self, model, answer, **inputs):
            for collector, other in zip(collectors, redrawn, strict=True):
                collector.record(model, other, **inputs)

    monkeypatch.setattr(model_module.decisions, "decide", decide_and_redraw)
    model.decision_panel = Redraws()
    model.step()
    panels = [Panel(*c.tables(), provenance=provenance) for c in collectors]
    return model.scenario, panels


@pytest.mark.slow
def test_95_percent_intervals_cover_the_truth_88_to_100_times_in_100(monkeypatch):
    """100 data sets, 4 coefficients: each coefficient's robust 95% interval covers the truth at
    least 88 times (a binomial(100, 0.95) count falls below 88 with probability 0.15%), and all
    400 intervals together at least 368 times (0.4%; at a true coverage of 90% the total reaches
    368 with probability about 10%). With the standard errors halved the same fits cover the
    truth about 2 times in 3, and the test checks that this would fail it. Measured (session 4):
    93, 97, 90 and 92 of 100, 372 of 400 (93%: the sandwich SEs cover a little less than
    nominal). With 20 data sets (seeds 100-119, sessions 2-3) the same design gave 75 and then,
    after the default's recalibration, 70 of 80: too few to tell 93% from 95%."""
    scenario, panels = redrawn_panels(monkeypatch)
    spec = parse_spec(SPEC)
    covered, covered_half = [], []
    for panel in panels:
        res = fit(panel, scenario, spec, threads=1)
        assert res.diagnostics.converged, res.diagnostics.warnings
        truth = res.provenance["truth"]
        true = pd.Series({n: np.mean([truth[p] for p in paths]) for n, paths in res.paths.items()})
        z = ((res.params - true) / res.bse_robust).abs()
        covered.append(z < 1.959964)
        covered_half.append(z < 1.959964 / 2)
    counts = pd.concat(covered, axis=1).sum(axis=1)
    counts_half = pd.concat(covered_half, axis=1).sum(axis=1)
    assert (counts >= 88).all(), counts.to_dict()
    assert counts.sum() >= 368, counts.to_dict()
    # the same criteria reject standard errors half as large
    assert not ((counts_half >= 88).all() and counts_half.sum() >= 368), counts_half
