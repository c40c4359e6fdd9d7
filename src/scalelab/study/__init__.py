"""Studies: what to run. A grid of runs declared in TOML, expanded without training.

* :func:`load_study` / :func:`expand` turn a study file into its runs (pure, no training);
  :mod:`~scalelab.study.branching` adds a ladder's WSD branches, :mod:`~scalelab.study.graph`
  orders runs that need other runs, :mod:`~scalelab.study.cost` prices a run before it
  trains, :mod:`~scalelab.study.manifest` writes the study's spec beside its runs.

The other jobs live in their own packages, named here too so user code keeps one front
door (``scalelab.study.sweep``, ``scalelab.study.load_points``):

* :func:`sweep` trains the runs not finished yet: :mod:`scalelab.runner`.
* :func:`load_points` / :func:`load_curves` / :func:`export_points` / :func:`rebuild` and
  :class:`Store`, the results store: :mod:`scalelab.results`.

Names are imported lazily (only when used), so ``import scalelab.study`` stays light.
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "Budget": "scalelab.study.studyfile",
    "Size": "scalelab.study.studyfile",
    "Study": "scalelab.study.studyfile",
    "load_study": "scalelab.study.studyfile",
    "study_from_dict": "scalelab.study.studyfile",
    "PlannedRun": "scalelab.study.grid",
    "expand": "scalelab.study.grid",
    "RunOutcome": "scalelab.runner.outcome",
    "SweepResult": "scalelab.runner.outcome",
    "sweep": "scalelab.runner.sweeper",
    "sweep_studies": "scalelab.runner.sweeper",
    "RebuildResult": "scalelab.results.points",
    "export_points": "scalelab.results.points",
    "load_curves": "scalelab.results.points",
    "load_points": "scalelab.results.points",
    "rebuild": "scalelab.results.points",
    "Store": "scalelab.results.store",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())


__all__ = sorted(_API)
