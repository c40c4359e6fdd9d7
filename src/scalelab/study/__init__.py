"""Studies: a grid of runs declared in TOML, swept locally, stored as points in SQLite.

* :func:`load_study` / :func:`expand` turn a study file into its runs (pure, no training).
* :func:`sweep` trains the runs not finished yet (sequentially or in worker processes),
  resuming interrupted ones, and records every run as a point in the store.
* :func:`load_points` / :func:`load_curves` read the store back as DataFrames (the
  contract with ``scalelab.laws``); :func:`export_points` writes CSV or Parquet;
  :func:`rebuild` recreates the store from the run directories alone.
"""

from scalelab.study.executor import RunOutcome, SweepResult, sweep
from scalelab.study.grid import PlannedRun, expand
from scalelab.study.points import (
    RebuildResult,
    export_points,
    load_curves,
    load_points,
    rebuild,
)
from scalelab.study.spec import Budget, Size, Study, load_study, study_from_dict
from scalelab.study.store import Store

__all__ = [
    "Budget",
    "PlannedRun",
    "RebuildResult",
    "RunOutcome",
    "Size",
    "Store",
    "Study",
    "SweepResult",
    "expand",
    "export_points",
    "load_curves",
    "load_points",
    "load_study",
    "rebuild",
    "study_from_dict",
    "sweep",
]
