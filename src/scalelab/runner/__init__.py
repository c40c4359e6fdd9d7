"""The runner: how a study's runs are trained, locally or on Ray, and recorded.

* :func:`sweep` (:mod:`~scalelab.runner.sweeper`) plans a study's runs, skips finished
  ones, and trains the rest through the one crash-tolerant pool
  (:mod:`~scalelab.runner.pool`: in this process, in spawned worker processes, or as Ray
  tasks, :mod:`~scalelab.runner.ray_backend`); :mod:`~scalelab.runner.dispatch` feeds the
  pool and records each run's end, :mod:`~scalelab.runner.progress` shows the progress.
* One run of a sweep is :mod:`~scalelab.runner.runtask`: ``train_task`` trains it,
  ``record_task`` records it in the store (:mod:`scalelab.results`).
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "RunOutcome": "scalelab.runner.outcome",
    "SweepResult": "scalelab.runner.outcome",
    "sweep": "scalelab.runner.sweeper",
    "sweep_studies": "scalelab.runner.sweeper",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())


__all__ = sorted(_API)
