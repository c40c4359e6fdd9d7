"""Searches on Ray: each trial a Ray task; Optuna asks and tells in the driver.

The sampler lives in the driver (``scalelab tune``), which asks Optuna for a trial when a
slot frees, sends its run to Ray, and on the result records the point and tells Optuna,
as the local backend does (:mod:`scalelab.tune.search`). The store, Optuna's tables
included, is written on the driver's machine only:

* the run's point and the trial's result by the driver itself;
* a pruner's intermediate values (``trial.report``) by one small actor, the *prune desk*,
  pinned to the driver's node (Ray cannot call into the driver). A trial's task asks the
  desk at each evaluation whether to stop, as a local worker asks the storage.

Run directories follow the sweep's rule (:mod:`scalelab.runner.ray_backend`): a path every
node sees; a task whose worker dies is retried and resumes from its checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from scalelab.runner.ray_backend import RayTasks, connect
from scalelab.tune.trial import (
    Reporter,
    TrialTask,
    storage_reporter,
    train_trial,
    trial_config_id,
)


class _PruneDesk:
    """The pruner's side of every trial on the cluster (a Ray actor on the driver's node):
    stores each reported value in Optuna's storage and answers should_prune."""

    def __init__(self, db: str, spec: Mapping[str, Any]):
        self.db, self.spec = db, dict(spec)
        self.reporters: dict[tuple[str, int], Reporter] = {}

    def report(self, group: str, trial_id: int, step: int, value: float) -> bool:
        key = (group, trial_id)
        if key not in self.reporters:
            self.reporters[key] = storage_reporter(self.db, self.spec, group, trial_id)
        return self.reporters[key](step, value)

    def forget(self, group: str, trial_id: int) -> None:
        self.reporters.pop((group, trial_id), None)


def _remote_trial(task: TrialTask, threads: int, device: str | None, desk: Any) -> dict[str, Any]:
    """One trial inside a Ray task: train (resuming what a dead attempt left), return the
    run's record."""
    import ray
    import torch

    from scalelab.results.records import read_run

    torch.set_num_threads(threads)
    if device is not None:
        task = _on_device(task, device)
    report: Reporter | None = None
    if desk is not None:

        def report(step: int, value: float) -> bool:
            return bool(ray.get(desk.report.remote(task.group, task.trial_id, step, value)))

    seconds, _ = train_trial(task, report)
    if desk is not None:  # the desk's reporter for this trial is no longer needed
        desk.forget.remote(task.group, task.trial_id)
    return {"seconds": seconds, "record": read_run(Path(task.out) / trial_config_id(task))}


@contextlib.contextmanager
def trials_on_ray(
    address: str | None,
    workers: int | None,
    threads: int,
    db: str,
    spec: Mapping[str, Any],
    pruning: bool,
) -> Iterator[RayTasks]:
    """The pool's Ray backend for trials (:class:`~scalelab.runner.ray_backend.RayTasks`):
    at most ``workers`` trials in flight (default: the cluster's capacity), and, when the
    search prunes, the prune desk on this node."""
    with connect(address) as ray:
        desk = None
        if pruning:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            desk = (
                ray.remote(_PruneDesk)
                .options(
                    num_cpus=0,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
                )
                .remote(db, spec)
            )
        yield RayTasks(ray, _remote_trial, threads, workers, extra=(desk,))


def _on_device(task: TrialTask, device: str) -> TrialTask:
    config = {**task.config, "train": {**task.config["train"], "device": device}}
    return dataclasses.replace(task, config=config)


__all__ = ["trials_on_ray"]
