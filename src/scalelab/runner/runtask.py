"""One run of a study, whatever runs it: what a worker trains (:func:`train_task`) and what
the process that owns the store records (:func:`record_task`).

The local backend does both halves in its worker process (:func:`execute`); the Ray
backend trains in a Ray task and records in the driver (:mod:`scalelab.runner.ray_backend`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import run_config_from_dict
from scalelab.plugin import run_after_hooks
from scalelab.results.records import FINISHED, RunRecord, read_run
from scalelab.results.store import Store
from scalelab.rundir import read_metrics, write_json

TrainFn = Callable[..., Any]  # train(cfg, out, *, resume, progress) -> RunSummary


@dataclass
class RunTask:
    """Everything a worker needs to train and record one run (picklable)."""

    config: dict[str, Any]
    run_id: str
    out: str
    db: str
    study: str
    axes: dict[str, Any]
    resume: bool
    counts: dict[str, Any] | None
    trainer: TrainFn | None = None
    # the study's plug-in keys (study.tasks, study.intrinsic, ...): measured once the run
    # has finished, by the plug-ins' after-run hooks (scalelab.plugin)
    after: dict[str, Any] = field(default_factory=dict)


def default_trainer() -> TrainFn:
    from scalelab.train import train  # torch: only where a run trains

    return train


def failure_summary(run_dir: Path, run_id: str, reason: str) -> dict[str, Any]:
    """A ``summary.json`` for a run whose trainer raised before writing one (the
    contract's keys, the unknown ones null), so the failure survives a rebuild."""
    metrics = read_metrics(run_dir / "metrics.jsonl")
    last = metrics[-1] if metrics else {}
    return {
        "run_id": run_id,
        "status": "failed",
        "reason": reason,
        "step": last.get("step"),
        "tokens": last.get("tokens"),
        "val_loss": None,
        "val_bpb": None,
        "train_loss": last.get("train_loss"),
        "best_val_loss": None,
        "tokens_per_second": None,
        "wall_seconds": last.get("elapsed"),
    }


def execute(task: RunTask, device: str | None = None) -> dict[str, Any]:
    """Train one run, then record its directory in the store. Runs in the worker."""
    trained = train_task(task, device)
    if trained["status"] == "busy":
        return trained
    return record_task(task, trained["seconds"])


def train_task(task: RunTask, device: str | None = None) -> dict[str, Any]:
    """The worker's half of a run: train it and leave its directory ended (a failure
    summary if the trainer raised). Writes nothing to the store; ``status`` is ``busy``
    when another process holds the run, ``ended`` otherwise."""
    cfg = run_config_from_dict(task.config)
    if device is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=device))
    trainer = task.trainer or default_trainer()
    run_dir = Path(task.out) / task.run_id
    t0 = time.perf_counter()
    error: str | None = None
    try:
        trainer(cfg, task.out, resume=task.resume, progress=False)
    except Exception as e:  # a failed run is recorded, never allowed to stop the study
        error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    seconds = time.perf_counter() - t0
    if error is not None and is_busy(run_dir):
        # another process (a second sweep over the same runs) holds the run: leave it alone
        return {"run_id": task.run_id, "status": "busy", "reason": error, "loss": None,
                "seconds": seconds, "flops": None, "wall_seconds": None}  # fmt: skip
    if not (run_dir / "config.json").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", cfg.to_dict())
    if not read_run(run_dir, with_metrics=False).ended:
        reason = error or "the trainer returned without writing summary.json"
        write_json(run_dir / "summary.json", failure_summary(run_dir, task.run_id, reason))
    return {"run_id": task.run_id, "status": "ended", "seconds": seconds}


def record_task(task: RunTask, seconds: float, rec: RunRecord | None = None) -> dict[str, Any]:
    """The store's half of a run: record its directory (or ``rec``, the record a remote
    worker read from it) and its downstream measurements; the outcome for the progress view."""
    run_dir = Path(task.out) / task.run_id
    rec = rec if rec is not None else read_run(run_dir)
    with Store(task.db) as store:
        row = store.record_run(rec, study=task.study, axes=task.axes, counts=task.counts)
    measure_downstream(run_dir, task.db, row["status"], task.after)
    return {
        "run_id": task.run_id,
        "status": row["status"],
        "reason": row["reason"],
        "loss": row["loss"],
        "seconds": seconds,
        "flops": row["C_exact"],
        "wall_seconds": row["wall_seconds"],
    }


def measure_downstream(
    run_dir: Path, db: str | Path | None, status: str, after: Mapping[str, Any]
) -> None:
    """A finished run's measurements by the plug-ins that own the study's keys in ``after``
    (study.tasks, study.intrinsic, ...: :func:`scalelab.plugin.run_after_hooks`)."""
    if any(after.values()) and status in FINISHED:
        rec = read_run(run_dir)
        run_after_hooks(
            run_dir, after, db=db, cfg=run_config_from_dict(rec.config), summary=rec.summary
        )


def is_busy(run_dir: Path) -> bool:
    """Whether another process is training this run: the trainer holds an exclusive
    ``flock`` on ``RUN_DIR/.lock`` while it trains (scalelab.train.loop)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the trainer takes no lock either
        return False
    lock = run_dir / ".lock"
    if not lock.is_file():
        return False
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def run_label(axes: Mapping[str, Any], run_id: str) -> str:
    """A run as the progress view names it: its id, its axes."""
    parts = [str(axes.get(k)) for k in ("arch", "size", "budget") if axes.get(k) is not None]
    if axes.get("seed") is not None:
        parts.append(f"seed={axes['seed']}")
    extra = [f"{k}={v}" for k, v in axes.items() if "." in k]
    return f"{run_id} " + " ".join(parts + extra)
