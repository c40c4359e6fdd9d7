"""Hoffmann et al.'s approaches 1, 2 and 3 agree on a known law; approach 2 on CS336's
(synthetic, noiseless) IsoFLOP curves recovers the allocation of the law behind them."""

import numpy as np
import pandas as pd
import pytest

from scalelab.errors import FitError
from scalelab.laws import envelope, isoflop, parametric

P = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
A_TRUE = P["beta"] / (P["alpha"] + P["beta"])


def isoflop_points(budgets=(1e17, 1e18, 1e19, 1e20), sizes=9):
    rows = []
    for C in budgets:
        n_opt = 0.1 * C**A_TRUE
        for n in n_opt * np.geomspace(0.2, 5, sizes):
            d = C / (6 * n)
            loss = P["E"] + P["A"] / n ** P["alpha"] + P["B"] / d ** P["beta"]
            rows.append({"N": n, "D": d, "C": C, "loss": loss})
    return pd.DataFrame(rows)


def test_isoflop_recovers_the_exponent():
    a = isoflop(isoflop_points(), bootstrap=20)
    assert a.a == pytest.approx(A_TRUE, abs=0.02)
    assert a.a + a.b == pytest.approx(1.0, abs=1e-9)  # D = C / 6N
    assert len(a.optima) == 4 and a.optima["inside"].all()
    assert a.extrapolation["by"] == "C" and abs(a.extrapolation["N_opt_rel_error"]) < 0.1


def test_parametric_is_exact_on_the_law():
    a = parametric(isoflop_points(), bootstrap=0)
    assert a.a == pytest.approx(A_TRUE, rel=1e-4)


def test_envelope_follows_the_frontier():
    a = envelope(isoflop_points(), n_bins=4, bootstrap=20)
    assert a.a == pytest.approx(A_TRUE, abs=0.08)  # coarse: the best of 9 sizes per budget


def test_cs336_isoflop_curves(data_dir):
    df = pd.read_csv(data_dir / "cs336_isoflops.csv").rename(
        columns={
            "parameters": "N",
            "compute_budget": "C",
            "tokens_C_over_6N": "D",
            "final_loss": "loss",
        }
    )
    two = isoflop(df, bootstrap=50)
    three = parametric(df, bootstrap=0)
    assert len(two.optima) == 9
    assert two.a == pytest.approx(three.a, abs=0.01)
    lo, hi = two.ci["a"]
    assert lo <= two.a <= hi
    n2, _ = two.predict(1e23)
    n3, _ = three.predict(1e23)
    assert n2 == pytest.approx(n3, rel=0.05)
    assert set(two.to_dict()) >= {"params", "objective", "ci", "extrapolation"}


def test_isoflop_needs_budgets_with_three_sizes():
    df = isoflop_points().groupby("C").head(2)
    with pytest.raises(FitError, match=r"at least 2 compute budgets with 3 or more model sizes"):
        isoflop(df, bootstrap=0)
