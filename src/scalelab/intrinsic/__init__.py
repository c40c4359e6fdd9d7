"""The intrinsic dimension of an objective: train theta = theta_0 + P z in random subspaces.

``intrinsic_dimension(model, loss_fn, data, ...)`` finds d90 for any torch module
(:mod:`scalelab.intrinsic.search`); the projections (dense, sparse, Fastfood) are in
:mod:`scalelab.intrinsic.projections`, the subspace wrapper (with SAID) in
:mod:`scalelab.intrinsic.subspace`, Li et al.'s toy problem in :mod:`scalelab.intrinsic.toy`,
and d90 of a run on a task (``scalelab intrinsic``) in :mod:`scalelab.intrinsic.runs`.
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_LAZY = {
    "intrinsic_dimension": "scalelab.intrinsic.search",
    "IntrinsicResult": "scalelab.intrinsic.search",
    "Subspace": "scalelab.intrinsic.subspace",
    "make_projection": "scalelab.intrinsic.projections",
    "PROJECTIONS": "scalelab.intrinsic.options",
    "ToyProblem": "scalelab.intrinsic.toy",
    "toy_loss": "scalelab.intrinsic.toy",
    "run_intrinsic": "scalelab.intrinsic.runs",
}

__getattr__, __dir__ = lazy_api(__name__, _LAZY, globals())

__all__ = list(_LAZY)
