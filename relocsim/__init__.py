"""relocsim: an agent-based simulator of firm relocation.

Firms grow in place, stay, relocate inside their region or delocalise to another one, driven by
land price and availability, mobility, aid portability and fiscal incentives. See ``docs/ODD.md``
for the model and ``README.md`` for how to run it.
"""

from relocsim.model import RelocationModel
from relocsim.records import Results
from relocsim.scenarios import Scenario, ScenarioError, apply_overrides, load_scenario

__version__ = "0.1.0"

__all__ = [
    "RelocationModel",
    "Results",
    "Scenario",
    "ScenarioError",
    "apply_overrides",
    "load_scenario",
    "__version__",
]
