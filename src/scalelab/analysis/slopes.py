"""The log-log slope of a quality against a cost, with its bootstrap interval (Tay et al.
2022's alpha): the helper the architecture comparison and the downstream analysis share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.laws import loglog_slope


@dataclass(frozen=True)
class Slope:
    """alpha of log y = log k - alpha log x with its bootstrap interval, or why not."""

    x: str
    alpha: float | None = None
    ci: tuple[float, float] | None = None
    k: float | None = None
    n_points: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "alpha": self.alpha,
            "ci": list(self.ci) if self.ci else None,
            "k": self.k,
            "n_points": self.n_points,
            "error": self.error,
        }


def _distinct_x(x: np.ndarray) -> int:
    return len(np.unique(np.round(np.log(x[x > 0]), 9)))


def slope(
    df: pd.DataFrame,
    x: str,
    *,
    quality: str = "loss",
    bootstrap: int = 1000,
    seed: int = 0,
    label: str | None = None,
) -> Slope:
    """The log-log slope of ``quality`` against column ``x`` (laws.loglog_slope), as a
    :class:`Slope` that carries the FitError's message instead of raising it; ``label``
    names the axis in the result (default ``x``)."""
    pts = df[[x, quality]].astype(float).rename(columns={x: "X"})
    x = label or x
    n = len(pts)
    if _distinct_x(pts["X"].to_numpy()) < 3:
        return Slope(
            x,
            n_points=n,
            error=(
                f"needs at least 3 distinct values of {x} (has "
                f"{_distinct_x(pts['X'].to_numpy())}): add sizes to the study"
            ),
        )
    # loglog_slope fits against N or C; the column is renamed so any axis can be used.
    pts = pts.rename(columns={"X": "N"})
    try:
        law = loglog_slope(pts, x="N", y=quality, bootstrap=bootstrap, seed=seed)
    except FitError as e:
        return Slope(x, n_points=n, error=str(e))
    ci = law.ci.get("alpha") if law.ci else None
    return Slope(
        x,
        alpha=float(law.params["alpha"]),
        ci=(float(ci[0]), float(ci[1])) if ci else None,
        k=float(law.params["k"]),
        n_points=n,
    )


__all__ = ["Slope", "slope"]
