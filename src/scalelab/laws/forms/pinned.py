"""Any form with some of its published parameters held at given values (:class:`Pinned`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scalelab.laws.forms.base import Array, Form
from scalelab.laws.forms.two_variable import Chinchilla


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
