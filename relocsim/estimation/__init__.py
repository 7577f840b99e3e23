"""Maximum-likelihood estimation of the simulator's choice coefficients from a decision panel.

``fit(panel, scenario, spec)`` estimates the nested stay / relocate / delocalise logit that
:mod:`relocsim.decision` simulates; see ``docs/estimation.md``.
"""
