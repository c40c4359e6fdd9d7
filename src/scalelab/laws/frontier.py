"""The cost-quality frontier and the log-log slope used to compare architectures.

``pareto_frontier`` keeps the points no other point beats on both cost and loss (the
compute frontier of Kaplan et al. 2020, Fig. 1). ``loglog_slope`` fits the straight line
log L = log k - alpha log x, as Tay et al. 2022 ("Scaling Laws vs Model Architectures")
report how each architecture scales with compute and with parameters; a steeper alpha
means the architecture gains more from scale, whatever its offset.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.laws.fit import _with_derived, fit_law
from scalelab.laws.law import CI_LEVEL, Law


def pareto_frontier(df: Any, cost: str = "C", quality: str = "loss") -> pd.DataFrame:
    """The rows of ``df`` on the lower-left frontier of (cost, quality), sorted by cost:
    each has a strictly lower ``quality`` than every row that costs as much or less."""
    df = _with_derived(pd.DataFrame(df), (cost,))
    for c in (cost, quality):
        if c not in df.columns:
            raise FitError(f"the frontier needs column {c!r}; columns: {', '.join(df.columns)}")
    sub = df.dropna(subset=[cost, quality]).sort_values([cost, quality], kind="stable")
    best = np.inf
    keep = []
    for i, q in zip(sub.index, sub[quality].to_numpy(), strict=True):
        if q < best:
            keep.append(i)
            best = q
    return sub.loc[keep]


def loglog_slope(
    df: Any,
    x: str = "C",
    y: str = "loss",
    *,
    frontier: bool = False,
    bootstrap: int = 1000,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> Law:
    """alpha of log y = log k - alpha log x by least squares, with a bootstrap interval.

    ``x``: ``C`` (compute; 6ND unless the points carry C) or ``N``; ``y``: the quality
    column (``loss``, ``val_bpb``, ...). ``frontier=True`` fits only the Pareto frontier
    (the best loss reached at each cost). The result is a Law of form ``slope`` whose
    ``params["alpha"]`` is the slope's magnitude and ``ci["alpha"]`` its interval.
    """
    pts = _with_derived(pd.DataFrame(df), (x,))
    if y not in pts.columns:
        raise FitError(f"no column {y!r} to fit a slope to; columns: {', '.join(pts.columns)}")
    if frontier:
        pts = pareto_frontier(pts, cost=x, quality=y)
    pts = pts.assign(loss=pts[y]) if y != "loss" else pts
    return fit_law(pts, "slope", x=x, bootstrap=bootstrap, seed=seed, level=level)
