"""scalelab.intervals.percentile_interval: the bootstrap percentile interval, once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalelab.intervals import percentile_interval


def test_the_quantiles_of_the_samples():
    x = np.arange(1.0, 102.0)  # 1..101: the 2.5% and 97.5% points are 3.5 and 98.5
    assert percentile_interval(x) == pytest.approx((3.5, 98.5))
    assert percentile_interval(list(x), level=0.5) == (26.0, 76.0)


def test_failed_refits_are_left_out_per_column():
    good = np.linspace(0.0, 1.0, 41)
    col2 = good * 10
    arr = np.column_stack([good, col2])
    bad = np.vstack([arr, [[np.nan, np.inf], [-np.inf, np.nan]]])
    lo, hi = percentile_interval(bad, 0.9)
    ref_lo, ref_hi = percentile_interval(arr, 0.9)
    np.testing.assert_allclose(lo, ref_lo)
    np.testing.assert_allclose(hi, ref_hi)
    assert lo.shape == (2,)


def test_a_column_without_a_finite_value_has_no_interval():
    lo, hi = percentile_interval(np.array([[1.0, np.nan], [2.0, np.inf]]))
    assert math.isfinite(lo[0]) and math.isnan(lo[1]) and math.isnan(hi[1])
    assert all(map(math.isnan, percentile_interval([np.nan, np.nan])))


def test_infinity_kept_where_it_is_an_answer():
    """A plan's compute for a loss that some refits never reach: the interval is open."""
    values = [1.0] * 10 + [np.inf] * 10
    assert percentile_interval(values)[1] == 1.0
    assert percentile_interval(values, keep_infinite=True)[1] == np.inf
    assert percentile_interval([*values, np.nan], keep_infinite=True)[0] == 1.0


def test_a_level_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="level"):
        percentile_interval([1.0, 2.0], 95)
