"""The checks before a run starts, so that a run that cannot work fails before any work:
the model fits the device's memory, the run directory holds nothing this run would
overwrite, and one process at a time trains it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from scalelab import rundir
from scalelab.config import RunConfig
from scalelab.errors import ConfigError, StoreError, TrainingError
from scalelab.train.device import available_memory
from scalelab.train.summary import RunSummary


def check_memory(cfg: RunConfig, device: torch.device, micro_batch: int) -> None:
    """Refuse a model that cannot fit before allocating it: training memory as
    ``scalelab count`` computes it (weights, gradients, AdamW states, activations of one
    micro-batch) against what ``device`` has free."""
    from scalelab.accounting import count
    from scalelab.accounting.memory import format_bytes

    free = available_memory(device)
    if free is None:
        return
    c = count(cfg.model, batch=micro_batch, causal=cfg.model.causal)
    need = int(c.memory.train_total_bytes)
    if need > free:
        raise ConfigError(
            f"the model needs about {format_bytes(need)} to train ({c.params.total:,} parameters "
            f"x {sum(c.memory.train_bytes_per_param.values())} bytes for weights, gradients and "
            f"AdamW, plus activations of a micro-batch of {micro_batch}; see `scalelab count`) "
            f"but {device} has {format_bytes(free)} free: make model.d_model or model.n_layer "
            "smaller, or lower train.micro_batch_size"
        )


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One process per run directory: a second ``train`` of the same run fails at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    with (run_dir / ".lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingError(
                f"run {run_dir} is being trained by another process: wait for it to finish"
            ) from None
        yield


def prepare_dir(run_dir: Path, resume: bool) -> RunSummary | None:
    """Refuse to overwrite results; with ``resume``, return a finished run's summary."""
    summary_path = run_dir / rundir.SUMMARY
    ckpts = run_dir / rundir.CHECKPOINTS
    if ckpts.exists() and not ckpts.is_dir():
        raise StoreError(
            f"{ckpts} is a file where the run keeps its checkpoints: move or delete it"
        )
    if summary_path.exists():
        summary = RunSummary.load(run_dir)
        if summary.status in ("finished", "stopped_early"):
            if resume:
                return summary
            raise TrainingError(
                f"run {run_dir} already {summary.status}: pass resume=True (--resume) to reuse "
                "its result, or delete the directory to train it again"
            )
    started = (run_dir / rundir.METRICS).exists() or (run_dir / rundir.CHECKPOINTS).exists()
    if (started or summary_path.exists()) and not resume:
        raise TrainingError(
            f"run {run_dir} was started before: pass resume=True (--resume) to continue it from "
            "its last checkpoint, or delete the directory to start again"
        )
    return None
