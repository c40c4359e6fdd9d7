"""Laws of model size N and data D: Chinchilla (Hoffmann et al. 2022) with its tied variant,
the over-training form of Gadre et al. 2024, and Kaplan et al. 2020's eq. 1.5; and
:func:`as_chinchilla`, the Chinchilla parameters equal to a tied or over-training law."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalelab.laws.forms.base import Array, Form, _grid, _lse, _sub


@dataclass(frozen=True)
class Chinchilla(Form):
    """L = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2 and sec. D.2)."""

    name: str = "chinchilla"
    inputs: tuple[str, ...] = ("N", "D")
    internal: tuple[str, ...] = ("a", "b", "e", "alpha", "beta")
    public: tuple[str, ...] = ("E", "A", "B", "alpha", "beta")
    formula: str = "L = E + A / N^alpha + B / D^beta"

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lN": np.log(cols["N"]), "lD": np.log(cols["D"])}

    def _terms(self, theta: Array, f: Mapping[str, Array]) -> Array:
        a, b, e, al, be = (_sub(theta, i) for i in range(5))
        e_term = np.broadcast_to(e, (theta.shape[0], f["lN"].shape[0]))
        return np.stack([a - al * f["lN"], b - be * f["lD"], e_term])

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return _lse(self._terms(theta, feats))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w = _lse(self._terms(theta[None, :], feats))
        w1, w2, w3 = w[0, 0], w[1, 0], w[2, 0]
        jac = np.stack([w1, w2, w3, -w1 * feats["lN"], -w2 * feats["lD"]], axis=1)
        return val[0], jac

    def to_public(self, theta: Array) -> Array:
        a, b, e, al, be = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(e), np.exp(a), np.exp(b), al, be], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        p = params
        # an E that underflowed to 0 in exp() maps back to a very negative log, not -inf
        lg = [float(np.log(max(p[k], 1e-300))) for k in ("A", "B", "E")]
        return np.array([*lg, p["alpha"], p["beta"]], dtype=float)

    def grid(self) -> Array:
        # Hoffmann et al. 2022, sec. D.2 (as run by Besiroglu et al. 2024): 4500 starts
        g = _grid(
            np.arange(0, 30, 5.0),  # a
            np.arange(0, 30, 5.0),  # b
            np.arange(-1, 1.5, 0.5),  # e
            np.arange(0, 2.5, 0.5),  # alpha
            np.arange(0, 2.5, 0.5),  # beta
        )
        return g


@dataclass(frozen=True)
class ChinchillaTied(Form):
    """L = E + A / N^alpha + B / D^alpha: Chinchilla's form with one exponent for N and D.

    Muennighoff et al. 2023 (sec. 3, their fitted alpha and beta are within 0.02 of each
    other) and Gadre et al. 2024 (eq. 3) assume alpha = beta; a parameter fewer makes the
    fit less free to bend where the data are sparse, which often extrapolates better.
    Log-sum-exp parametrisation as Hoffmann et al. 2022, sec. D.2.
    """

    name: str = "chinchilla-tied"
    inputs: tuple[str, ...] = ("N", "D")
    internal: tuple[str, ...] = ("a", "b", "e", "alpha")
    public: tuple[str, ...] = ("E", "A", "B", "alpha")
    formula: str = "L = E + A / N^alpha + B / D^alpha"

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lN": np.log(cols["N"]), "lD": np.log(cols["D"])}

    def _terms(self, theta: Array, f: Mapping[str, Array]) -> Array:
        a, b, e, al = (_sub(theta, i) for i in range(4))
        e_term = np.broadcast_to(e, (theta.shape[0], f["lN"].shape[0]))
        return np.stack([a - al * f["lN"], b - al * f["lD"], e_term])

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return _lse(self._terms(theta, feats))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w = _lse(self._terms(theta[None, :], feats))
        w1, w2, w3 = w[0, 0], w[1, 0], w[2, 0]
        d_al = -w1 * feats["lN"] - w2 * feats["lD"]
        return val[0], np.stack([w1, w2, w3, d_al], axis=1)

    def to_public(self, theta: Array) -> Array:
        a, b, e, al = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(e), np.exp(a), np.exp(b), al], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        lg = [float(np.log(max(params[k], 1e-300))) for k in ("A", "B", "E")]
        return np.array([*lg, params["alpha"]], dtype=float)

    def grid(self) -> Array:
        # the Hoffmann et al. grid (sec. D.2) without its beta axis: 900 starts
        return _grid(
            np.arange(0, 30, 5.0),
            np.arange(0, 30, 5.0),
            np.arange(-1, 1.5, 0.5),
            np.arange(0, 2.5, 0.5),
        )


@dataclass(frozen=True)
class Overtrain(Form):
    """Gadre et al. 2024, eq. 4: loss as a function of compute C and the token multiplier
    M = D / N (tokens per parameter),

        L(C, M) = E + (a M^eta + b M^-eta) C^-eta.

    It is their eq. 3 (Chinchilla with alpha = beta) rewritten with N = sqrt(C / 6M),
    D = sqrt(C M / 6): eta = alpha / 2, a = A 6^eta, b = B 6^eta. For fixed M the reducible
    loss is a power law in C with the same exponent eta at every M, which is what makes
    over-trained runs (large M) predictable from runs at other M. When the points' C is
    6ND the predictions equal ``chinchilla-tied``'s; with another C (one that counts
    attention, or embeddings) they differ. In log space:
    log L = LSE(log a + eta (log M - log C), log b - eta (log M + log C), log E).
    """

    name: str = "overtrain"
    inputs: tuple[str, ...] = ("C", "N", "D")
    internal: tuple[str, ...] = ("la", "lb", "e", "eta")
    public: tuple[str, ...] = ("E", "a", "b", "eta")
    formula: str = "L = E + (a M^eta + b M^-eta) C^-eta,  M = D / N"

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        n, d = np.asarray(cols["N"], dtype=float), np.asarray(cols["D"], dtype=float)
        c = np.asarray(cols["C"], dtype=float) if "C" in cols else 6.0 * n * d
        lm, lc = np.log(d / n), np.log(c)
        return {"up": lm - lc, "down": -lm - lc}

    def _terms(self, theta: Array, f: Mapping[str, Array]) -> Array:
        la, lb, e, eta = (_sub(theta, i) for i in range(4))
        e_term = np.broadcast_to(e, (theta.shape[0], f["up"].shape[0]))
        return np.stack([la + eta * f["up"], lb + eta * f["down"], e_term])

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return _lse(self._terms(theta, feats))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w = _lse(self._terms(theta[None, :], feats))
        w1, w2, w3 = w[0, 0], w[1, 0], w[2, 0]
        d_eta = w1 * feats["up"] + w2 * feats["down"]
        return val[0], np.stack([w1, w2, w3, d_eta], axis=1)

    def to_public(self, theta: Array) -> Array:
        la, lb, e, eta = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(e), np.exp(la), np.exp(lb), eta], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        lg = [float(np.log(max(params[k], 1e-300))) for k in ("a", "b", "E")]
        return np.array([*lg, params["eta"]], dtype=float)

    def grid(self) -> Array:
        # the tied grid mapped through eta = alpha / 2, log a = log A + eta log 6
        return _grid(
            np.arange(0, 30, 5.0),
            np.arange(0, 30, 5.0),
            np.arange(-1, 1.5, 0.5),
            np.arange(0, 1.25, 0.25),
        )


@dataclass(frozen=True)
class Kaplan(Form):
    """L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D (Kaplan et al. 2020, eq. 1.5).

    In log space: log L = alpha_D LSE(r (n_c - log N), d_c - log D), r = alpha_N / alpha_D,
    n_c = log N_c, d_c = log D_c.
    """

    name: str = "kaplan"
    inputs: tuple[str, ...] = ("N", "D")
    internal: tuple[str, ...] = ("n_c", "d_c", "alpha_N", "alpha_D")
    public: tuple[str, ...] = ("N_c", "D_c", "alpha_N", "alpha_D")
    formula: str = "L = ((N_c / N)^(alpha_N / alpha_D) + D_c / D)^alpha_D"

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lN": np.log(cols["N"]), "lD": np.log(cols["D"])}

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        nc, dc, an, ad = (_sub(theta, i) for i in range(4))
        with np.errstate(divide="ignore", invalid="ignore"):
            u1 = (an / ad) * (nc - feats["lN"])
        u2 = np.broadcast_to(dc - feats["lD"], u1.shape)
        return ad * _lse(np.stack([u1, u2]))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        nc, dc, an, ad = theta
        u1 = (an / ad) * (nc - feats["lN"])
        s, w = _lse(np.stack([u1, dc - feats["lD"]]))
        w1, w2 = w
        jac = np.stack([w1 * an, w2 * ad, w1 * (nc - feats["lN"]), s - w1 * u1], axis=1)
        return ad * s, jac

    def to_public(self, theta: Array) -> Array:
        nc, dc, an, ad = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(nc), np.exp(dc), an, ad], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        p = params
        return np.array(
            [np.log(p["N_c"]), np.log(p["D_c"]), p["alpha_N"], p["alpha_D"]], dtype=float
        )

    def grid(self) -> Array:
        # alpha_D = 0 is degenerate (L = 1); start from small positive exponents
        return _grid(
            np.arange(5.0, 45.0, 5.0),
            np.arange(5.0, 45.0, 5.0),
            np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.8]),
            np.array([0.02, 0.05, 0.1, 0.2, 0.4, 0.8]),
        )


def as_chinchilla(form: str, params: Mapping[str, float]) -> dict[str, float]:
    """The Chinchilla parameters (E, A, B, alpha, beta) equal to a tied or over-training law
    when C = 6ND: tied has beta = alpha; Gadre et al.'s eq. 4 has alpha = beta = 2 eta,
    A = a / 6^eta, B = b / 6^eta (see :class:`Overtrain`)."""
    if form == "chinchilla-tied":
        return {**{k: float(params[k]) for k in ("E", "A", "B", "alpha")}, "beta": params["alpha"]}
    if form == "overtrain":
        eta = float(params["eta"])
        k = 6.0**eta
        return {
            "E": float(params["E"]),
            "A": params["a"] / k,
            "B": params["b"] / k,
            "alpha": 2 * eta,
            "beta": 2 * eta,
        }
    return {k: float(params[k]) for k in ("E", "A", "B", "alpha", "beta")}
