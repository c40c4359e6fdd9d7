"""Training one model: the loop, its schedule and batches, checkpoints, the run directory, export.

``train(cfg, out, *, resume, progress) -> RunSummary`` is the entry point (see
:mod:`scalelab.train.loop`); ``export(run_dir, format="hf")`` writes a Hugging Face
checkpoint of a finished run (:mod:`scalelab.train.export`).
"""

from __future__ import annotations

from scalelab.train.loop import RunSummary, TokenSource, train
from scalelab.train.rundir import read_metrics

__all__ = ["RunSummary", "TokenSource", "read_metrics", "train"]
