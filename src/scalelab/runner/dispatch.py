"""Training a sweep's runs through the one pool (:func:`scalelab.runner.pool.run_pool`):
in this process, in spawned worker processes, or as Ray tasks, recording each run's end
(or its failure, or that a run it needs failed) in the store and the progress view."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalelab.results.records import FINISHED, read_run
from scalelab.results.store import Store
from scalelab.rundir import write_json
from scalelab.runner.outcome import RunOutcome
from scalelab.runner.pool import InProcess, Job, LocalProcesses, run_pool, worker_device
from scalelab.runner.progress import Monitor
from scalelab.runner.runtask import (
    RunTask,
    execute,
    failure_summary,
    run_label,
)
from scalelab.study.grid import PlannedRun

# -- worker processes ---------------------------------------------------------------------


def _worker_execute(task: RunTask) -> dict[str, Any]:
    return execute(task, worker_device())


def _record(
    monitor: Monitor,
    outcomes: dict[str, RunOutcome],
    r: PlannedRun,
    task: RunTask,
    res: Mapping[str, Any],
) -> None:
    action = "resumed" if task.resume else "trained"
    outcomes[r.run_id] = RunOutcome(
        r.run_id,
        r.axes,
        action,
        res["status"],
        res["reason"],
        res["loss"],
        res["seconds"],
        res["flops"],
    )
    monitor.run_ended(
        r.run_id, res["flops"], res["wall_seconds"] or res["seconds"], res["status"], True
    )
    mark = {
        "finished": "[green]done[/]",
        "stopped_early": "[green]stopped early[/]",
        "busy": "[yellow]skipped, another process is training it:[/]",
    }.get(res["status"], f"[red]{res['status']}[/]")
    loss = f" loss {res['loss']:.4f}" if res["loss"] is not None else ""
    why = f" ({res['reason']})" if res["reason"] else ""
    monitor.print(f"{mark} {run_label(r.axes, r.run_id)}{loss} in {res['seconds']:.1f}s{why}")


def train_all(
    todo: list[tuple[PlannedRun, RunTask]],
    needs: Mapping[str, tuple[str, ...]],
    failed_before: Mapping[str, str],
    monitor: Monitor,
    outcomes: dict[str, RunOutcome],
    *,
    backend: str,
    address: str | None,
    workers: int | None,
    devices: Sequence[str] | None,
    threads: int | None,
) -> None:
    """Train ``todo`` (in the graph's order) through the one pool
    (:func:`scalelab.runner.pool.run_pool`): in this process (``workers=1``), in ``workers``
    spawned processes, or as Ray tasks; a run starts once the runs it ``needs`` ended well,
    a WSD branch once its parent has kept its branch point (finished or not)."""
    jobs = [Job(r.run_id, (r, task), needs.get(r.run_id, ())) for r, task in todo]

    def start(job: Job) -> tuple[Any, str]:
        r, task = job.data
        monitor.run_started(r.run_id, Path(task.out) / r.run_id, run_label(r.axes, r.run_id))
        return task, r.run_id

    def retry(job: Job, task: RunTask) -> Job:
        r, _ = job.data
        monitor.run_ended(r.run_id, 0.0, None, "interrupted", False)
        monitor.done.pop(r.run_id, None)
        resume = (Path(task.out) / r.run_id).exists()
        return Job(job.key, (r, dataclasses.replace(task, resume=resume)), job.needs)

    def failed(job: Job, task: RunTask | None, why: str) -> None:
        r, planned_task = job.data
        if task is None:  # never started: a run it needs failed
            _record_blocked(monitor, outcomes, r, planned_task, why)
        else:
            _record_failure(monitor, outcomes, r, task, why)

    def finished(job: Job, task: RunTask, res: Mapping[str, Any]) -> bool:
        _record(monitor, outcomes, job.data[0], task, res)
        return res["status"] in FINISHED

    def restarted() -> None:
        monitor.print("[yellow]a worker process died; restarting the pool[/]")

    hooks: dict[str, Any] = {"start": start, "failed": failed, "retry": retry,
                             "passed": branch_point_passed}  # fmt: skip
    if backend == "ray":
        from scalelab.runner.ray_backend import RayTasks, connect, train_remotely
        from scalelab.runner.runtask import record_task

        def finished_remote(job: Job, task: RunTask, res: Mapping[str, Any]) -> bool:
            if res["status"] == "busy":
                out = {**res, "loss": None, "flops": None, "wall_seconds": None}
            else:
                out = record_task(task, res["seconds"], res["record"])
            return finished(job, dataclasses.replace(task, resume=bool(res["resumed"])), out)

        with connect(address) as ray:
            tasks = RayTasks(ray, train_remotely, threads or 1, workers)
            monitor.workers = tasks.slots  # the ETA divides the work left among the slots
            run_pool(
                jobs,
                tasks,
                finished=finished_remote,
                poll=monitor.poll,
                done_badly=failed_before,
                **hooks,
            )
        return
    if (workers or 1) > 1:
        local = LocalProcesses(_worker_execute, workers or 1, threads or 1, devices)
        run_pool(
            jobs,
            local,
            finished=finished,
            poll=monitor.poll,
            restarted=restarted,
            done_badly=failed_before,
            **hooks,
        )
        return
    # in this process: a thread polls the metrics files for the progress view meanwhile
    import torch

    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.5):
            monitor.poll()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    device = devices[0] if devices else None
    try:
        here = InProcess(lambda task: execute(task, device))
        run_pool(jobs, here, finished=finished, done_badly=failed_before, **hooks)
    finally:
        stop.set()
        poller.join()
        torch.set_num_threads(saved_threads)


def branch_point_passed(job: Job, need: str) -> bool:
    """The pool's ``passed``: a WSD branch may start once its parent ``need`` has kept an
    intact state at the branch point, whether the parent is still running or not."""
    from scalelab.train import branch  # torch: loaded by the trainer anyway

    r, task = job.data
    return r.config.train.branch_of == need and branch.point_kept(r.config, Path(task.out))


def _record_blocked(
    monitor: Monitor, outcomes: dict[str, RunOutcome], r: PlannedRun, task: RunTask, reason: str
) -> None:
    """A run that never started because a run it needs failed: its point says why; no run
    directory is made, so a later sweep trains it once what it needs has finished."""
    with Store(task.db) as store:
        store.set_status(task.study, r.run_id, "failed", reason)
    res = {"status": "failed", "reason": reason, "loss": None, "seconds": 0.0, "flops": None,
           "wall_seconds": None}  # fmt: skip
    _record(monitor, outcomes, r, task, res)


def _record_failure(
    monitor: Monitor, outcomes: dict[str, RunOutcome], r: PlannedRun, task: RunTask, reason: str
) -> None:
    """A run whose worker kept dying: write its failure like any other."""
    run_dir = Path(task.out) / r.run_id
    if not (run_dir / "config.json").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", task.config)
    write_json(run_dir / "summary.json", failure_summary(run_dir, r.run_id, reason))
    with Store(task.db) as store:
        store.record_run(read_run(run_dir), study=task.study, axes=task.axes, counts=task.counts)
    res = {
        "status": "failed",
        "reason": reason,
        "loss": None,
        "seconds": 0.0,
        "flops": None,
        "wall_seconds": None,
    }
    _record(monitor, outcomes, r, task, res)
