"""The data-constrained law of Muennighoff et al. 2023 (eq. 5): Chinchilla with repeated
tokens and excess parameters worth less, and the names of its extra parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalelab.laws.forms.base import Array, Form, _grid, _lse

# the published names of the extra parameters of the data-constrained law
R_D_STAR = "R_D_star"
R_N_STAR = "R_N_star"


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


def optimal_n_for_data(U: Array | float, A: float, B: float, alpha: float, beta: float) -> Array:
    """N_opt at the compute for which U tokens are the compute-optimal data of the base law.

    From the closed form N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G,
    G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022, eq. 4): eliminating C gives
    N_opt = G^((alpha+beta)/alpha) U^(beta/alpha).
    """
    G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    return np.asarray(G ** ((alpha + beta) / alpha) * np.asarray(U, dtype=float) ** (beta / alpha))
