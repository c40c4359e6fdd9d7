"""Numbers for people: the one SI formatter for counts of parameters, tokens and FLOPs.

``si(1.5e6) == "1.5M"``; ``si(8.03e9, billion="B", sep=" ") == "8.03 B"`` (parameter
counts say B for a billion, FLOPs and tokens say G). Labels made with it (a study's size
``1.5M`` and budget ``tokens=12.8k``) are stored with the runs, so its output for a given
call is part of the record: change the arguments, not the function. The CLI reads these
forms back (``15.6T``, ``1e21``); byte sizes are :func:`scalelab.accounting.format_bytes`.
"""

from __future__ import annotations

import math
from typing import Any

_PREFIXES = (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))


def si(x: Any, digits: int = 3, *, billion: str = "G", sep: str = "") -> str:
    """``x`` with ``digits`` significant digits and an SI prefix (k, M, G, T, P, E);
    ``billion`` replaces G (``"B"`` for parameter counts), ``sep`` goes between the number
    and the prefix. ``None``, NaN and non-numbers give ``""`` (an empty table cell)."""
    if x is None or isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        return ""
    for prefix, scale in _PREFIXES:
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g}{sep}{billion if prefix == 'G' else prefix}"
    return f"{x:.{digits}g}"


__all__ = ["si"]
