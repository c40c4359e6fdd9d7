"""The sweep: run a study's grid locally, sequentially or in N worker processes.

What a sweep guarantees
-----------------------
* **Skips finished work.** A run whose directory has a ``summary.json`` saying
  ``finished`` or ``stopped_early`` is not trained again (its point is refreshed
  from its files). The run directory is the source of truth, not the store.
* **Resumes interrupted work.** A run directory without a summary (the sweep was
  killed) is handed to the trainer with ``resume=True``, which continues from its
  last checkpoint. Restarting a killed sweep with the same command continues it.
* **A failed run does not stop the study.** A run that diverges (NaN) or raises is
  recorded as ``failed`` with its reason, in its ``summary.json`` and in the store;
  later sweeps skip it unless ``retry_failed`` (which moves the old directory to
  ``RUNS_DIR/_failed/`` and trains afresh).
* **One progress view** for the whole study: a bar in FLOPs, the runs done, and an
  ETA from the cost of the runs left (``count(cfg).flops.train_per_token`` x the tokens
  of their budget), timed by the runs ended so far: their seconds are fitted as
  ``overhead + tokens x per_token + FLOPs / rate`` (non-negative least squares; before
  three runs have ended, FLOPs over the FLOP/s measured on the ended or running runs),
  and the seconds of the runs left are divided among the workers.

Workers
-------
``workers=1`` trains in this process; ``workers=N`` starts N processes with the
``spawn`` method (safe with CUDA and with threads, unlike ``fork``), each pinned to
one torch thread (``threads`` changes both), at most N runs in flight, largest first
(longest-processing-time order, so the small runs fill the gaps at the end). N
workers of one thread use about N cores: on a 2-core machine ``workers=2`` keeps both
busy with two runs at once, and more workers than cores only adds contention. Tiny
models (thousands of parameters) gain little from a second intra-op thread, so one
thread per run is the better use of few cores; but each worker pays a few seconds to
start (importing torch), so for a study of a few short runs ``workers=1`` with
``threads=1`` can finish first (``benchmarks/sweep_workers.py`` measures both). On
GPUs, ``devices=["cuda:0", "cuda:1"]`` gives each worker its device (``train.device``
is not part of the run id, so where a run executes does not change its name).

Backends
--------
``backend="local"`` (the above) or ``"ray"``: each run a Ray task on a local instance or on
the cluster at ``address``, the store written by this process alone
(:mod:`scalelab.study.ray_backend`). Both run one run through the same two halves,
:func:`scalelab.study.runtask.train_task` and :func:`~scalelab.study.runtask.record_task`.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import (
    RunConfig,
    apply_overrides,
    budget_tokens,
    check_budget,
)
from scalelab.data import load_tokens
from scalelab.data.selection import apply_selection
from scalelab.errors import ConfigError, StoreError
from scalelab.fmt import si
from scalelab.plugin import check_study_keys, run_needs
from scalelab.rundir import write_json
from scalelab.study.branching import branch_needs
from scalelab.study.cost import config_counts, planned_flops
from scalelab.study.graph import Needs, build_graph
from scalelab.study.grid import PlannedRun, Sizer, expand
from scalelab.study.manifest import write_manifest
from scalelab.study.pool import InProcess, Job, LocalProcesses, run_pool, worker_device
from scalelab.study.ray_backend import check_backend, check_fits
from scalelab.study.records import FINISHED, NEEDED_BY, last_metrics, read_run
from scalelab.study.runtask import (
    RunTask,
    TrainFn,
    execute,
    failure_summary,
    measure_downstream,
    run_label,
)
from scalelab.study.store import Store
from scalelab.study.studyfile import Study, as_study

Counter = Callable[[RunConfig], Mapping[str, Any] | None]
DataProbe = Callable[[RunConfig], int | None]  # -> unique training tokens (warms the cache)


@dataclass
class RunOutcome:
    """What the sweep did with one run of the grid."""

    run_id: str
    axes: Mapping[str, Any]
    action: str  # "skipped", "trained", "resumed", "planned" (dry run)
    status: str  # "finished", "stopped_early", "failed", "busy" (trained elsewhere), or
    # for a dry run the run directory's state: None (not started), "interrupted", ...
    reason: str | None = None
    loss: float | None = None
    seconds: float = 0.0
    flops: float | None = None  # planned (or, once ended, exact) training FLOPs


@dataclass
class SweepResult:
    """The outcome of :func:`sweep`; :meth:`points` reads the study's points back."""

    study: str
    db: Path
    out: Path
    runs: list[RunOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    # a dry run's plan: the pending row each run would get in the store (nothing is written)
    plan: list[dict[str, Any]] = field(default_factory=list)
    # (seconds since the sweep started, runs ended, the ETA shown then) at each run's end:
    # how well the FLOPs-based ETA predicted the time the sweep really took
    eta_history: list[tuple[float, int, float | None]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def trained(self) -> int:
        """Runs this sweep trained to the end (finished or stopped early): outcomes, not
        the plan, so runs that failed or that another process held are not counted."""
        return sum(r.action in ("trained", "resumed") and r.status in FINISHED for r in self.runs)

    @property
    def skipped(self) -> int:
        return sum(r.action == "skipped" for r in self.runs)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def busy(self) -> int:
        """Runs left alone because another process was training them."""
        return self.count("busy")

    def points(self, **kwargs: Any) -> Any:
        from scalelab.study.points import load_points  # pandas: not needed in the workers

        return load_points(self.db, study=self.study, **kwargs)


def _default_probe(cfg: RunConfig) -> int | None:
    data = load_tokens(cfg.data, cfg.model.vocab_size)
    if cfg.data.select is not None:  # the selection's kept tokens (checked against the data)
        data = apply_selection(data, cfg.data.select)
    return int(data.unique_tokens)


# -- worker processes ---------------------------------------------------------------------


def _worker_execute(task: RunTask) -> dict[str, Any]:
    return execute(task, worker_device())


# -- progress ---------------------------------------------------------------------------------


def _fmt_flops(x: float | None) -> str:
    return "?" if x is None else si(x)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "calibrating"
    s = max(0, round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class _Monitor:
    """The study's progress: FLOPs done and left, FLOP/s measured, ETA; a rich view."""

    def __init__(
        self,
        planned: Mapping[str, float | None],
        per_token: Mapping[str, float],
        workers: int,
        show: bool,
        title: str,
    ):
        self.planned = dict(planned)
        self.per_token = dict(per_token)  # run id -> training FLOPs per token
        self.workers = workers
        self.done: dict[str, float] = {}  # run id -> FLOPs it spent (ended runs)
        self.active: dict[str, tuple[Path, float]] = {}  # run id -> (run dir, start time)
        self.active_done: dict[str, float] = {}  # run id -> FLOPs so far
        self.cal_flops = 0.0  # FLOPs and seconds of ended runs, for the FLOP/s calibration
        self.cal_seconds = 0.0
        # (FLOPs, tokens, seconds) of each ended run, for the cost model
        self.cal_points: list[tuple[float, float, float]] = []
        self.n_failed = 0
        self.branches: set[str] = set()  # WSD branches: they train only their cooldown
        self.lock = threading.Lock()
        self.progress = None
        self.task_id = None
        self.sub: dict[str, Any] = {}
        self.title = title
        self.t0 = time.time()
        # (seconds since start, runs ended, ETA in seconds or None) at each run's end
        self.history: list[tuple[float, int, float | None]] = []
        if show:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[info]}"),
                refresh_per_second=4,
            )

    # known FLOPs of the whole study (a run with no estimate counts 0 until it ends)
    def _total(self) -> float:
        return sum(self.done.get(r, p or 0.0) for r, p in self.planned.items())

    def rate(self) -> float | None:
        """Training FLOP/s of one worker: from ended runs, else from the running ones."""
        if self.cal_seconds > 0 and self.cal_flops > 0:
            return self.cal_flops / self.cal_seconds
        flops = sum(self.active_done.values())
        seconds = sum(time.time() - start for _, start in self.active.values())
        return flops / seconds if flops > 0 and seconds > 1 else None

    def cost_model(self) -> tuple[float, float, float] | None:
        """Seconds of a run as ``overhead + tokens * per_token + FLOPs / rate``, fitted by
        non-negative least squares to the ended runs: ``(overhead, per_token, rate)``.

        A run's wall time also pays for what does not grow with its FLOPs: a fixed part
        (loading tokens, building the model, evaluations) and a part per step (optimizer
        and kernel-launch overheads), which dominate the smallest models; a pure FLOP/s
        ratio measured on small runs would overestimate the time of the large ones. Until
        three runs with distinct costs have ended, the rate alone (:meth:`rate`) is used.
        """
        pts = self.cal_points
        if len({(f, tok) for f, tok, _ in pts}) >= 3:
            import numpy as np
            from scipy.optimize import nnls

            scale = np.array([1.0, max(tok for _, tok, _ in pts), max(f for f, _, _ in pts)])
            a = np.array([[1.0, tok, f] for f, tok, _ in pts]) / scale
            coef, _ = nnls(a, np.array([t for _, _, t in pts]))
            overhead, per_token, per_flop = coef / scale
            if per_flop > 0:
                return float(overhead), float(per_token), float(1.0 / per_flop)
        rate = self.rate()
        return None if rate is None else (0.0, 0.0, rate)

    def eta(self) -> float | None:
        left = [r for r in self.planned if r not in self.done]
        if not left:
            return 0.0
        if any(self.planned[r] is None for r in left):
            return None
        model = self.cost_model()
        if model is None:
            return None
        overhead, per_token, rate = model
        seconds = 0.0
        for r in left:
            flops_left = max(float(self.planned[r] or 0.0) - self.active_done.get(r, 0.0), 0.0)
            per_tok = self.per_token.get(r)
            tokens_left = flops_left / per_tok if per_tok else 0.0
            fixed = 0.0 if r in self.active else overhead
            seconds += fixed + tokens_left * per_token + flops_left / rate
        return seconds / min(self.workers, len(left))

    def start(self) -> None:
        if self.progress is not None:
            self.progress.start()
            self.task_id = self.progress.add_task(self.title, total=1.0, info="")
            self.refresh()

    def stop(self) -> None:
        if self.progress is not None:
            self.refresh()
            self.progress.stop()

    def print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)

    def run_ended(
        self, run_id: str, flops: float | None, seconds: float | None, status: str, calibrate: bool
    ) -> None:
        with self.lock:
            if run_id in self.branches and flops is not None:  # a point's C is its whole D;
                flops = self.planned.get(run_id) or flops  # a branch spent its cooldown's
            spent = flops if flops is not None else self.planned.get(run_id) or 0.0
            self.done[run_id] = spent
            if calibrate and flops and seconds and status in FINISHED:
                self.cal_flops += flops
                self.cal_seconds += seconds
                per_tok = self.per_token.get(run_id)
                self.cal_points.append((flops, flops / per_tok if per_tok else 0.0, seconds))
            self.n_failed += status == "failed"
            self.active.pop(run_id, None)
            self.active_done.pop(run_id, None)
            if self.progress is not None and run_id in self.sub:
                self.progress.remove_task(self.sub.pop(run_id))
            self.history.append((time.time() - self.t0, len(self.done), self.eta()))
        self.refresh()

    def run_started(self, run_id: str, run_dir: Path, label: str) -> None:
        with self.lock:
            self.active[run_id] = (run_dir, time.time())
            if self.progress is not None:
                self.sub[run_id] = self.progress.add_task(f"  {label}", total=1.0, info="")
        self.refresh()

    def poll(self) -> None:
        """Read the tail of each running run's metrics.jsonl and redraw."""
        with self.lock:
            for run_id, (run_dir, _) in list(self.active.items()):
                row = last_metrics(run_dir / "metrics.jsonl")
                if not row or row.get("tokens") is None:
                    continue
                planned = self.planned.get(run_id)
                per_token = self.per_token.get(run_id)
                if per_token is not None:
                    self.active_done[run_id] = float(row["tokens"]) * per_token
                if self.progress is not None and run_id in self.sub:
                    frac = self.active_done.get(run_id, 0.0) / planned if planned else 0.0
                    loss = row.get("val_loss") or row.get("train_loss")
                    info = f"step {row.get('step')}" + (f"  loss {loss:.4f}" if loss else "")
                    self.progress.update(self.sub[run_id], completed=min(frac, 1.0), info=info)
        self.refresh()

    def refresh(self) -> None:
        if self.progress is None or self.task_id is None:
            return
        with self.lock:
            total = self._total()
            done = sum(self.done.values()) + sum(self.active_done.values())
            n_done = len(self.done)
            rate = self.rate()
            info = (
                f"runs {n_done}/{len(self.planned)}"
                + (f" ({self.n_failed} failed)" if self.n_failed else "")
                + f"  {_fmt_flops(done)}/{_fmt_flops(total)} FLOP"
                + (f"  {_fmt_flops(rate)}FLOP/s/worker" if rate else "")
                + f"  ETA {_fmt_seconds(self.eta())}"
            )
            self.progress.update(
                self.task_id, completed=min(done / total, 1.0) if total else 0.0, info=info
            )


# -- the sweep ------------------------------------------------------------------------------


def _with_overrides(study: Study, overrides: Iterable[str]) -> Study:
    overrides = list(overrides)
    if not overrides:
        return study
    base = apply_overrides(study.base, overrides)
    for section in base:
        if section not in study.base:
            raise ConfigError(f"override section [{section}] is not one of model, data, train")
    per_run = _keys_set_per_run(study)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in per_run:
            raise ConfigError(
                f"--set {item}: the study sets {key} per run ({per_run[key]}), which would "
                "replace this value in every run; change it in the study file instead"
            )
    return dataclasses.replace(study, base=base)


def _keys_set_per_run(study: Study) -> dict[str, str]:
    """The run-config keys a study's axes assign run by run (a shared ``--set`` of one of
    them would be silently replaced), each with the axis that sets it."""
    keys: dict[str, str] = {}
    for size in study.sizes:
        for k in size.model:
            keys.setdefault(f"model.{k}", "study.sizes")
    for budget in study.budgets:
        for section, k in budget.assignments():
            keys.setdefault(f"{section}.{k}", "the study's data budgets")
    if study.seeds:
        keys["train.seed"] = "study.seeds"
    for k, _ in study.grid:
        keys[k] = "study.grid"
    if study.archs:
        keys["model.arch"] = "study.arch"
    return keys


def sweep(
    study: Study | str | Path | Mapping[str, Any],
    *,
    db: str | Path = "results.db",
    out: str | Path = "runs",
    workers: int | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    dry_run: bool = False,
    overrides: Sequence[str] = (),
    devices: Sequence[str] | None = None,
    threads: int | None = None,
    backend: str = "local",
    address: str | None = None,
    trainer: TrainFn | None = None,
    sizer: Sizer | None = None,
    counter: Counter | None = None,
    data_probe: DataProbe | None = None,
    needs: Needs | None = None,
) -> SweepResult:
    """Run every run of a study's grid that has not finished yet; record all in ``db``.

    ``study`` is a :class:`Study`, a path to a study TOML file or its parsed mapping;
    ``overrides`` (``"train.lr=1e-3"``) change its shared sections. Runs go to
    ``out/<run_id>/``; points to the SQLite store ``db``. ``dry_run`` expands the grid
    and records the plan (pending points) without training.

    ``threads`` sets torch's intra-op threads: per worker when ``workers > 1`` (default
    1), for this process when ``workers == 1`` (default: torch's own choice, restored
    after the sweep). ``devices`` spreads workers over devices (``train.device``).

    ``backend="ray"`` trains each run as a Ray task (:mod:`scalelab.study.ray_backend`):
    on the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), else on a
    local instance; ``workers`` then caps the runs in flight (default: as many as the
    cluster's CPUs over ``threads``, or its GPUs), and ``out`` must be a path every node
    sees. The driver (this process) alone writes the store.

    ``trainer``, ``sizer``, ``counter`` and ``data_probe`` replace
    ``scalelab.train.train``, ``scalelab.accounting.size_for``, ``count(cfg).to_dict()``
    and the token-cache probe (tests inject small fakes; a trainer given with
    ``workers > 1`` must be importable by name so the spawned workers can load it).

    ``needs(cfg) -> [RunConfig]`` names the runs a run needs finished before it starts
    (:mod:`scalelab.study.graph`): they are added to the sweep if the grid lacks them, and
    every backend starts a run only after them; a cycle is an error before any run starts.
    """
    # how and where runs train; a bad Ray address fails here, in seconds
    cluster = check_backend(backend, address, devices, workers=workers, threads=threads)
    if devices is not None and not devices:
        raise ConfigError("devices is empty: name at least one, e.g. ['cuda:0']")
    spec0 = _with_overrides(as_study(study), overrides)
    wanted = (
        devices
        if devices is not None
        else sorted({r.config.train.device for r in expand(spec0, sizer=sizer)} - {"auto"})
    )
    if cluster is not None:  # the cluster's nodes resolve their own devices, if it has GPUs
        check_fits(cluster, threads or 1, cuda=any(d.startswith("cuda") for d in wanted))
        wanted = []
    if wanted:  # a device that is not here is a usage error, not 8 failed runs
        from scalelab.train.device import resolve_device

        for d in wanted:
            try:
                resolve_device(d)
            except ConfigError:
                import torch

                seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
                raise ConfigError(
                    f"device {d!r} is not on this machine ({seen} CUDA device(s) visible): "
                    "name devices that exist (cpu, cuda:0, ...), or leave out the device"
                ) from None
    from scalelab.study.points import pending_row  # pandas: not needed in the workers

    t_start = time.perf_counter()
    spec = _with_overrides(as_study(study), overrides)
    runs, graph = _planned_runs(spec, sizer, needs)
    check_study_keys(spec.after, [r.config for r in runs])  # e.g. study.posttrain: before work
    # a Ray task may start in another directory, or on another node: absolute paths
    out_dir = Path(out).resolve() if backend == "ray" else Path(out)
    db_path = Path(db)
    result = SweepResult(spec.name, db_path, out_dir)
    counter = counter or config_counts
    counts = {r.run_id: _counts(counter, r.config) for r in runs}

    if dry_run:  # the plan, validated and costed; nothing is written
        result.runs = [
            RunOutcome(
                r.run_id,
                r.axes,
                "planned",
                _dir_status(out_dir / r.run_id),
                flops=planned_flops(r.config, counts[r.run_id], None),
            )
            for r in runs
        ]
        result.plan = [
            pending_row(spec.name, r.run_id, r.config.to_dict(), r.axes, counts[r.run_id], out_dir)
            for r in runs
        ]
        result.wall_seconds = time.perf_counter() - t_start
        return result

    # the token data each distinct data config needs: tokenized once here, so that
    # workers find a warm cache instead of racing to build it, and epoch budgets
    # can be turned into tokens for the ETA
    unique: dict[str, int | None] = {}
    probe = data_probe or _default_probe
    for r in runs:
        key = _data_key(r.config)
        if key not in unique and _needs_training(out_dir / r.run_id, retry_failed):
            unique[key] = probe(r.config)
    for r in runs:  # an absurd budget stops the sweep here, before any run starts
        u = unique.get(_data_key(r.config))
        n = (counts[r.run_id] or {}).get("params", {}).get("non_embedding")
        if u and n is not None and _needs_training(out_dir / r.run_id, retry_failed):
            tokens, note = budget_tokens(r.config, int(n), int(u))
            try:
                check_budget(tokens, note, int(u))
            except ConfigError as e:
                raise ConfigError(f"run {run_label(r.axes, r.run_id)}: {e}") from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the runs directory {str(out_dir)!r}: {e}") from None
    write_manifest(out_dir, spec, runs)
    store = Store(db_path)
    try:
        store.put_study(spec.name, spec.to_dict(), out_dir.resolve())
        store.put_pending(
            pending_row(spec.name, r.run_id, r.config.to_dict(), r.axes, counts[r.run_id], out_dir)
            for r in runs
        )

        # the FLOPs each run will spend itself (a WSD branch: its cooldown alone), for the
        # order of the runs, the progress bar and the ETA
        planned = {
            r.run_id: planned_flops(
                r.config, counts[r.run_id], unique.get(_data_key(r.config)), own=True
            )
            for r in runs
        }
        per_token = {
            r.run_id: float(c["flops"]["train_per_token"])
            for r in runs
            if (c := counts[r.run_id]) and c.get("flops", {}).get("train_per_token") is not None
        }

        monitor = _Monitor(planned, per_token, workers or 1, progress, f"study {spec.name}")
        monitor.branches = {r.run_id for r in runs if r.config.train.branch_of is not None}
        outcomes: dict[str, RunOutcome] = {}
        todo: dict[str, tuple[PlannedRun, RunTask]] = {}
        failed_before: dict[str, str] = {}  # run id -> why, of runs skipped as failed
        for r in runs:
            run_dir = out_dir / r.run_id
            status = _dir_status(run_dir)
            if status in FINISHED or (status == "failed" and not retry_failed):
                rec = read_run(run_dir)
                row = store.record_run(rec, study=spec.name, axes=r.axes, counts=counts[r.run_id])
                outcomes[r.run_id] = RunOutcome(
                    r.run_id,
                    r.axes,
                    "skipped",
                    row["status"],
                    row["reason"],
                    row["loss"],
                    0.0,
                    row["C_exact"],
                )
                monitor.run_ended(
                    r.run_id, row["C_exact"], row["wall_seconds"], row["status"], True
                )
                measure_downstream(run_dir, db_path, row["status"], spec.after)
                if row["status"] not in FINISHED:
                    failed_before[r.run_id] = row["reason"] or "failed"
                continue
            if status == "failed":
                _move_aside(run_dir, out_dir)
                status = None
            task = RunTask(
                config=r.config.to_dict(),
                run_id=r.run_id,
                out=str(out_dir),
                db=str(db_path),
                study=spec.name,
                axes=dict(r.axes),
                # the trainer continues from the newest checkpoint, or starts afresh if none
                resume=run_dir.exists(),
                counts=counts[r.run_id],
                trainer=trainer,
                after=dict(spec.after),
            )
            todo[r.run_id] = (r, task)
        store.close()
        # the graph's order: a run after the runs it needs; with more than one slot the
        # longest chain of work first (one run at a time: the grid's order, as it was)
        parallel = backend == "ray" or (workers or 1) > 1
        order = graph.order((lambda c: planned.get(c.run_id())) if parallel else None)

        monitor.start()
        try:
            _train_all(
                [todo[k] for k in order if k in todo],
                graph.needs,
                failed_before,
                monitor,
                outcomes,
                backend=backend,
                address=address,
                workers=workers,
                devices=devices,
                threads=threads,
            )
        except KeyboardInterrupt:
            with Store(db_path) as s:
                for run_id in list(monitor.active):
                    s.set_status(spec.name, run_id, "interrupted", "the sweep was interrupted")
            raise
        finally:
            monitor.stop()
        result.runs = [outcomes[r.run_id] for r in runs]
        result.eta_history = monitor.history
    finally:
        store.close()
    result.wall_seconds = time.perf_counter() - t_start
    return result


def _planned_runs(
    spec: Study, sizer: Sizer | None, needs: Needs | None
) -> tuple[list[PlannedRun], Any]:
    """The grid's runs, then the runs they need that the grid lacks (axes: the run that
    needs it first), and the graph of their needs."""
    runs = expand(spec, sizer=sizer)
    branches = branch_needs([r.config for r in runs])  # a WSD branch needs its parent
    declared = needs or run_needs  # by default, what the registered plug-ins declare

    def all_needs(cfg: RunConfig) -> list[RunConfig]:
        return [*branches(cfg), *declared(cfg)]

    graph = build_graph([r.config for r in runs], all_needs)
    by_id = {r.run_id: r for r in runs}
    needed_by = graph.needed_by()
    for run_id in graph.configs:
        if run_id not in by_id:
            cfg = graph.configs[run_id]
            axes = {"arch": cfg.model.arch, NEEDED_BY: needed_by[run_id][0]}
            by_id[run_id] = PlannedRun(cfg, axes)
            runs.append(by_id[run_id])
    return runs, graph


def _counts(counter: Counter, cfg: RunConfig) -> dict[str, Any] | None:
    c = counter(cfg)
    return dict(c) if c is not None else None


def _data_key(cfg: RunConfig) -> str:
    return repr((sorted(dataclasses.asdict(cfg.data).items()), cfg.model.vocab_size))


def _dir_status(run_dir: Path) -> str | None:
    """``None`` (no directory), ``interrupted`` (no summary) or the summary's status."""
    if not (run_dir / "config.json").is_file():
        return None
    try:
        return read_run(run_dir, with_metrics=False).status
    except StoreError:
        return "interrupted"


def _needs_training(run_dir: Path, retry_failed: bool) -> bool:
    status = _dir_status(run_dir)
    return status not in FINISHED and not (status == "failed" and not retry_failed)


def _move_aside(run_dir: Path, out_dir: Path) -> None:
    """Keep a failed run's directory (for its logs) under ``_failed/`` before a retry."""
    dest = out_dir / "_failed" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), dest)


def _record(
    monitor: _Monitor,
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


def _train_all(
    todo: list[tuple[PlannedRun, RunTask]],
    needs: Mapping[str, tuple[str, ...]],
    failed_before: Mapping[str, str],
    monitor: _Monitor,
    outcomes: dict[str, RunOutcome],
    *,
    backend: str,
    address: str | None,
    workers: int | None,
    devices: Sequence[str] | None,
    threads: int | None,
) -> None:
    """Train ``todo`` (in the graph's order) through the one pool
    (:func:`scalelab.study.pool.run_pool`): in this process (``workers=1``), in ``workers``
    spawned processes, or as Ray tasks; a run starts once the runs it ``needs`` ended well."""
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

    hooks: dict[str, Any] = {"start": start, "failed": failed, "retry": retry}
    if backend == "ray":
        from scalelab.study.ray_backend import RayTasks, connect, train_remotely
        from scalelab.study.runtask import record_task

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


def _record_blocked(
    monitor: _Monitor, outcomes: dict[str, RunOutcome], r: PlannedRun, task: RunTask, reason: str
) -> None:
    """A run that never started because a run it needs failed: its point says why; no run
    directory is made, so a later sweep trains it once what it needs has finished."""
    with Store(task.db) as store:
        store.set_status(task.study, r.run_id, "failed", reason)
    res = {"status": "failed", "reason": reason, "loss": None, "seconds": 0.0, "flops": None,
           "wall_seconds": None}  # fmt: skip
    _record(monitor, outcomes, r, task, res)


def _record_failure(
    monitor: _Monitor, outcomes: dict[str, RunOutcome], r: PlannedRun, task: RunTask, reason: str
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


__all__ = ["RunOutcome", "SweepResult", "sweep"]
