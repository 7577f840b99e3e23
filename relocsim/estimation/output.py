"""Files an estimation writes: estimates.csv, covariance.csv, summary.txt, estimated.toml."""

from __future__ import annotations

import json
from pathlib import Path

from relocsim.estimation.fit import EstimationResult


def _toml_value(value: object) -> str:
    return json.dumps(value)  # a JSON string or number is valid TOML


def overrides_toml(result: EstimationResult) -> str:
    """Scenario overrides with provenance, readable by ``relocsim run --set-file``."""
    prov = result.provenance
    lines = [
        "# Scenario overrides estimated by `relocsim estimate`; use with",
        "# `relocsim run --set-file estimated.toml`.",
        "[provenance]",
        f"data = {_toml_value(prov.get('data', ''))}",
        f"sha256 = {_toml_value(prov.get('sha256', ''))}",
        f"spec = {_toml_value(prov.get('spec', ''))}",
        f"sampling = {_toml_value(prov.get('sampling', ''))}",
        f"loglik = {result.loglik!r}",
        f"converged = {'true' if result.diagnostics.converged else 'false'}",
        f"n_obs = {result.n_obs}",
        f"date = {_toml_value(prov.get('date', ''))}",
    ]
    if "control_function" in prov:
        cf = prov["control_function"]
        lines += [
            f"control_function = {_toml_value(cf['instruments'])}",
            f"first_stage_f = {cf['first_stage_f']!r}",
        ]
    lines += [
        "",
        "[overrides]",
    ]
    lines += [f"{_toml_value(k)} = {v!r}" for k, v in result.to_overrides().items()]
    return "\n".join(lines) + "\n"


def write_outputs(result: EstimationResult, out: str | Path) -> list[Path]:
    """Write the four result files into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / n for n in ("estimates.csv", "covariance.csv", "summary.txt", "estimated.toml")]
    result.table().to_csv(paths[0], index=False)
    result.cov_robust.to_csv(paths[1])
    paths[2].write_text(result.summary() + "\n")
    paths[3].write_text(overrides_toml(result))
    return paths
