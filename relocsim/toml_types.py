"""What a value read from a TOML input file (study, fact registry) must be to count as a number.

TOML gives integers, floats, booleans and text apart, but Python counts ``True`` as an integer
and ``nan``/``inf`` as floats: these predicates say what the input readers accept, so that each
reader only words its own error.
"""

from __future__ import annotations

import math
from typing import Any


def is_integer(value: Any) -> bool:
    """A TOML integer (a boolean is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A TOML integer or float that is finite (not a boolean, not text)."""
    return (is_integer(value) or isinstance(value, float)) and math.isfinite(value)
