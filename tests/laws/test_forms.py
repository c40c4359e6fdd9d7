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
    "chinchilla-tied": (None, {}, np.array([6.0, 7.5, 0.6, 0.34])),
    "overtrain": (None, {}, np.array([6.3, 7.8, 0.6, 0.17])),
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


def test_tied_is_chinchilla_with_beta_equal_to_alpha():
    p = {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.33}
    got = make_form("chinchilla-tied").predict(p, {"N": N, "D": D})
    want = make_form("chinchilla").predict({**p, "beta": 0.33}, {"N": N, "D": D})
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_overtrain_is_gadre_eq4_and_equals_tied_when_c_is_6nd():
    from scalelab.laws.forms import as_chinchilla

    p = {"E": 1.8, "a": 600.0, "b": 1900.0, "eta": 0.16}
    cols = {"N": N, "D": D, "C": 6 * N * D}
    M, C = D / N, 6 * N * D
    want = 1.8 + (600.0 * M**0.16 + 1900.0 * M**-0.16) * C**-0.16
    np.testing.assert_allclose(make_form("overtrain").predict(p, cols), want, rtol=1e-12)
    # C defaults to 6ND, and the Chinchilla parameters it maps to predict the same
    np.testing.assert_allclose(make_form("overtrain").predict(p, {"N": N, "D": D}), want)
    ch = as_chinchilla("overtrain", p)
    assert ch["alpha"] == ch["beta"] == 0.32
    np.testing.assert_allclose(make_form("chinchilla").predict(ch, cols), want, rtol=1e-12)
    # another compute count (e.g. with attention FLOPs) moves the prediction
    other = make_form("overtrain").predict(p, {**cols, "C": 1.5 * C})
    assert np.all(other < want)


@pytest.mark.parametrize(
    ("name", "fixed", "theta"),
    [
        ("chinchilla", {"E": 1.69}, np.array([6.0, 7.5, 0.34, 0.37])),
        ("chinchilla", {"alpha": 0.3, "B": 410.0}, np.array([6.0, 0.6, 0.37])),
        ("overtrain", {"eta": 0.15}, np.array([6.3, 7.8, 0.6])),
        ("kaplan", {"alpha_D": 0.095}, np.array([32.0, 31.0, 0.076])),
    ],
)
def test_pinned_form_drops_the_fixed_coordinates(name, fixed, theta):
    form = make_form(name, fixed=fixed)
    assert len(form.internal) == len(make_form(name).internal) - len(fixed)
    assert form.free == tuple(k for k in form.public if k not in fixed)
    pub = dict(zip(form.public, form.to_public(theta), strict=True))
    for k, v in fixed.items():
        assert pub[k] == v  # exactly, not exp(log(v))
    np.testing.assert_allclose(form.from_public(pub), theta, rtol=1e-12)
    feats = form.features(_cols(None))
    _, jac = form.log_model_grad(theta, feats)
    assert jac.shape == (len(N), len(theta))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        fd = (form.log_model(up[None], feats)[0] - form.log_model(dn[None], feats)[0]) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-5, atol=1e-8)
    full = make_form(name).predict(pub, {"N": N, "D": D, "C": 6 * N * D})
    np.testing.assert_allclose(form.predict(pub, {"N": N, "D": D, "C": 6 * N * D}), full)
    assert len(np.unique(form.grid(), axis=0)) == len(form.grid())
