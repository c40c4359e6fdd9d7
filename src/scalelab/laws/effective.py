"""Effective size: the N (or D) a plain run would need, under a fitted law, to reach a loss.

Every technique in scalelab (distillation, compression, data selection, ...) ends as a
point with a loss. Its headline is read off the plain ladder's law: solve
``law.predict(N_eff, D) = loss`` for ``N_eff`` (holding the technique's D), and report
the multiplier ``N_eff / N``. The same inversion in D gives ``effective_d``.

Both inversions are one-dimensional root finds in log space (the fitted forms are
monotone decreasing in N and in D). Two edges are reported as such, never as a huge or
negative number:

* a loss at or below the law's floor at that D (``lim N->inf L(N, D)``, which is
  ``E + B / D^beta`` for Chinchilla) is ``"unreachable"``: no plain model of any size
  reaches it with those tokens;
* a loss above the loss of a one-parameter model is ``"worse"``: nothing on the law is
  that bad.

A loss above the smallest ladder model's is simply a multiplier below 1.

The interval comes from the law's bootstrap refits: each refit is inverted in turn and
the percentile interval of the solutions is reported; a refit under which the loss is
unreachable counts as an infinitely large effective size, so the interval's upper end
is ``inf`` when more than the tail fraction of refits say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import brentq

from scalelab.errors import FitError
from scalelab.laws.forms import make_form
from scalelab.laws.law import Law

Status = Literal["ok", "unreachable", "worse"]

# The search range of the inversion: 1 to 1e300 parameters (or tokens). The law's value
# at 1e300 is its floor to double precision for any positive exponent above ~0.03.
_LOG_MIN = 0.0
_LOG_MAX = math.log(1e300)


@dataclass(frozen=True)
class Effective:
    """The effective N (or D) of one loss under one law.

    * ``variable``: ``"N"`` or ``"D"``.
    * ``value``: the point estimate (``nan`` unless ``status == "ok"``).
    * ``lo``, ``hi``: the bootstrap percentile interval (``None`` for a law without
      bootstrap samples; ``inf`` at the top when refits say unreachable).
    * ``status``: ``"ok"``, ``"unreachable"`` (loss at or below ``floor``) or ``"worse"``
      (loss above the law's one-parameter value).
    * ``floor``: the lowest loss any size reaches with the other variable held.
    * ``reference``: the technique's actual N (or D), when given; the multiplier is
      ``value / reference``.
    """

    variable: str
    loss: float
    value: float
    lo: float | None
    hi: float | None
    status: Status
    floor: float
    held: float
    reference: float | None = None
    level: float = 0.95

    @property
    def multiplier(self) -> float | None:
        if self.reference is None:
            return None
        if self.status == "unreachable":
            return math.inf
        return self.value / self.reference

    @property
    def multiplier_ci(self) -> tuple[float, float] | None:
        if self.reference is None or self.lo is None or self.hi is None:
            return None
        return self.lo / self.reference, self.hi / self.reference

    def describe(self) -> str:
        """One line: ``N_eff = 3.1e6 (x1.52, 95% CI x1.31-x1.80)``."""
        name = f"{self.variable}_eff"
        if self.status == "unreachable":
            other = "D" if self.variable == "N" else "N"
            return (
                f"{name}: loss {self.loss:.4f} is below the law's floor {self.floor:.4f} "
                f"at {other} = {self.held:.3g} (no plain size reaches it)"
            )
        if self.status == "worse":
            return f"{name}: loss {self.loss:.4f} is above anything the law predicts"
        out = f"{name} = {self.value:.3g}"
        if self.reference is not None:
            out += f" (x{self.multiplier:.3g}"
            ci = self.multiplier_ci
            if ci is not None:
                out += f", {100 * self.level:.0f}% CI x{ci[0]:.3g}-x{ci[1]:.3g}"
            out += ")"
        elif self.lo is not None and self.hi is not None:
            out += f" ({100 * self.level:.0f}% CI {self.lo:.3g}-{self.hi:.3g})"
        return out

    def to_dict(self) -> dict[str, object]:
        ci = self.multiplier_ci
        return {
            "variable": self.variable,
            "loss": self.loss,
            "value": self.value,
            "lo": self.lo,
            "hi": self.hi,
            "status": self.status,
            "floor": self.floor,
            "held": self.held,
            "reference": self.reference,
            "multiplier": self.multiplier,
            "multiplier_lo": None if ci is None else ci[0],
            "multiplier_hi": None if ci is None else ci[1],
        }


def _invert(
    law: Law, params: Mapping[str, float], variable: str, loss: float, held: float
) -> tuple[float, Status, float]:
    """Solve predict(variable = x, other = held) = loss for x under one parameter set."""
    form = make_form(law.form, x=law.x, fixed={k: params[k] for k in law.fixed})
    other = "D" if variable == "N" else "N"
    cols_other = {other: np.array([held])}
    if "unique_tokens" in form.inputs and variable == "N":
        cols_other["unique_tokens"] = np.array([held])

    def at(logx: float) -> float:
        cols = {variable: np.array([math.exp(logx)]), **cols_other}
        if "unique_tokens" in form.inputs and variable == "D":
            cols["unique_tokens"] = cols["D"]  # no repetition
        cols = {k: v for k, v in cols.items() if k in form.inputs}
        return float(form.predict(params, cols)[0])

    floor, top = at(_LOG_MAX), at(_LOG_MIN)
    if not loss > floor:
        return math.nan, "unreachable", floor
    if loss > top:
        return math.nan, "worse", floor
    root = brentq(lambda lx: at(lx) - loss, _LOG_MIN, _LOG_MAX, xtol=1e-12, rtol=1e-12)
    return math.exp(root), "ok", floor


def _effective(
    law: Law,
    variable: str,
    loss: float,
    held: float,
    reference: float | None,
    level: float | None,
) -> Effective:
    if variable not in law.spec.inputs:
        raise FitError(
            f"the {law.name or law.form} law does not depend on {variable} "
            f"(inputs: {', '.join(law.spec.inputs)}): fit a law of N and D (chinchilla, kaplan)"
        )
    if not (math.isfinite(loss) and loss > 0):
        raise FitError(f"the loss to invert must be a positive number, got {loss}")
    if not (math.isfinite(held) and held > 0):
        other = "D" if variable == "N" else "N"
        raise FitError(f"{other} must be a positive number, got {held}")
    value, status, floor = _invert(law, law.params, variable, loss, held)
    level = level or law.ci_level
    lo = hi = None
    samples = law.sample_params()
    if samples:
        sols = []
        for p in samples:
            v, st, _ = _invert(law, p, variable, loss, held)
            sols.append(math.inf if st == "unreachable" else (0.0 if st == "worse" else v))
        arr = np.sort(np.asarray(sols, dtype=float))
        q = (1 - level) / 2
        # "lower"/"higher" pick order statistics, so inf ends stay inf (no inf - inf)
        lo = float(np.quantile(arr, q, method="lower"))
        hi = float(np.quantile(arr, 1 - q, method="higher"))
    return Effective(
        variable=variable,
        loss=float(loss),
        value=value,
        lo=lo,
        hi=hi,
        status=status,
        floor=floor,
        held=float(held),
        reference=None if reference is None else float(reference),
        level=level,
    )


def effective_n(
    law: Law,
    loss: float,
    D: float,
    *,
    N: float | None = None,
    level: float | None = None,
) -> Effective:
    """The parameters a plain run with ``D`` tokens needs, under ``law``, to reach ``loss``.

    Pass the technique's own ``N`` to get ``.multiplier`` (N_eff / N) and its interval.
    """
    return _effective(law, "N", loss, D, N, level)


def effective_d(
    law: Law,
    loss: float,
    N: float,
    *,
    D: float | None = None,
    level: float | None = None,
) -> Effective:
    """The tokens a plain run of ``N`` parameters needs, under ``law``, to reach ``loss``.

    Pass the technique's own ``D`` to get ``.multiplier`` (D_eff / D) and its interval.
    """
    return _effective(law, "D", loss, N, D, level)
