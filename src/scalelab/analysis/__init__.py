"""Analyses of a results store that every study may use (beside the laws' fitters).

* :func:`compare` (:mod:`~scalelab.analysis.arch_compare`): how each architecture's loss
  falls with compute and with N (Tay et al. 2022's slopes), and the frontier across them.
* :func:`depth_width` (:mod:`~scalelab.analysis.depth_vs_width`): the same slopes for depth
  alone and width alone; :func:`depth_width_toml` writes the study that measures them.
* :func:`overfit_analysis` (:mod:`~scalelab.analysis.overfit`): when a larger model stops
  being better on repeated data, and the data-constrained law.
* :func:`slope` (:mod:`~scalelab.analysis.slopes`): one log-log slope with its interval,
  used by the above and by the downstream tasks' analysis.

A technique's own analysis lives with the technique (``scalelab.select.analysis``,
``scalelab.tasks.analysis``, ...); an analysis here reads points any study writes.
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "ArchScaling": "scalelab.analysis.arch_compare",
    "Comparison": "scalelab.analysis.arch_compare",
    "compare": "scalelab.analysis.arch_compare",
    "DirectionScaling": "scalelab.analysis.depth_vs_width",
    "depth_width": "scalelab.analysis.depth_vs_width",
    "depth_width_toml": "scalelab.analysis.depth_vs_width",
    "OverfitAnalysis": "scalelab.analysis.overfit",
    "overfit_analysis": "scalelab.analysis.overfit",
    "Slope": "scalelab.analysis.slopes",
    "slope": "scalelab.analysis.slopes",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())


__all__ = sorted(_API)
