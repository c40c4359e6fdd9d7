"""Compute-optimal plans: the closed form, its inverse, presets, repetition."""

import math

import numpy as np
import pytest

from scalelab.laws import Law, PlanError, fit_law, plan, published_law
from scalelab.laws.plan import _numeric_optimum


def test_presets_carry_the_published_numbers():
    h = published_law("hoffmann2022").params
    # the paper prints these rounded (eq. 10)
    assert round(h["E"], 2) == 1.69 and round(h["A"], 1) == 406.4 and round(h["B"], 1) == 410.7
    assert round(h["alpha"], 2) == 0.34 and round(h["beta"], 2) == 0.28
    e = published_law("epoch2024").params
    assert round(e["A"], 2) == 482.01 and round(e["B"], 2) == 2085.43
    assert round(e["E"], 2) == 1.82 and round(e["alpha"], 4) == 0.3478
    m = published_law("muennighoff2023").params
    assert m["R_D_star"] == pytest.approx(15.387756) and m["R_N_star"] == pytest.approx(5.309743)
    for name in ("hoffmann2022", "epoch2024", "muennighoff2023", "kaplan2020"):
        assert published_law(name).source


def test_closed_form_is_the_minimum_along_6nd():
    law = published_law("hoffmann2022")
    C = 5.76e23
    p = plan(law, C)
    assert pytest.approx(C) == 6 * p.N * p.D
    n_num, _ = _numeric_optimum(lambda n, d: law.predict(N=n, D=d), C)
    assert pytest.approx(n_num, rel=1e-4) == p.N
    # and no neighbour along the constraint is lower
    for f in (0.9, 1.1):
        assert law.predict(N=p.N * f, D=p.D / f) > p.loss


def test_chinchilla_budget_gives_chinchilla_like_allocation():
    # Epoch's law puts Chinchilla's budget (5.76e23) at ~20 tokens per parameter
    p = plan("epoch2024", 5.76e23)
    assert 15 < p.tokens_per_param < 30
    assert 5e10 < p.N < 1.2e11


def test_inverse_round_trips():
    law = published_law("epoch2024")
    p = plan(law, 1e22)
    q = plan(law, target_loss=p.loss)
    assert q.compute == pytest.approx(1e22, rel=1e-6)
    assert pytest.approx(p.N, rel=1e-6) == q.N


def test_target_below_e_is_an_error():
    with pytest.raises(PlanError, match=r"irreducible loss E = 1\.69"):
        plan("hoffmann2022", target_loss=1.5)


def test_kaplan_plan_is_numeric_and_consistent():
    law = published_law("kaplan2020")
    p = plan(law, 1e21)
    assert pytest.approx(1e21) == 6 * p.N * p.D
    for f in (0.8, 1.25):
        assert law.predict(N=p.N * f, D=p.D / f) > p.loss
    q = plan(law, target_loss=p.loss)
    assert q.compute == pytest.approx(1e21, rel=1e-6)


def test_kaplan_preset_is_table_2s_fit_to_l_n_d():
    """Kaplan et al. 2020, Table 2, row "Fits to L(N, D)" (eq. 1.5), typed from the paper:
    alpha_N = 0.076, alpha_D = 0.103, N_c = 6.4e13, D_c = 1.8e13. (The one-variable fits,
    alpha_D = 0.095, N_c = 8.8e13, D_c = 5.4e13, are other rows and other equations.)"""
    law = published_law("kaplan2020")
    assert law.form == "kaplan"
    assert law.params == {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    # eq. 1.5 written out here, independently of scalelab.laws.forms
    n, d = 1e9, 2e10
    expected = ((6.4e13 / n) ** (0.076 / 0.103) + 1.8e13 / d) ** 0.103
    assert law.predict(N=n, D=d) == pytest.approx(expected, rel=1e-12)


def test_plan_with_kaplan_preset_is_the_brute_force_optimum():
    """`plan --law kaplan2020` at 1e21 FLOPs: the N minimising eq. 1.5 along C = 6ND, found
    here by a dense grid over N (no scalelab code): 6.2e9 parameters, 2.7e10 tokens."""
    c = 1e21
    n = np.geomspace(1e8, 1e11, 200_001)
    loss = ((6.4e13 / n) ** (0.076 / 0.103) + 1.8e13 / (c / (6 * n))) ** 0.103
    best = n[np.argmin(loss)]
    p = plan("kaplan2020", c)
    assert pytest.approx(best, rel=1e-3) == p.N
    assert p.loss == pytest.approx(loss.min(), rel=1e-9)
    assert pytest.approx(6.23e9, rel=1e-2) == p.N


def test_one_variable_law_cannot_plan():
    law = Law(form="power", params={"E": 1.0, "A": 10.0, "alpha": 0.1}, x="C")
    with pytest.raises(PlanError, match=r"needs a law of both N and D"):
        plan(law, 1e20)


def test_bad_inputs():
    with pytest.raises(PlanError, match=r"exactly one"):
        plan("epoch2024")
    with pytest.raises(PlanError, match=r"positive"):
        plan("epoch2024", -1.0)
    with pytest.raises(PlanError, match=r"unique_tokens"):
        plan("epoch2024", 1e21, unique_tokens=0)


def test_repetition_adjustment_and_warning():
    C = 1e24
    free = plan("epoch2024", C)
    U = free.D / 4  # the optimal D would need 4 epochs
    p = plan("epoch2024", C, unique_tokens=U)
    assert p.epochs == pytest.approx(4.0)
    c = p.constrained
    assert c is not None and c["R_D_star"] == pytest.approx(15.387756)
    assert 6 * c["N"] * c["D"] == pytest.approx(C)
    # repetition costs loss; the adjusted allocation is no worse than the naive one
    assert c["loss"] > free.loss
    assert c["loss"] <= c["loss_at_unconstrained_allocation"] + 1e-12
    assert any("exceeds" in w for w in p.warnings)
    # with enough unique tokens nothing changes
    assert plan("epoch2024", C, unique_tokens=free.D * 2).constrained is None


def test_extreme_repetition_warns_beyond_r_d_star():
    p = plan("muennighoff2023", 1e23, unique_tokens=1e9)
    assert p.constrained["epochs"] > 15.4
    assert any("beyond R_D*" in w for w in p.warnings)


def test_fitted_law_gives_intervals(synthetic):
    P = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    law = fit_law(synthetic(P, noise=0.01, seed=2), bootstrap=50)
    p = plan(law, 1e21)
    lo, hi = p.loss_interval
    assert lo < p.loss < hi
    assert p.N_interval[0] < p.N < p.N_interval[1]
    q = plan(law, target_loss=p.loss)
    assert q.compute_interval is not None and q.compute_interval[0] < 1e21 < q.compute_interval[1]
    d = p.to_dict()
    assert d["loss_interval"] == [lo, hi] and math.isfinite(d["compute"])
    assert np.isfinite(plan(law, 1e21, unique_tokens=1e9).constrained["loss_interval"]).all()


def test_optimum_without_an_interior_minimum_is_nan_not_complex():
    from scalelab.laws.plan import chinchilla_optimum

    n, d = chinchilla_optimum({"A": 400.0, "B": 400.0, "alpha": -0.1, "beta": 0.3}, 1e20)
    assert np.isnan(n) and np.isnan(d)


@pytest.mark.parametrize("form", ["chinchilla-tied", "overtrain"])
def test_tied_and_overtrain_laws_plan_as_their_chinchilla_equivalent(form):
    from scalelab.laws import Law
    from scalelab.laws.forms import as_chinchilla

    params = (
        {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.33}
        if form == "chinchilla-tied"
        else {"E": 1.8, "a": 900.0, "b": 2500.0, "eta": 0.17}
    )
    law = Law(form=form, params=params)
    twin = Law(form="chinchilla", params=as_chinchilla(form, params))
    got, want = plan(law, 1e22), plan(twin, 1e22)
    np.testing.assert_allclose([got.N, got.D], [want.N, want.D], rtol=1e-9)
    assert got.loss == pytest.approx(want.loss, rel=1e-12)
    # the optimum minimises this law's own loss along 6ND = C
    for f in (0.8, 1.25):
        assert law.predict(N=got.N * f, D=got.D / f) > got.loss
    back = plan(law, target_loss=got.loss)
    assert back.compute == pytest.approx(1e22, rel=1e-6)
    constrained = plan(law, 1e22, unique_tokens=got.D / 4)
    assert constrained.constrained["loss"] > got.loss
