"""The percentile interval of bootstrap samples: the one helper every interval uses.

Efron's percentile interval (Efron & Tibshirani 1993, ch. 13): the ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles of the resampled estimates. A refit that failed or diverged
leaves NaN or infinity in its row; such values are left out (per column), so one bad refit
does not widen or void the interval. A column with no finite value has no interval (NaN).
Where infinity is an answer rather than a failure (the compute a refit needs to reach a loss
it never reaches), ``keep_infinite=True`` keeps it, so the interval can be open-ended; then
each end is an order statistic (the sample just outside the quantile), because interpolating
between two infinite samples is undefined.
"""

from __future__ import annotations

import warnings
from typing import Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray


@overload
def percentile_interval(
    samples: list[float], level: float = ..., *, keep_infinite: bool = ...
) -> tuple[float, float]: ...
@overload
def percentile_interval(
    samples: ArrayLike, level: float = ..., *, keep_infinite: bool = ...
) -> tuple[Any, Any]: ...
def percentile_interval(
    samples: ArrayLike, level: float = 0.95, *, keep_infinite: bool = False
) -> tuple[Any, Any]:
    """``(lo, hi)`` over axis 0 of ``samples``: floats for a 1-D input, arrays (one entry per
    column) for a 2-D one. ``level`` in (0, 1), e.g. 0.95."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    arr: NDArray[np.float64] = np.array(samples, dtype=float)
    arr[np.isnan(arr) if keep_infinite else ~np.isfinite(arr)] = np.nan
    q = 100.0 * (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN, said above
        if keep_infinite:
            lo = np.nanpercentile(arr, q, axis=0, method="lower")
            hi = np.nanpercentile(arr, 100.0 - q, axis=0, method="higher")
        else:
            lo, hi = np.nanpercentile(arr, [q, 100.0 - q], axis=0)
    if arr.ndim == 1:
        return float(lo), float(hi)
    return lo, hi


__all__ = ["percentile_interval"]
