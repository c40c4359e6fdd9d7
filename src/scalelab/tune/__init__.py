"""Hyperparameter searches across the sizes of a study (Optuna), and their fitted trends.

* :mod:`scalelab.tune.space`: the ``[tune]`` section and its search space (torch-free)
* :mod:`scalelab.tune.storage`: Optuna's state inside the results store
* :mod:`scalelab.tune.search`: ``tune(study)``, every trial an ordinary run (``kind = "trial"``)
* :mod:`scalelab.tune.trends`: the best trial per size and the power law of the best
  learning rate (batch size, ...) against N, to name hyperparameters for an untuned size

muP (hyperparameters that transfer across widths) is a model parametrisation, so it
lives with the models: ``model.parametrization = "mup"`` (:mod:`scalelab.models.mup`).
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

_API = {
    "Param": "scalelab.tune.space",
    "TuneSpec": "scalelab.tune.space",
    "load_tune": "scalelab.tune.space",
    "parse_tune": "scalelab.tune.space",
    "TuneResult": "scalelab.tune.search",
    "tune": "scalelab.tune.search",
    "HyperparameterLaw": "scalelab.tune.trends",
    "best_trials": "scalelab.tune.trends",
    "fit_hyperparameter": "scalelab.tune.trends",
}

__getattr__, __dir__ = lazy_api(__name__, _API, globals())

__all__ = sorted(_API)
