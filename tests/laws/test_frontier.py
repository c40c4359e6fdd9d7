import numpy as np
import pandas as pd
import pytest

from scalelab.errors import FitError
from scalelab.laws import loglog_slope, pareto_frontier


def test_pareto_frontier_keeps_the_undominated():
    df = pd.DataFrame({"C": [1, 2, 2, 3, 4, 5], "loss": [5.0, 4.0, 4.5, 4.2, 3.0, 3.0]})
    front = pareto_frontier(df)
    assert front["C"].tolist() == [1, 2, 4]
    assert front["loss"].tolist() == [5.0, 4.0, 3.0]


def test_frontier_derives_c_from_n_and_d():
    df = pd.DataFrame({"N": [1.0, 2.0], "D": [1.0, 1.0], "loss": [2.0, 1.0]})
    assert pareto_frontier(df)["C"].tolist() == [6.0, 12.0]
    with pytest.raises(FitError, match=r"needs column 'flops'"):
        pareto_frontier(df, cost="flops")


def test_slope_recovers_alpha_with_an_interval():
    rng = np.random.default_rng(0)
    c = np.geomspace(1e15, 1e19, 40)
    df = pd.DataFrame({"C": c, "loss": 20 * c**-0.05 * np.exp(0.01 * rng.standard_normal(40))})
    law = loglog_slope(df, "C", bootstrap=300)
    assert law.params["alpha"] == pytest.approx(0.05, abs=0.003)
    lo, hi = law.ci["alpha"]
    assert lo < 0.05 < hi and hi - lo < 0.01
    assert law.form == "slope"


def test_slope_on_another_quality_column_and_the_frontier():
    n = np.geomspace(1e6, 1e9, 10)
    df = pd.DataFrame({"N": n, "D": 1e9, "val_bpb": 3 * n**-0.1, "loss": 1.0})
    law = loglog_slope(df, "N", y="val_bpb", frontier=True, bootstrap=50)
    assert law.params["alpha"] == pytest.approx(0.1, rel=1e-6)
