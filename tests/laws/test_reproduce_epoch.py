"""Must show: Epoch AI's refit of the Chinchilla points (Besiroglu et al. 2024).

Their notebook (data_analysis.ipynb, "Replicate exactly") minimises the same objective,
the sum of Huber(delta=1e-3) terms on log residuals, from 4500 L-BFGS starts and prints
E = 1.817, A = 477.8, B = 2143.9, alpha = 0.3473, beta = 0.3672 at objective
0.0010182740346. Tolerances: the objective must not be above theirs (and agree to 1e-6
relative); E, alpha, beta within 0.001; A and B within 0.5% (this basin is flat along
A-B: their own last improvements moved B by 0.4 with the objective unchanged to 1e-11).
"""

import time

import numpy as np
import pytest

from scalelab.laws import fit_law

EPOCH = {"E": 1.817, "A": 478, "B": 2143, "alpha": 0.347, "beta": 0.367}
EPOCH_OBJECTIVE = 0.0010182740346154362  # their best, printed by the notebook


@pytest.fixture(scope="module")
def timed(epoch_points):
    t = time.perf_counter()
    law = fit_law(epoch_points, "chinchilla", bootstrap=200, seed=0)
    return law, time.perf_counter() - t


@pytest.fixture(scope="module")
def law(timed):
    return timed[0]


def test_uses_the_240_points(epoch_points):
    assert len(epoch_points) == 240


def test_reproduces_the_published_estimate(law):
    p = law.params
    assert abs(p["E"] - EPOCH["E"]) < 1e-3
    assert abs(p["alpha"] - EPOCH["alpha"]) < 1e-3
    assert abs(p["beta"] - EPOCH["beta"]) < 1e-3
    assert abs(p["A"] / EPOCH["A"] - 1) < 5e-3
    assert abs(p["B"] / EPOCH["B"] - 1) < 5e-3


def test_objective_is_theirs_or_lower(law):
    assert law.objective <= EPOCH_OBJECTIVE * (1 + 1e-9)
    assert abs(law.objective / EPOCH_OBJECTIVE - 1) < 1e-6


def test_bootstrap_intervals_cover_the_estimate_and_match_theirs(law):
    # Epoch's 95% intervals from 4000 resamples: E (1.769, 1.871), alpha (0.317, 0.373),
    # beta (0.331, 0.415); ours use 200, so the ends agree only roughly.
    theirs = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}
    for k, v in law.params.items():
        lo, hi = law.ci[k]
        assert lo < v < hi, k
    for k, (lo, hi) in theirs.items():
        assert abs(law.ci[k][0] - lo) < 0.25 * (hi - lo), k
        assert abs(law.ci[k][1] - hi) < 0.25 * (hi - lo), k
    assert law.samples.shape == (200, 5)


def test_extrapolation_check_reports_the_held_out_largest_model(law):
    ex = law.extrapolation
    assert ex["by"] == "N" and ex["n_holdout"] >= 1
    assert ex["threshold"] > ex["fit_max"]
    assert ex["max_abs_rel_error"] < 0.05  # 1.4% measured; the point is real data
    assert len(ex["points"]) == ex["n_holdout"]


def test_full_fit_with_200_bootstraps_takes_seconds(timed):
    # fit + 200 bootstrap refits + the extrapolation refit: ~3 s measured on a shared
    # 2-core machine; the bound leaves room for a busy one
    assert timed[1] < 30


def test_seeded_bootstrap_is_deterministic(epoch_points):
    a = fit_law(epoch_points, "chinchilla", bootstrap=5, seed=3, extrapolation=False)
    b = fit_law(epoch_points, "chinchilla", bootstrap=5, seed=3, extrapolation=False)
    np.testing.assert_array_equal(a.samples, b.samples)
