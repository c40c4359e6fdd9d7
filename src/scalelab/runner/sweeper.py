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
(:mod:`scalelab.runner.ray_backend`). Both run one run through the same two halves,
:func:`scalelab.runner.runtask.train_task` and :func:`~scalelab.runner.runtask.record_task`.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scalelab.config import (
    RunConfig,
    apply_overrides,
    budget_tokens,
    check_budget,
)
from scalelab.data import load_tokens
from scalelab.data.subset_file import apply_selection
from scalelab.errors import ConfigError, StoreError
from scalelab.plugin import check_study_keys, run_needs
from scalelab.results.records import FINISHED, NEEDED_BY, read_run
from scalelab.results.store import Store
from scalelab.runner.dispatch import train_all
from scalelab.runner.outcome import RunOutcome, SweepResult
from scalelab.runner.progress import Monitor
from scalelab.runner.ray_backend import check_backend, check_fits
from scalelab.runner.runtask import (
    RunTask,
    TrainFn,
    measure_downstream,
    run_label,
)
from scalelab.study.branching import branch_needs
from scalelab.study.cost import config_counts, planned_flops
from scalelab.study.graph import Needs, RunGraph, build_graph
from scalelab.study.grid import PlannedRun, Sizer, expand
from scalelab.study.manifest import write_manifest
from scalelab.study.studyfile import Study, as_study

Counter = Callable[[RunConfig], Mapping[str, Any] | None]
DataProbe = Callable[[RunConfig], int | None]  # -> unique training tokens (warms the cache)


def _default_probe(cfg: RunConfig) -> int | None:
    data = load_tokens(cfg.data, cfg.model.vocab_size)
    if cfg.data.select is not None:  # the selection's kept tokens (checked against the data)
        data = apply_selection(data, cfg.data.select)
    return int(data.unique_tokens)


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

    ``backend="ray"`` trains each run as a Ray task (:mod:`scalelab.runner.ray_backend`):
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

    :func:`sweep_studies` runs several studies through one pool.
    """
    return sweep_studies(
        [study],
        db=db,
        out=out,
        workers=workers,
        progress=progress,
        retry_failed=retry_failed,
        dry_run=dry_run,
        overrides=overrides,
        devices=devices,
        threads=threads,
        backend=backend,
        address=address,
        trainer=trainer,
        sizer=sizer,
        counter=counter,
        data_probe=data_probe,
        needs=needs,
    )[0]


@dataclasses.dataclass
class _Plan:
    """One study of a sweep: its runs, their needs, their counts, what became of them."""

    spec: Study
    runs: list[PlannedRun]
    graph: RunGraph
    counts: dict[str, dict[str, Any] | None]
    result: SweepResult


def sweep_studies(
    studies: Sequence[Study | str | Path | Mapping[str, Any]],
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
) -> list[SweepResult]:
    """:func:`sweep` for several studies at once, through one pool: every run of every
    study is one job of the graph's order (the longest chain of work first, whichever study
    it belongs to), so a long run of one study keeps a worker busy while the other works
    through another study's short runs, instead of each study's tail leaving workers idle.
    Each study keeps its own name, points and manifest; one result per study, in order.
    A run that two studies ask for is trained once and recorded under both."""
    if not studies:
        raise ConfigError("sweep_studies needs at least one study")
    # how and where runs train; a bad Ray address fails here, in seconds
    cluster = check_backend(backend, address, devices, workers=workers, threads=threads)
    if devices is not None and not devices:
        raise ConfigError("devices is empty: name at least one, e.g. ['cuda:0']")
    specs = [_with_overrides(as_study(s), overrides) for s in studies]
    names = [s.name for s in specs]
    if len(set(names)) < len(names):
        raise ConfigError(
            f"two of the studies are both named {next(n for n in names if names.count(n) > 1)!r}"
            ": the store keeps points by study name; rename one ([study] name)"
        )
    wanted = (
        devices
        if devices is not None
        else sorted(
            {r.config.train.device for spec in specs for r in expand(spec, sizer=sizer)} - {"auto"}
        )
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
    from scalelab.results.points import pending_row  # pandas: not needed in the workers

    t_start = time.perf_counter()
    # a Ray task may start in another directory, or on another node: absolute paths
    out_dir = Path(out).resolve() if backend == "ray" else Path(out)
    db_path = Path(db)
    counter = counter or config_counts
    plans: list[_Plan] = []
    for spec in specs:
        runs, graph = _planned_runs(spec, sizer, needs)
        check_study_keys(spec.after, [r.config for r in runs])  # e.g. study.posttrain: before work
        counts = {r.run_id: _counts(counter, r.config) for r in runs}
        plans.append(_Plan(spec, runs, graph, counts, SweepResult(spec.name, db_path, out_dir)))
    counts = {k: v for p in plans for k, v in p.counts.items()}

    if dry_run:  # the plan, validated and costed; nothing is written
        for p in plans:
            p.result.runs = [
                RunOutcome(
                    r.run_id,
                    r.axes,
                    "planned",
                    _dir_status(out_dir / r.run_id),
                    flops=planned_flops(r.config, counts[r.run_id], None),
                )
                for r in p.runs
            ]
            p.result.plan = [
                pending_row(
                    p.spec.name, r.run_id, r.config.to_dict(), r.axes, counts[r.run_id], out_dir
                )
                for r in p.runs
            ]
            p.result.wall_seconds = time.perf_counter() - t_start
        return [p.result for p in plans]

    all_runs = [r for p in plans for r in p.runs]
    # the token data each distinct data config needs: tokenized once here, so that
    # workers find a warm cache instead of racing to build it, and epoch budgets
    # can be turned into tokens for the ETA
    unique: dict[str, int | None] = {}
    probe = data_probe or _default_probe
    for r in all_runs:
        key = _data_key(r.config)
        if key not in unique and _needs_training(out_dir / r.run_id, retry_failed):
            unique[key] = probe(r.config)
    for r in all_runs:  # an absurd budget stops the sweep here, before any run starts
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
    for p in plans:
        write_manifest(out_dir, p.spec, p.runs)
    store = Store(db_path)
    try:
        for p in plans:
            store.put_study(p.spec.name, p.spec.to_dict(), out_dir.resolve())
            store.put_pending(
                pending_row(
                    p.spec.name, r.run_id, r.config.to_dict(), r.axes, counts[r.run_id], out_dir
                )
                for r in p.runs
            )

        # the FLOPs each run will spend itself (a WSD branch: its cooldown alone), for the
        # order of the runs, the progress bar and the ETA
        planned = {
            r.run_id: planned_flops(
                r.config, counts[r.run_id], unique.get(_data_key(r.config)), own=True
            )
            for r in all_runs
        }
        per_token = {
            r.run_id: float(c["flops"]["train_per_token"])
            for r in all_runs
            if (c := counts[r.run_id]) and c.get("flops", {}).get("train_per_token") is not None
        }

        title = ("study " if len(plans) == 1 else "studies ") + ", ".join(names)
        monitor = Monitor(planned, per_token, workers or 1, progress, title)
        monitor.branches = {r.run_id for r in all_runs if r.config.train.branch_of is not None}
        outcomes: dict[str, RunOutcome] = {}
        todo: dict[str, tuple[PlannedRun, RunTask]] = {}
        failed_before: dict[str, str] = {}  # run id -> why, of runs skipped as failed
        shared: list[tuple[_Plan, PlannedRun]] = []  # asked for by an earlier study too
        for p in plans:
            for r in p.runs:
                if r.run_id in todo or r.run_id in outcomes:
                    shared.append((p, r))
                    continue
                run_dir = out_dir / r.run_id
                status = _dir_status(run_dir)
                if status in FINISHED or (status == "failed" and not retry_failed):
                    row = store.record_run(
                        read_run(run_dir), study=p.spec.name, axes=r.axes, counts=counts[r.run_id]
                    )
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
                    measure_downstream(run_dir, db_path, row["status"], p.spec.after)
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
                    study=p.spec.name,
                    axes=dict(r.axes),
                    # the trainer continues from the newest checkpoint, or starts afresh
                    resume=run_dir.exists(),
                    counts=counts[r.run_id],
                    trainer=trainer,
                    after=dict(p.spec.after),
                )
                todo[r.run_id] = (r, task)
        store.close()
        graph = _joined(plans)
        # the graph's order: a run after the runs it needs; with more than one slot the
        # longest chain of work first (one run at a time: the grid's order, as it was)
        parallel = backend == "ray" or (workers or 1) > 1
        order = graph.order((lambda c: planned.get(c.run_id())) if parallel else None)

        monitor.start()
        try:
            train_all(
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
                    study = todo[run_id][1].study if run_id in todo else names[0]
                    s.set_status(study, run_id, "interrupted", "the sweep was interrupted")
            raise
        finally:
            monitor.stop()
        _record_shared(shared, outcomes, out_dir, db_path, counts)
        for p in plans:
            p.result.runs = [outcomes[r.run_id] for r in p.runs]
            p.result.eta_history = monitor.history
    finally:
        store.close()
    wall = time.perf_counter() - t_start
    for p in plans:
        p.result.wall_seconds = wall
    return [p.result for p in plans]


def _joined(plans: Sequence[_Plan]) -> RunGraph:
    """The studies' run graphs as one (run ids name configs, so a run two studies share is
    one node)."""
    configs: dict[str, RunConfig] = {}
    edges: dict[str, tuple[str, ...]] = {}
    added: set[str] = set()
    for p in plans:
        for k, c in p.graph.configs.items():
            configs.setdefault(k, c)
        for k, v in p.graph.needs.items():
            edges[k] = tuple(dict.fromkeys([*edges.get(k, ()), *v]))
        added |= p.graph.added
    asked = {r.run_id for p in plans for r in p.runs if r.run_id not in p.graph.added}
    return RunGraph(configs, edges, frozenset(added - asked))


def _record_shared(
    shared: Sequence[tuple[_Plan, PlannedRun]],
    outcomes: dict[str, RunOutcome],
    out_dir: Path,
    db_path: Path,
    counts: Mapping[str, dict[str, Any] | None],
) -> None:
    """A run a later study asked for too: trained (or skipped) once, its point recorded
    under that study as well, from its run directory."""
    if not shared:
        return
    with Store(db_path) as store:
        for p, r in shared:
            run_dir = out_dir / r.run_id
            if _dir_status(run_dir) is None:
                continue  # never started (a run it needs failed): the earlier study says why
            store.record_run(
                read_run(run_dir), study=p.spec.name, axes=r.axes, counts=counts[r.run_id]
            )


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


__all__ = ["RunOutcome", "SweepResult", "sweep", "sweep_studies"]
