"""Training one model: the loop, its schedule and batches, checkpoints, the run directory, export.

``train(cfg, out, *, resume, progress) -> RunSummary`` is the entry point (see
:mod:`scalelab.train.loop`); ``export(run_dir, format="hf")`` writes a Hugging Face
checkpoint of a finished run (:mod:`scalelab.train.export`).

Names load lazily, so that a module the loop itself imports (a technique that reads a
checkpoint through :mod:`scalelab.train.checkpoint`, say) does not import the loop back.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from scalelab._lazy import lazy_api

_API: dict[str, str] = {
    "RunSummary": "scalelab.train.summary",
    "TokenSource": "scalelab.train.stream",
    "train": "scalelab.train.loop",
    "read_metrics": "scalelab.rundir",
}


class _CallablePackage(types.ModuleType):
    """``scalelab.train`` is this package *and* the public function: once the package is
    imported, the name ``scalelab.train`` is bound to it, so calling it trains a run."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("scalelab.train.loop").train(*args, **kwargs)


__getattr__, __dir__ = lazy_api(__name__, _API, globals())
sys.modules[__name__].__class__ = _CallablePackage

__all__ = sorted(_API)
