"""Functional forms of scaling laws, written in log space for robust fitting.

Every form predicts ``log L`` from a few input columns and an internal parameter
vector ``theta`` chosen so the optimisation is well conditioned (log-coefficients,
exponents as they are). Each form gives

* ``log_model(theta[K, P], feats) -> [K, n]``: vectorised over K parameter vectors,
  so a whole grid of initialisations is scored in one NumPy call;
* ``log_model_grad(theta[P], feats) -> (f[n], J[n, P])``: the analytic Jacobian
  of ``log L`` with respect to ``theta``, for L-BFGS;
* ``to_public`` / ``from_public``: between ``theta`` and the published parameter
  names (``E``, ``A``, ``B``, ``alpha``, ``beta`` for Chinchilla);
* ``grid``: the initialisations scored before refinement.

The log-sum-exp parametrisation follows Hoffmann et al. 2022, sec. D.2:
``log L = LSE(a - alpha log N, b - beta log D, e)`` with ``A = e^a``, ``B = e^b``,
``E = e^e``, which keeps every coefficient positive without bounds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

# the published names of the extra parameters of the data-constrained law
R_D_STAR = "R_D_star"
R_N_STAR = "R_N_star"


def _lse(terms: Array, axis: int = 0) -> tuple[Array, Array]:
    """Stable log-sum-exp over ``axis`` and the softmax weights (its gradient)."""
    m = np.max(terms, axis=axis, keepdims=True)
    z = np.exp(terms - m)
    s = np.sum(z, axis=axis, keepdims=True)
    return np.squeeze(m + np.log(s), axis=axis), z / s


def _grid(*axes: Any) -> Array:
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


@dataclass(frozen=True)
class Form:
    """A functional form L(inputs; params); subclasses fill in the maths."""

    name: str = ""
    inputs: tuple[str, ...] = ()  # DataFrame columns the form reads
    internal: tuple[str, ...] = ()  # names of theta's entries
    public: tuple[str, ...] = ()  # names of the published parameters
    formula: str = ""
    fixed: Mapping[str, float] = field(default_factory=dict)  # public params held fixed

    # -- to implement ------------------------------------------------------------------------
    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        """Precompute what log_model needs from the input columns (logs, ratios)."""
        raise NotImplementedError

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        raise NotImplementedError

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        raise NotImplementedError

    def to_public(self, theta: Array) -> Array:
        """theta[..., P] -> public values[..., len(public)] (fixed ones included)."""
        raise NotImplementedError

    def from_public(self, params: Mapping[str, float]) -> Array:
        raise NotImplementedError

    def grid(self) -> Array:
        raise NotImplementedError

    def grid_for(self, feats: Mapping[str, Array]) -> Array:
        """The initialisations for these data (most forms: a fixed grid)."""
        return self.grid()

    # -- shared ------------------------------------------------------------------------------
    @property
    def free(self) -> tuple[str, ...]:
        """The public parameters a fit estimates (those not held fixed)."""
        return tuple(p for p in self.public if p not in self.fixed)

    def predict(self, params: Mapping[str, float], cols: Mapping[str, Array]) -> Array:
        theta = self.from_public(params)
        return np.exp(self.log_model(theta[None, :], self.features(cols))[0])


def _sub(theta: Array, i: int) -> Array:
    """Column i of theta[K, P] shaped to broadcast against points: [K, 1]."""
    return theta[:, i : i + 1]


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
class Power(Form):
    """L = E + A / x^alpha for one variable x in {N, D, C} (Kaplan et al. 2020, eq. 1.1-1.3,
    with the irreducible term of Henighan et al. 2020)."""

    name: str = "power"
    x: str = "N"
    internal: tuple[str, ...] = ("a", "e", "alpha")
    public: tuple[str, ...] = ("E", "A", "alpha")

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", (self.x,))
        object.__setattr__(self, "formula", f"L = E + A / {self.x}^alpha")

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lx": np.log(cols[self.x])}

    def _terms(self, theta: Array, f: Mapping[str, Array]) -> Array:
        a, e, al = (_sub(theta, i) for i in range(3))
        return np.stack([a - al * f["lx"], np.broadcast_to(e, (theta.shape[0], f["lx"].shape[0]))])

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return _lse(self._terms(theta, feats))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        val, w = _lse(self._terms(theta[None, :], feats))
        w1, w2 = w[0, 0], w[1, 0]
        return val[0], np.stack([w1, w2, -w1 * feats["lx"]], axis=1)

    def to_public(self, theta: Array) -> Array:
        a, e, al = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(e), np.exp(a), al], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        return np.array([np.log(params["A"]), np.log(params["E"]), params["alpha"]], dtype=float)

    def grid(self) -> Array:
        return _grid(np.arange(0, 30, 2.5), np.arange(-2, 2.5, 0.5), np.arange(0, 2.05, 0.1))


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


@dataclass(frozen=True)
class BrokenPower(Form):
    """One-break broken neural scaling law (Caballero et al. 2022, eq. 1 with n = 1):
    L = a + b x^-c0 (1 + (x / d1)^(1 / f1))^(-c1 f1).

    In log space: log L = LSE(log a, log b - c0 log x - c1 f1 softplus((log x - log d1) / f1)),
    with theta = (log a, log b, c0, c1, log d1, log f1).
    """

    name: str = "bnsl"
    x: str = "N"
    internal: tuple[str, ...] = ("la", "lb", "c0", "c1", "ld1", "lf1")
    public: tuple[str, ...] = ("a", "b", "c0", "c1", "d1", "f1")
    formula: str = "L = a + b x^-c0 (1 + (x / d1)^(1 / f1))^(-c1 f1)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", (self.x,))
        object.__setattr__(
            self, "formula", f"L = a + b {self.x}^-c0 (1 + ({self.x} / d1)^(1 / f1))^(-c1 f1)"
        )

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lx": np.log(cols[self.x])}

    @staticmethod
    def _parts(theta: Array, lx: Array) -> tuple[Array, ...]:
        la, lb, c0, c1, ld, lf = (theta[..., i : i + 1] for i in range(6))
        f1 = np.exp(lf)
        s = (lx - ld) / f1
        sp = np.logaddexp(0.0, s)  # softplus, stable
        t2 = lb - c0 * lx - c1 * f1 * sp
        return la, t2, c1, f1, s, sp

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        la, t2, *_ = self._parts(theta, feats["lx"])
        return _lse(np.stack([np.broadcast_to(la, t2.shape), t2]))[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        lx = feats["lx"]
        la, t2, c1, f1, s, sp = self._parts(theta[None, :], lx)
        val, w = _lse(np.stack([np.broadcast_to(la, t2.shape), t2]))
        w1, w2 = w[0, 0], w[1, 0]
        sig = 0.5 * (1.0 + np.tanh(0.5 * s[0]))  # logistic, stable
        c1, f1, s, sp = c1[0], f1[0], s[0], sp[0]
        jac = np.stack(
            [w1, w2, -w2 * lx, -w2 * f1 * sp, w2 * c1 * sig, -w2 * c1 * f1 * (sp - s * sig)],
            axis=1,
        )
        return val[0], jac

    def to_public(self, theta: Array) -> Array:
        la, lb, c0, c1, ld, lf = np.moveaxis(theta, -1, 0)
        return np.stack([np.exp(la), np.exp(lb), c0, c1, np.exp(ld), np.exp(lf)], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        p = params
        return np.array(
            [np.log(p["a"]), np.log(p["b"]), p["c0"], p["c1"], np.log(p["d1"]), np.log(p["f1"])],
            dtype=float,
        )

    def grid(self) -> Array:
        return self.grid_for({"lx": np.log(np.array([1.0, 1e6]))})

    def grid_for(self, feats: Mapping[str, Array]) -> Array:
        # the break is searched inside the data's own range of x; the other axes span
        # the shapes Caballero et al. grid over (their script: scipy.optimize.brute)
        lx = feats["lx"]
        return _grid(
            np.array([-6.0, -3.0, -1.0, 0.0, 1.0]),  # log a
            np.array([-2.0, 0.0, 2.0, 5.0]),  # log b
            np.array([0.0, 0.1, 0.3, 0.6]),  # c0
            np.array([0.0, 0.5, 1.0, 3.0]),  # c1
            np.quantile(lx, [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]),  # log d1
            np.log(np.array([0.05, 0.25, 1.0])),  # log f1
        )


@dataclass(frozen=True)
class DataConstrained(Form):
    """Muennighoff et al. 2023, eq. 5 (data-constrained scaling), with the base Chinchilla
    parameters held fixed as in their fit (utils/parametric_fit.ipynb):

        L = E + A / N'^alpha + B / D'^beta
        D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),   R_D = max(D / U_D - 1, 0)
        N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),   R_N = max(N / U_N - 1, 0)
        U_N = min(N, N_opt(U_D))

    where U_D = min(unique_tokens, D) are the unique tokens seen and N_opt(U_D) is the compute-optimal model size of
    the base law for the compute at which U_D is the optimal data (their notebook:
    ``min(optimal_N(D_to_C(U)), N)``). theta = (log R_D*, log R_N*).
    """

    name: str = "data-constrained"
    inputs: tuple[str, ...] = ("N", "D", "unique_tokens")
    internal: tuple[str, ...] = ("log_R_D_star", "log_R_N_star")
    public: tuple[str, ...] = ("E", "A", "B", "alpha", "beta", R_D_STAR, R_N_STAR)
    formula: str = (
        "L = E + A / N'^alpha + B / D'^beta, D' = U (1 + R_D* (1 - exp(-R_D / R_D*))), "
        "N' = U_N (1 + R_N* (1 - exp(-R_N / R_N*)))"
    )

    def base(self) -> tuple[float, float, float, float, float]:
        f = self.fixed
        return f["E"], f["A"], f["B"], f["alpha"], f["beta"]

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        _, A, B, al, be = self.base()
        N, D, U = (np.asarray(cols[k], dtype=float) for k in ("N", "D", "unique_tokens"))
        # U_D is the unique data *seen*: a run shorter than one epoch sees D of them
        U = np.minimum(U, D)
        un = np.minimum(N, optimal_n_for_data(U, A, B, al, be))
        return {
            "lUD": np.log(U),
            "lUN": np.log(un),
            "RD": np.maximum(D / U - 1.0, 0.0),
            "RN": np.maximum(N / un - 1.0, 0.0),
        }

    @staticmethod
    def _eff(r: Array, rstar: Array) -> tuple[Array, Array]:
        """log(1 + R* (1 - exp(-R / R*))) and its derivative w.r.t. log R*."""
        x = np.exp(-r / rstar)
        g = rstar * (1.0 - x)
        dg = rstar * ((1.0 - x) - (r / rstar) * x)  # d g / d log R*
        return np.log1p(g), dg / (1.0 + g)

    def _terms(self, theta: Array, f: Mapping[str, Array]) -> tuple[Array, ...]:
        E, A, B, al, be = self.base()
        rd, rn = np.exp(theta[:, 0:1]), np.exp(theta[:, 1:2])
        ed, ded = self._eff(f["RD"], rd)
        en, den = self._eff(f["RN"], rn)
        t1 = np.log(A) - al * (f["lUN"] + en)
        t2 = np.log(B) - be * (f["lUD"] + ed)
        t3 = np.broadcast_to(np.log(E), t1.shape)
        return np.stack([t1, t2, t3]), ded, den

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return _lse(self._terms(theta, feats)[0])[0]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        _, _, _, al, be = self.base()
        terms, ded, den = self._terms(theta[None, :], feats)
        val, w = _lse(terms)
        jac = np.stack([-be * w[1, 0] * ded[0], -al * w[0, 0] * den[0]], axis=1)
        return val[0], jac

    def to_public(self, theta: Array) -> Array:
        theta = np.asarray(theta, dtype=float)
        base = np.broadcast_to(np.array(self.base()), (*theta.shape[:-1], 5))
        return np.concatenate([base, np.exp(theta)], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        return np.log(np.array([params[R_D_STAR], params[R_N_STAR]], dtype=float))

    def grid(self) -> Array:
        return _grid(np.log([0.5, 2.0, 7.0, 20.0, 60.0]), np.log([0.5, 2.0, 7.0, 20.0, 60.0]))

    def predict(self, params: Mapping[str, float], cols: Mapping[str, Array]) -> Array:
        form = DataConstrained(fixed={k: params[k] for k in ("E", "A", "B", "alpha", "beta")})
        theta = form.from_public(params)
        return np.exp(form.log_model(theta[None, :], form.features(cols))[0])


@dataclass(frozen=True)
class Slope(Form):
    """The straight line in log-log space, log L = log k - alpha log x, as Tay et al. 2022
    report the scaling of each architecture (loss against compute C or parameters N).
    Fitted by ordinary least squares on the logs (closed form)."""

    name: str = "slope"
    x: str = "C"
    internal: tuple[str, ...] = ("log_k", "alpha")
    public: tuple[str, ...] = ("k", "alpha")

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", (self.x,))
        object.__setattr__(self, "formula", f"log L = log k - alpha log {self.x}")

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"lx": np.log(cols[self.x])}

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return theta[:, 0:1] - theta[:, 1:2] * feats["lx"]

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        lx = feats["lx"]
        return theta[0] - theta[1] * lx, np.stack([np.ones_like(lx), -lx], axis=1)

    def to_public(self, theta: Array) -> Array:
        lk, al = np.moveaxis(np.asarray(theta, dtype=float), -1, 0)
        return np.stack([np.exp(lk), al], axis=-1)

    def from_public(self, params: Mapping[str, float]) -> Array:
        return np.array([np.log(params["k"]), params["alpha"]], dtype=float)

    def grid(self) -> Array:
        return np.zeros((1, 2))


@dataclass(frozen=True)
class Gao(Form):
    """Gao, Schulman & Hilton 2022 ("Scaling Laws for Reward Model Overoptimization", eq. 1
    and 2): the gold reward of a policy optimised against a proxy reward model, as a function
    of d = sqrt(KL(policy || initial policy)), the square root of the KL in nats:

    * best-of-n: R(d) = d (alpha - beta d), which peaks at d* = alpha / (2 beta);
    * RL:        R(d) = d (alpha - beta log d), which peaks at d* = exp(alpha / beta - 1).

    Gao et al. measure R from the initial policy's reward (R(0) := 0); here the form carries
    that reward as an intercept, R(d) = R0 + ..., so uncentred points fit as they are
    (``fix={"R0": 0}`` is the paper's form on centred rewards). Rewards may be negative, so
    unlike the laws of loss these are fitted in linear space, by least squares: the form is
    linear in (alpha, beta, R0), whose design matrix :meth:`design` gives.
    """

    inputs: tuple[str, ...] = ("kl",)
    internal: tuple[str, ...] = ("alpha", "beta", "R0")
    public: tuple[str, ...] = ("alpha", "beta", "R0")
    target: str = "reward"  # the column fitted: a reward, not a loss

    @staticmethod
    def d_of(cols: Mapping[str, Array]) -> Array:
        return np.sqrt(np.maximum(np.asarray(cols["kl"], dtype=float), 0.0))

    def shape(self, d: Array) -> Array:
        """The column multiplying -beta (d^2 for best-of-n, d log d for RL)."""
        raise NotImplementedError

    def design(self, cols: Mapping[str, Array]) -> Array:
        """X [n, 3] with R = X @ (alpha, beta, R0)."""
        d = self.d_of(cols)
        return np.stack([d, -self.shape(d), np.ones_like(d)], axis=1)

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return {"X": self.design(cols)}

    def to_public(self, theta: Array) -> Array:
        out = np.array(theta, dtype=float)
        for k, v in self.fixed.items():
            out[..., self.public.index(k)] = v
        return out

    def from_public(self, params: Mapping[str, float]) -> Array:
        return np.array([float(params[k]) for k in self.public], dtype=float)

    def grid(self) -> Array:
        return np.zeros((1, 3))

    def predict(self, params: Mapping[str, float], cols: Mapping[str, Array]) -> Array:
        theta = self.from_public({**params, **self.fixed})
        return np.asarray(self.design(cols) @ theta)

    def peak(self, alpha: Array | float, beta: Array | float) -> Array:
        """The d at which R(d) is largest (inf where beta <= 0: no peak)."""
        raise NotImplementedError


@dataclass(frozen=True)
class GaoBestOfN(Gao):
    name: str = "gao-bon"
    formula: str = "R = R0 + d (alpha - beta d),  d = sqrt(KL)"

    def shape(self, d: Array) -> Array:
        return d * d

    def peak(self, alpha: Array | float, beta: Array | float) -> Array:
        a, b = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / (2.0 * b), np.inf)


@dataclass(frozen=True)
class GaoRL(Gao):
    name: str = "gao-rl"
    formula: str = "R = R0 + d (alpha - beta log d),  d = sqrt(KL)"

    def shape(self, d: Array) -> Array:
        # d log d -> 0 as d -> 0: the policy at the initial one has R = R0
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)

    def peak(self, alpha: Array | float, beta: Array | float) -> Array:
        # dR/dd = alpha - beta (log d + 1) = 0
        a, b = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.where(b > 0, np.exp(a / b - 1.0), np.inf)


GAO_FORMS = ("gao-bon", "gao-rl")


def optimal_n_for_data(U: Array | float, A: float, B: float, alpha: float, beta: float) -> Array:
    """N_opt at the compute for which U tokens are the compute-optimal data of the base law.

    From the closed form N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G,
    G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, eq. 4): eliminating C gives
    N_opt = G^((alpha+beta)/alpha) U^(beta/alpha).
    """
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    return np.asarray(G ** ((alpha + beta) / alpha) * np.asarray(U, dtype=float) ** (beta / alpha))


@dataclass(frozen=True)
class Pinned(Form):
    """Any form with some published parameters held at given values (``fixed``), e.g.
    Chinchilla's E set to a source's entropy rate or to another fit's value; the rest are
    fitted. theta holds only the free coordinates; the pinned ones are put back before the
    base form is evaluated, so the Jacobian is the base's with their columns dropped.

    Every form here maps each published parameter to one coordinate of theta (itself or
    its log); that coordinate is found by moving the parameter and seeing which one moves.
    """

    base: Form = field(default_factory=lambda: Chinchilla())
    # set in __post_init__: the coordinates of theta that are free and pinned, and the values
    _free: Any = field(init=False, repr=False, compare=False, default=None)
    _pin: Any = field(init=False, repr=False, compare=False, default=None)
    _pin_values: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        b = self.base
        unknown = [k for k in self.fixed if k not in b.public]
        if unknown:
            raise KeyError(", ".join(unknown))
        ref = dict.fromkeys(b.public, 1.5)
        theta0 = b.from_public(ref)
        pin: list[int] = []
        for k in self.fixed:
            moved = np.flatnonzero(b.from_public({**ref, k: 2.5}) != theta0)
            assert moved.size == 1, f"{b.name}: {k} is not one coordinate of theta"
            pin.append(int(moved[0]))
        free = [i for i in range(len(b.internal)) if i not in pin]
        at = b.from_public({**ref, **self.fixed})
        object.__setattr__(self, "_pin", np.array(pin, dtype=int))
        object.__setattr__(self, "_free", np.array(free, dtype=int))
        object.__setattr__(self, "_pin_values", at[pin])
        object.__setattr__(self, "name", b.name)
        object.__setattr__(self, "inputs", b.inputs)
        object.__setattr__(self, "internal", tuple(b.internal[i] for i in free))
        object.__setattr__(self, "public", b.public)
        object.__setattr__(self, "formula", b.formula)

    @property
    def x(self) -> str | None:
        return getattr(self.base, "x", None)

    def _full(self, theta: Array) -> Array:
        theta = np.asarray(theta, dtype=float)
        full = np.empty((*theta.shape[:-1], len(self.base.internal)))
        full[..., self._free] = theta
        full[..., self._pin] = self._pin_values
        return full

    def features(self, cols: Mapping[str, Array]) -> dict[str, Array]:
        return self.base.features(cols)

    def log_model(self, theta: Array, feats: Mapping[str, Array]) -> Array:
        return self.base.log_model(self._full(theta), feats)

    def log_model_grad(self, theta: Array, feats: Mapping[str, Array]) -> tuple[Array, Array]:
        val, jac = self.base.log_model_grad(self._full(theta), feats)
        return val, jac[:, self._free]

    def to_public(self, theta: Array) -> Array:
        out = np.array(self.base.to_public(self._full(theta)), dtype=float)
        for k, v in self.fixed.items():
            out[..., self.public.index(k)] = v  # exactly the value given, no exp(log v)
        return out

    def from_public(self, params: Mapping[str, float]) -> Array:
        return self.base.from_public({**params, **self.fixed})[self._free]

    def grid(self) -> Array:
        return np.unique(self.base.grid()[:, self._free], axis=0)

    def grid_for(self, feats: Mapping[str, Array]) -> Array:
        return np.unique(self.base.grid_for(feats)[:, self._free], axis=0)

    def predict(self, params: Mapping[str, float], cols: Mapping[str, Array]) -> Array:
        return self.base.predict({**params, **self.fixed}, cols)


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


FORMS = (
    "chinchilla",
    "chinchilla-tied",
    "overtrain",
    "kaplan",
    "power",
    "data-constrained",
    "bnsl",
    "slope",
    *GAO_FORMS,
)
FIXABLE = tuple(f for f in FORMS if f not in ("data-constrained", "slope"))


def make_form(name: str, *, x: str | None = None, fixed: Mapping[str, float] | None = None) -> Form:
    """The form called ``name``; ``x`` picks the variable of one-variable forms; ``fixed``
    holds published parameters at given values (for data-constrained: its base law)."""
    if name == "data-constrained":
        return DataConstrained(fixed=dict(fixed or {}))
    if name == "gao-bon":
        return GaoBestOfN(fixed=dict(fixed or {}))
    if name == "gao-rl":
        return GaoRL(fixed=dict(fixed or {}))
    base: Form
    if name == "chinchilla":
        base = Chinchilla()
    elif name == "chinchilla-tied":
        base = ChinchillaTied()
    elif name == "overtrain":
        base = Overtrain()
    elif name == "kaplan":
        base = Kaplan()
    elif name == "power":
        base = Power(x=x or "N")
    elif name == "bnsl":
        base = BrokenPower(x=x or "N")
    elif name == "slope":
        base = Slope(x=x or "C")
    else:
        raise KeyError(name)
    return Pinned(base=base, fixed=dict(fixed)) if fixed else base
