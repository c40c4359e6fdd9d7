"""The range of each kind of number a user sets, written once (configs and commands alike).

A rate (a learning rate, a temperature) is finite, > 0 and at most :data:`MAX_RATE`: above
it every step overflows (AdamW cannot even store an update of 1e308), and the well-tuned
rates of every optimizer here are below 1. Seeds (whole numbers >= 0) and finite floats are
checked where every config section is read (:func:`scalelab.config.section_from_dict`).
"""

from __future__ import annotations

import math

from scalelab.errors import ConfigError

MAX_RATE = 1e3


def check_rate(name: str, value: float) -> None:
    """One rule for every rate: finite, > 0 and <= MAX_RATE, else a ConfigError naming it."""
    if not (math.isfinite(value) and 0 < value <= MAX_RATE):
        raise ConfigError(f"{name} must be a finite number in (0, {MAX_RATE:g}], got {value!r}")


__all__ = ["MAX_RATE", "check_rate"]
