"""Must show: Muennighoff et al. 2023's data-constrained fit (R_D*, R_N*).

Their notebook (huggingface/datablations utils/parametric_fit.ipynb) holds the base
parameters fixed (a, b, e, alpha = beta = 6.255414, 7.3049974, 0.6254804, 0.3526596),
minimises the sum of Huber(delta=1e-3) terms on log residuals over the 182 runs with
torch L-BFGS from R_D*, R_N* in linspace(0, 20, 4)^2 (the zeros give NaN and drop out),
and prints R_D* = 15.387756, R_N* = 5.309743 at objective 0.015825936570763588.
"""

import numpy as np
import pytest

from scalelab.laws import fit_law, published_law
from scalelab.laws.forms import R_D_STAR, R_N_STAR

THEIR_OBJECTIVE = 0.015825936570763588
THEIR_R = {R_D_STAR: 15.387756, R_N_STAR: 5.309743}


def test_our_objective_at_their_estimate_is_their_printed_minimum(datablations):
    law = fit_law(
        datablations,
        "data-constrained",
        base="muennighoff2023",
        bootstrap=0,
        init=THEIR_R,
        extrapolation=False,
    )
    # refining from their estimate stays there: it is a stationary point of our objective
    assert abs(law.params[R_D_STAR] - 15.388) < 0.05
    assert abs(law.params[R_N_STAR] - 5.310) < 0.02
    assert abs(law.objective / THEIR_OBJECTIVE - 1) < 1e-6  # they ran in float32


def test_their_starts_give_r_d_near_15_4_and_r_n_near_5_3(datablations):
    starts = [
        {R_D_STAR: rd, R_N_STAR: rn}
        for rd in np.linspace(0, 20, 4)[2:]  # 13.3, 20: the starts their run kept
        for rn in np.linspace(0, 20, 4)[1:]
    ]
    law = fit_law(
        datablations,
        "data-constrained",
        base="muennighoff2023",
        bootstrap=0,
        init=starts,
        extrapolation=False,
    )
    assert abs(law.params[R_D_STAR] - 15.4) < 0.1
    assert abs(law.params[R_N_STAR] - 5.3) < 0.05
    for k in ("E", "A", "B", "alpha", "beta"):
        assert law.params[k] == pytest.approx(published_law("muennighoff2023").params[k])


def test_global_search_finds_a_lower_objective_and_a_wide_interval(datablations):
    """Searched more widely, the same objective has a lower minimum at a larger R_D*: the
    runs pin R_D* down only weakly, which the bootstrap interval shows."""
    law = fit_law(datablations, "data-constrained", base="muennighoff2023", bootstrap=40)
    assert law.objective < THEIR_OBJECTIVE
    lo, hi = law.ci[R_D_STAR]
    assert lo < 15.4 < hi and hi / lo > 5
    assert set(law.ci) == {R_D_STAR, R_N_STAR}  # the base is fixed, not estimated
    assert law.fixed == ("E", "A", "B", "alpha", "beta")


def test_fit_explains_the_runs_as_well_as_theirs(datablations):
    """R^2 of the published law on these runs is 0.7722 (their notebook); ours is >= that."""
    y = datablations["loss"].to_numpy()
    cols = {k: datablations[k].to_numpy() for k in ("N", "D", "unique_tokens")}

    def r2(pred):
        return 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)

    assert r2(published_law("muennighoff2023").predict(**cols)) == pytest.approx(0.7722, abs=1e-4)
    law = fit_law(
        datablations, "data-constrained", base="muennighoff2023", bootstrap=0, extrapolation=False
    )
    assert r2(law.predict(**cols)) >= 0.7722
