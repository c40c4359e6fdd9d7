"""effective_n / effective_d: round trips, the floor, multipliers below 1, intervals."""

import math

import numpy as np
import pytest

from scalelab.errors import FitError
from scalelab.laws import Law, fit_law
from scalelab.laws.effective import effective_d, effective_n

HOFF = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _law(**extra) -> Law:
    return Law(form="chinchilla", params=dict(HOFF), **extra)


@pytest.mark.parametrize("N", [1e6, 7e7, 3e10])
@pytest.mark.parametrize("D", [1e8, 2e10])
def test_round_trip_in_n_and_d(N: float, D: float) -> None:
    law = _law()
    loss = law.predict(N, D)
    assert effective_n(law, loss, D).value == pytest.approx(N, rel=1e-8)
    assert effective_d(law, loss, N).value == pytest.approx(D, rel=1e-8)
    e = effective_n(law, loss, D, N=N)
    assert e.status == "ok"
    assert e.multiplier == pytest.approx(1.0, rel=1e-8)


def test_lower_loss_means_larger_multiplier_and_hand_value() -> None:
    law = _law()
    N, D = 1e8, 2e9
    loss = law.predict(N, D) - 0.02
    e = effective_n(law, loss, D, N=N)
    # hand inversion of E + A/N^a + B/D^b = loss
    n_hand = (HOFF["A"] / (loss - HOFF["E"] - HOFF["B"] / D ** HOFF["beta"])) ** (1 / HOFF["alpha"])
    assert e.value == pytest.approx(n_hand, rel=1e-8)
    assert e.multiplier > 1


def test_loss_above_the_model_is_a_multiplier_below_one() -> None:
    law = _law()
    e = effective_n(law, law.predict(1e6, 1e9) + 0.05, 1e9, N=1e6)
    assert e.status == "ok"
    assert 0 < e.multiplier < 1


def test_below_the_floor_is_unreachable_not_huge() -> None:
    law = _law()
    D = 1e9
    floor = HOFF["E"] + HOFF["B"] / D ** HOFF["beta"]
    e = effective_n(law, floor - 1e-3, D, N=1e8)
    assert e.status == "unreachable"
    assert math.isnan(e.value)
    assert e.floor == pytest.approx(floor, rel=1e-9)
    assert "below the law's floor" in e.describe()
    assert e.multiplier == math.inf


def test_worse_than_any_size() -> None:
    e = effective_n(_law(), 1e4, 1e9)
    assert e.status == "worse"
    assert "above" in e.describe()


def test_bootstrap_interval_brackets_the_estimate(synthetic) -> None:
    pts = synthetic(HOFF, noise=0.01, seed=3)
    law = fit_law(pts, "chinchilla", bootstrap=40, seed=0, extrapolation=False)
    N, D = 5e7, 1e9
    loss = law.predict(N, D) - 0.01
    e = effective_n(law, loss, D, N=N)
    assert e.lo is not None and e.hi is not None
    assert e.lo <= e.value <= e.hi
    lo, hi = e.multiplier_ci
    assert lo < e.multiplier < hi
    assert "CI" in e.describe()
    d = effective_d(law, loss, N, D=D)
    assert d.lo <= d.value <= d.hi
    assert set(e.to_dict()) >= {"multiplier", "multiplier_lo", "multiplier_hi", "status"}


def test_unreachable_refits_make_an_infinite_upper_end() -> None:
    # half the refits have a floor above the loss: the upper end is inf, the lower finite
    base = np.array([HOFF[k] for k in ("E", "A", "B", "alpha", "beta")])
    high_floor = base.copy()
    high_floor[0] += 2.5
    law = _law(samples=np.stack([base] * 10 + [high_floor] * 10))
    loss = law.predict(1e8, 1e9)
    e = effective_n(law, loss, 1e9, N=1e8)
    assert e.hi == math.inf
    assert e.lo == pytest.approx(1e8, rel=1e-6)


def test_power_law_in_n_ignores_d_and_law_without_n_is_an_error() -> None:
    law = Law(form="power", x="N", params={"E": 1.0, "A": 10.0, "alpha": 0.3})
    assert effective_n(law, law.predict(N=1e7), 1e9).value == pytest.approx(1e7, rel=1e-8)
    law_d = Law(form="power", x="D", params={"E": 1.0, "A": 10.0, "alpha": 0.3})
    with pytest.raises(FitError, match="does not depend on N"):
        effective_n(law_d, 2.0, 1e9)


def test_bad_inputs_are_fit_errors() -> None:
    with pytest.raises(FitError, match="positive"):
        effective_n(_law(), -1.0, 1e9)
    with pytest.raises(FitError, match="D must be"):
        effective_n(_law(), 2.5, 0.0)


def test_kaplan_round_trip() -> None:
    law = Law(
        form="kaplan",
        params={"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
    )
    loss = law.predict(1e8, 1e10)
    assert effective_n(law, loss, 1e10).value == pytest.approx(1e8, rel=1e-6)
    assert effective_d(law, loss, 1e8).value == pytest.approx(1e10, rel=1e-6)
