"""Every form's analytic Jacobian against central finite differences, and the
vectorised grid evaluation against the one-vector gradient path."""

import numpy as np
import pytest

from scalelab.laws.forms import make_form

RNG = np.random.default_rng(0)
N = np.geomspace(1e6, 1e10, 9)
D = np.geomspace(1e8, 3e11, 9)[::-1]
U = D / np.array([1, 1, 2, 3, 5, 8, 13, 21, 40])

CASES = {
    "chinchilla": (None, {}, np.array([6.0, 7.5, 0.6, 0.34, 0.37])),
    "power": ("N", {}, np.array([5.0, 0.5, 0.3])),
    "kaplan": (None, {}, np.array([32.0, 31.0, 0.076, 0.095])),
    "bnsl": ("N", {}, np.array([-1.0, 1.0, 0.1, 0.5, np.log(1e8), np.log(0.3)])),
    "slope": ("C", {}, np.array([3.0, 0.05])),
    "data-constrained": (
        None,
        {"E": 1.87, "A": 520.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35},
        np.log([15.0, 5.0]),
    ),
}


def _cols(x):
    return {"N": N, "D": D, "C": 6 * N * D, "unique_tokens": U}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jacobian_matches_finite_differences(name):
    x, fixed, theta = CASES[name]
    form = make_form(name, x=x, fixed=fixed)
    feats = form.features(_cols(x))
    f, jac = form.log_model_grad(theta, feats)
    assert jac.shape == (len(N), len(theta))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        fd = (form.log_model(up[None], feats)[0] - form.log_model(dn[None], feats)[0]) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-5, atol=1e-8, err_msg=form.internal[j])
    np.testing.assert_allclose(form.log_model(theta[None], feats)[0], f, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_public_round_trip_and_vectorised_rows(name):
    x, fixed, theta = CASES[name]
    form = make_form(name, x=x, fixed=fixed)
    pub = dict(zip(form.public, form.to_public(theta), strict=True))
    np.testing.assert_allclose(form.from_public(pub), theta, rtol=1e-12)
    thetas = theta[None] + 0.01 * RNG.standard_normal((4, len(theta)))
    feats = form.features(_cols(x))
    batch = form.log_model(thetas, feats)
    for k in range(4):
        np.testing.assert_allclose(batch[k], form.log_model_grad(thetas[k], feats)[0], rtol=1e-12)


def test_chinchilla_prediction_is_the_published_formula():
    form = make_form("chinchilla")
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    got = form.predict(p, {"N": N, "D": D})
    np.testing.assert_allclose(got, 1.69 + 406.4 / N**0.34 + 410.7 / D**0.28, rtol=1e-12)


def test_data_constrained_reduces_to_chinchilla_without_repetition():
    base = {"E": 1.87, "A": 520.0, "B": 1488.0, "alpha": 0.35, "beta": 0.35}
    dc = make_form("data-constrained", fixed=base)
    p = {**base, "R_D_star": 15.0, "R_N_star": 5.0}
    n = np.array([1e6, 1e7])  # small models: N <= N_opt(U), no excess parameters
    d = np.array([1e10, 2e10])
    got = dc.predict(p, {"N": n, "D": d, "unique_tokens": d})
    want = make_form("chinchilla").predict(base, {"N": n, "D": d})
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # repeated data is worth less than fresh data, and more than the unique data alone
    rep = dc.predict(p, {"N": n, "D": d, "unique_tokens": d / 4})
    once = make_form("chinchilla").predict(base, {"N": n, "D": d / 4})
    assert np.all(rep > want) and np.all(rep < once)
