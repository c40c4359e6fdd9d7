"""The base class of every functional form, :class:`Form`, and the helpers the forms share;
the forms are written in log space for robust fitting.

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
