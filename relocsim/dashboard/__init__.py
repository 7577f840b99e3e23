"""Interactive Solara dashboard: move policy levers, run years, compare two policies.

``relocsim dashboard`` serves :mod:`relocsim.dashboard.app`; :mod:`relocsim.dashboard.state` holds
the levers and the runs (no UI), :mod:`relocsim.dashboard.figures` draws the views.
"""
