"""One trial of a search, whatever runs it: train its run, reporting to the pruner
(:func:`train_trial`), then record its point of kind "trial" (:func:`record_trial`).

A local worker does both (:func:`run_trial`) and reports through Optuna's storage in the
store file; on Ray the task trains and the driver records (:mod:`scalelab.tune.ray_trials`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelab.config import run_config_from_dict
from scalelab.errors import ScalelabError
from scalelab.results.records import RunRecord, read_run
from scalelab.results.store import Store
from scalelab.rundir import write_json as write_json_atomic
from scalelab.runner.runtask import is_busy
from scalelab.study.cost import config_counts
from scalelab.tune.space import TuneSpec
from scalelab.tune.storage import optuna_storage

TrainFn = Callable[..., Any]  # train(cfg, out, *, resume, progress, on_eval) -> summary


def pruner_for(spec: TuneSpec) -> Any:
    import optuna

    if spec.pruner == "median":
        # Stop a trial whose loss at an evaluation is worse than the median of the earlier
        # trials at that step (Golovin et al. 2017, Google Vizier's median stopping rule).
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup, n_warmup_steps=0)
    if spec.pruner == "hyperband":
        # Successive halving over brackets of budgets (Li et al. 2018), budgets in steps
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


# -- one trial --------------------------------------------------------------------------------


@dataclass
class TrialTask:
    """What a worker needs to run one trial (picklable)."""

    db: str
    out: str
    study: str
    group: str
    trial_id: int
    number: int
    params: dict[str, Any]
    config: dict[str, Any]
    axes: dict[str, Any]
    metric: str
    spec: dict[str, Any]
    trainer: TrainFn | None = None


Reporter = Callable[[int, float], bool]  # (step, val loss) -> prune this trial now?


def local_reporter(task: TrialTask) -> Reporter | None:
    """Pruning through the Optuna storage in the store file (this machine's processes)."""
    spec = TuneSpec(**{**task.spec, "space": ()})
    if spec.pruner == "none":
        return None
    return storage_reporter(task.db, task.spec, task.group, task.trial_id)


def storage_reporter(db: str, spec: Mapping[str, Any], group: str, trial_id: int) -> Reporter:
    import optuna

    pruner = pruner_for(TuneSpec(**{**spec, "space": ()}))
    ostudy = optuna.load_study(study_name=group, storage=optuna_storage(db), pruner=pruner)
    trial = optuna.trial.Trial(ostudy, trial_id)

    def report(step: int, val_loss: float) -> bool:
        trial.report(val_loss, step)
        return bool(trial.should_prune())

    return report


def train_trial(task: TrialTask, report: Reporter | None) -> tuple[float, str | None]:
    """Train one trial's run (resuming its directory if there is one), reporting its
    validation curve to the pruner; leaves the directory ended. Writes nothing to the store;
    returns (seconds, error)."""
    spec = TuneSpec(**{**task.spec, "space": ()})
    cfg = run_config_from_dict(task.config)
    run_dir = Path(task.out) / cfg.run_id()

    def on_eval(step: int, val_loss: float) -> str | None:
        if report is None or not math.isfinite(val_loss):
            return None
        if report(step, val_loss):
            return f"pruned by the {spec.pruner} pruner at step {step} (val loss {val_loss:.4f})"
        return None

    if task.trainer is None:
        from scalelab.train import train as trainer
    else:
        trainer = task.trainer
    t0 = time.perf_counter()
    error = None
    while True:
        try:
            trainer(cfg, task.out, resume=True, progress=False, on_eval=on_eval)
        except ScalelabError as e:  # a failed trial is recorded, never stops the search
            if is_busy(run_dir):  # another search (or sweep) trains this very config: wait
                time.sleep(2.0)
                continue
            error = f"{type(e).__name__}: {e}"
        break
    seconds = time.perf_counter() - t0
    fail_trial_dir(task, error or "no summary")
    return seconds, error


def fail_trial_dir(task: TrialTask, reason: str) -> None:
    """Leave a trial's run directory ended: a failed summary if it has none."""
    cfg = run_config_from_dict(task.config)
    run_dir = Path(task.out) / cfg.run_id()
    if not (run_dir / "config.json").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", cfg.to_dict())
    if not read_run(run_dir, with_metrics=False).ended:
        write_json_atomic(
            run_dir / "summary.json",
            {"run_id": cfg.run_id(), "status": "failed", "reason": reason},
        )


def record_trial(task: TrialTask, seconds: float, rec: RunRecord | None = None) -> dict[str, Any]:
    """Record a trained trial's run (or ``rec``, read by a remote worker) as a point of
    kind "trial"; returns the outcome for ``tell``."""
    cfg = run_config_from_dict(task.config)
    rec = rec if rec is not None else read_run(Path(task.out) / cfg.run_id())
    extra = {"trial": task.number, "group": task.group, "params": task.params}
    with Store(task.db) as store:
        row = store.record_run(
            rec,
            study=task.study,
            axes={**task.axes, **task.params},
            counts=config_counts(cfg),
            fields={"kind": "trial", "technique": "tune", "extra_json": json.dumps(extra)},
        )
    s = rec.summary or {}
    reason = s.get("reason")
    if row["status"] == "failed":
        state, value = "FAIL", None
    elif isinstance(reason, str) and reason.startswith("pruned"):
        state, value = "PRUNED", None
    else:
        value = s.get(task.metric)
        state = "COMPLETE" if value is not None and math.isfinite(value) else "FAIL"
    return {
        "state": state,
        "value": value,
        "run_id": rec.run_id,
        "reason": reason,
        "seconds": seconds,
    }


def run_trial(task: TrialTask) -> dict[str, Any]:
    """One trial on this machine: train, then record its point."""
    seconds, _ = train_trial(task, local_reporter(task))
    return record_trial(task, seconds)


def trial_config_id(task: TrialTask) -> str:
    """The run id of a trial's run (its directory's name)."""
    return run_config_from_dict(task.config).run_id()
