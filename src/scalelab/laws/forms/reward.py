"""Laws of reward against the policy's distance from its start: Gao, Schulman & Hilton
2022's best-of-n and RL forms (reward model over-optimisation)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalelab.laws.forms.base import Array, Form


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
