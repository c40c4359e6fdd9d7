"""The results store: every run of every study as a point in one SQLite file.

* :class:`Store` is the file (points, curves, tasks, intrinsic measurements), safe for
  several processes at once; :mod:`scalelab.results.records` reads a run directory into a
  :class:`~scalelab.results.records.RunRecord` and its point row.
* :func:`load_points` / :func:`load_curves` read the store back as DataFrames (the
  contract with ``scalelab.laws``); :func:`export_points` writes CSV or Parquet;
  :func:`rebuild` recreates the store from the run directories and the studies'
  manifests alone.

Names are imported lazily, so a worker that only writes to the store does not pay for
pandas, and ``import scalelab.results.store`` stays light.
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "RebuildResult": "scalelab.results.points",
    "export_points": "scalelab.results.points",
    "load_curves": "scalelab.results.points",
    "load_points": "scalelab.results.points",
    "rebuild": "scalelab.results.points",
    "Store": "scalelab.results.store",
    "RunRecord": "scalelab.results.records",
    "read_run": "scalelab.results.records",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())


__all__ = sorted(_API)
