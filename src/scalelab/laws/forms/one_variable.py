"""Laws of one variable x (N, D or C): the power law with an irreducible term, the
broken power law (Caballero et al. 2023) and the straight line in log-log space that
Tay et al. 2022 report per architecture."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalelab.laws.forms.base import Array, Form, _grid, _lse, _sub


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
