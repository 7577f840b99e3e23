"""Maximum-likelihood estimation of the simulator's choice coefficients from a decision panel.

``fit(panel, scenario, spec)`` estimates the nested stay / relocate / delocalise logit that
:mod:`relocsim.decision` simulates; see ``docs/estimation.md``. Modules: ``panel`` (reading and
validating the data), ``spec`` (what to estimate), ``design`` (arrays and parameter layout),
``likelihood`` (NumPy twin of the compiled ``relocsim._likelihood``), ``sampling`` (sampled
alternatives), ``control`` (control function for the land price), ``fit`` (optimiser, standard
errors, diagnostics), ``output`` (files), ``cli``.
"""

from relocsim.estimation.fit import EstimationResult, fit, lr_test
from relocsim.estimation.panel import Panel, PanelError, read_panel, validate_panel
from relocsim.estimation.spec import Spec, SpecError, load_spec, parse_spec

__all__ = [
    "EstimationResult",
    "Panel",
    "PanelError",
    "Spec",
    "SpecError",
    "fit",
    "load_spec",
    "lr_test",
    "parse_spec",
    "read_panel",
    "validate_panel",
]
