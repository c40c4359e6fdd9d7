"""Scaling laws: forms, robust fitting, bootstrap, extrapolation checks, allocation, plans.

* :func:`fit_law` fits a form (chinchilla, kaplan, power, data-constrained, bnsl, slope)
  to points and returns a :class:`Law` with bootstrap intervals and a leave-largest-out
  extrapolation check.
* :func:`isoflop`, :func:`envelope`, :func:`parametric`: Hoffmann et al. 2022's
  approaches 2, 1 and 3 to the compute-optimal allocation.
* :func:`plan`: compute-optimal N and D for a budget (or the budget for a target loss),
  with the data-constrained adjustment when tokens must repeat.
* :func:`published_law`: published laws (hoffmann2022, epoch2024, muennighoff2023, kaplan2020).
* :func:`effective_n`, :func:`effective_d`: the N (or D) a plain run needs to reach a
  loss under a fitted law; a technique's effective multiplier with its interval.
* :func:`select_law`: choose the form that best predicts the larger model sizes from the
  smaller ones (rolling origin), with bootstrap-by-size intervals and their coverage.
* :func:`pareto_frontier`, :func:`loglog_slope`: the frontier and the slope used to
  compare architectures.

Names load on first use (scipy and pandas are heavy), so that reading a table such as
``scalelab.laws.forms.FORMS`` (the command line's ``--form`` choices) loads no fitting code.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "Allocation": "scalelab.laws.approaches",
    "Effective": "scalelab.laws.effective",
    "FORMS": "scalelab.laws.forms",
    "Law": "scalelab.laws.law",
    "PRESETS": "scalelab.laws.published",
    "Plan": "scalelab.laws.plan",
    "PlanError": "scalelab.laws.plan",
    "Selection": "scalelab.laws.form_choice",
    "check_points": "scalelab.laws.fit",
    "effective_d": "scalelab.laws.effective",
    "effective_n": "scalelab.laws.effective",
    "envelope": "scalelab.laws.approaches",
    "extrapolation_check": "scalelab.laws.fit",
    "fit_law": "scalelab.laws.fit",
    "isoflop": "scalelab.laws.approaches",
    "loglog_slope": "scalelab.laws.frontier",
    "parametric": "scalelab.laws.approaches",
    "pareto_frontier": "scalelab.laws.frontier",
    "plan": "scalelab.laws.plan",
    "published_law": "scalelab.laws.published",
    "resolve_law": "scalelab.laws.published",
    "select_law": "scalelab.laws.form_choice",
}

__getattr__, __dir__ = lazy_api(__name__, _API, globals())


class _LawsPackage(types.ModuleType):
    """``scalelab.laws.plan`` is a submodule and the public function ``plan`` both: importing
    the submodule would bind the name to the module, so that binding is skipped and the name
    stays the function (as when this package imported it eagerly). ``from
    scalelab.laws.plan import Plan`` reads the module from ``sys.modules``, unaffected."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _LawsPackage

__all__ = sorted(_API)
