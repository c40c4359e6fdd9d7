"""Training one model: the loop, its schedule and batches, checkpoints, the run directory, export.

``train(cfg, out, *, resume, progress) -> RunSummary`` is the entry point (see
:mod:`scalelab.train.loop`); ``export(run_dir, format="hf")`` writes a Hugging Face
checkpoint of a finished run (:mod:`scalelab.train.export`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from scalelab.rundir import read_metrics
from scalelab.train.loop import RunSummary, TokenSource, train


class _CallablePackage(types.ModuleType):
    """``scalelab.train`` is this package *and* the public function: once the package is
    imported, the name ``scalelab.train`` is bound to it, so calling it trains a run."""

    def __call__(self, *args: Any, **kwargs: Any) -> RunSummary:
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage

__all__ = ["RunSummary", "TokenSource", "read_metrics", "train"]
