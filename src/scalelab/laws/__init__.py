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
"""

from scalelab.laws.approaches import Allocation, envelope, isoflop, parametric
from scalelab.laws.effective import Effective, effective_d, effective_n
from scalelab.laws.fit import check_points, extrapolation_check, fit_law
from scalelab.laws.form_choice import Selection, select_law
from scalelab.laws.forms import FORMS
from scalelab.laws.frontier import loglog_slope, pareto_frontier
from scalelab.laws.law import Law
from scalelab.laws.plan import Plan, PlanError, plan
from scalelab.laws.published import PRESETS, published_law, resolve_law

__all__ = [
    "FORMS",
    "PRESETS",
    "Allocation",
    "Effective",
    "Law",
    "Plan",
    "PlanError",
    "Selection",
    "check_points",
    "effective_d",
    "effective_n",
    "envelope",
    "extrapolation_check",
    "fit_law",
    "isoflop",
    "loglog_slope",
    "parametric",
    "pareto_frontier",
    "plan",
    "published_law",
    "resolve_law",
    "select_law",
]
