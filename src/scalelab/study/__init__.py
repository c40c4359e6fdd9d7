"""Studies: a grid of runs declared in TOML, swept locally, stored as points in SQLite.

* :func:`load_study` / :func:`expand` turn a study file into its runs (pure, no training).
* :func:`sweep` trains the runs not finished yet (sequentially or in worker processes),
  resuming interrupted ones, and records every run as a point in the store.
* :func:`load_points` / :func:`load_curves` read the store back as DataFrames (the
  contract with ``scalelab.laws``); :func:`export_points` writes CSV or Parquet;
  :func:`rebuild` recreates the store from the run directories alone.

Names are imported lazily, so a worker that only writes to the store does not pay for
pandas, and ``import scalelab.study.store`` stays light.
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
    "RunOutcome": "scalelab.study.executor",
    "SweepResult": "scalelab.study.executor",
    "sweep": "scalelab.study.executor",
    "RebuildResult": "scalelab.study.points",
    "export_points": "scalelab.study.points",
    "load_curves": "scalelab.study.points",
    "load_points": "scalelab.study.points",
    "rebuild": "scalelab.study.points",
    "Store": "scalelab.study.store",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())


__all__ = sorted(_API)
