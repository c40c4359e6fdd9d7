"""``tune(study) -> TuneResult``: an Optuna search per group of a study, every trial a run.

A *group* is one run of the study's grid (arch x size x budget x seed x grid point): its
config is the base every trial of that group starts from; the trial sets the keys of
``[tune.space]`` and trains an ordinary run (its own directory named by the config hash,
resumable) whose point enters the store with ``kind = "trial"``. Each group is one Optuna
study, kept in the same store file
(:mod:`scalelab.tune.storage`), named ``STUDY/BASE_RUN_ID/SAMPLER``.

Resuming: the same command continues a search. Finished trials (complete, pruned, failed)
count toward ``trials`` and are never trained again; a trial left *running* by a killed
process is marked failed-and-interrupted (not counted) and its parameters are asked
again first, so its run directory is found and training continues from its checkpoint.
Two trials that draw the same values are one run (same config, same directory): the
second reads the first's summary. One ``tune`` process per study at a time (the trainer's
run lock keeps two from training one run).

Pruning (``median``, ``hyperband``) reads the validation loss at each evaluation
(``train.eval_every``) through the trainer's ``on_eval`` hook; a pruned trial stops as
``stopped_early`` with the reason ``pruned ...`` and enters Optuna as PRUNED.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ConfigError
from scalelab.results.store import Store
from scalelab.runner.pool import InProcess, Job, LocalProcesses, run_pool
from scalelab.runner.ray_backend import check_backend
from scalelab.study.grid import PlannedRun, expand
from scalelab.study.studyfile import Study, as_study, load_study
from scalelab.tune.space import Param, TuneSpec, load_tune, parse_tune
from scalelab.tune.storage import optuna_storage
from scalelab.tune.trial import (
    TrainFn,
    TrialTask,
    fail_trial_dir,
    pruner_for,
    record_trial,
    run_trial,
    trial_config_id,
)


@dataclass
class TrialOutcome:
    group: str
    number: int
    params: dict[str, Any]
    state: str  # COMPLETE, PRUNED, FAIL
    value: float | None
    run_id: str
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class GroupResult:
    """One group's search: its best trial so far."""

    name: str  # the Optuna study name
    axes: dict[str, Any]
    base_run_id: str
    n_trials: int
    best_value: float | None
    best_params: dict[str, Any]
    best_run_id: str | None


@dataclass
class TuneResult:
    study: str
    db: Path
    out: Path
    spec: TuneSpec
    groups: list[GroupResult] = field(default_factory=list)
    trials: list[TrialOutcome] = field(default_factory=list)  # trained in this call
    wall_seconds: float = 0.0


def _sampler(spec: TuneSpec) -> Any:
    import optuna

    s = spec.sampler
    if s == "grid":
        return optuna.samplers.GridSampler({p.key: p.grid() for p in spec.space}, seed=spec.seed)
    if s == "random":
        return optuna.samplers.RandomSampler(seed=spec.seed)
    if s == "tpe":
        return optuna.samplers.TPESampler(
            seed=spec.seed, n_startup_trials=spec.startup, constant_liar=True
        )
    if s == "gp":
        return optuna.samplers.GPSampler(seed=spec.seed, n_startup_trials=spec.startup)
    # CMA-ES models continuous dimensions only; categorical ones are drawn at random
    return optuna.samplers.CmaEsSampler(
        seed=spec.seed, n_startup_trials=spec.startup, warn_independent_sampling=False
    )


def group_name(study: str, run: PlannedRun, sampler: str) -> str:
    """The Optuna study of one group: ``STUDY/BASE_RUN_ID/SAMPLER``. Another sampler is
    another search (so two samplers can be compared on one ladder); trials that land on
    the same config still share its run directory."""
    return f"{study}/{run.run_id}/{sampler}"


def trial_config(base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """The base config with the trial's values set (validated like any run config)."""
    values = base.to_dict()
    for key, value in params.items():
        section, name = key.split(".")
        values[section][name] = value
    try:
        return run_config_from_dict(values)
    except ConfigError as e:
        where = ", ".join(f"{k}={v}" for k, v in params.items())
        raise ConfigError(f"trial ({where}): {e}") from None


def _check_space(space: Sequence[Param], runs: Sequence[PlannedRun]) -> None:
    """Every end of every range and every choice is a valid config for every group: a bad
    space fails here, before the first trial trains."""
    for run in runs:
        for p in space:
            values = p.choices if p.kind == "categorical" else (p.low, p.high)
            for v in values:
                trial_config(run.config, {p.key: v})


# -- the search -----------------------------------------------------------------------------


def _finished_count(ostudy: Any) -> int:
    from optuna.trial import TrialState

    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
        for t in ostudy.get_trials(deepcopy=False)
    )


def _driver() -> str:
    """Who asked a trial: this host and process (a trial another live ``tune`` is running
    is its, not an interrupted one)."""
    return f"{socket.gethostname()}:{os.getpid()}"


# A trial running on another host cannot be checked from here (its pid means nothing on
# this machine): it is left alone until it has run this long, then taken as interrupted.
FOREIGN_STALE_HOURS = 24.0


def _alive(driver: Any) -> bool:
    """Whether the process that asked a trial (``host:pid``) runs on this host now."""
    host, _, pid = str(driver).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _foreign(driver: Any) -> str | None:
    """The other host a trial's driver runs on, or None (this host, or no driver recorded:
    a trial of an older version, which ran on one host)."""
    host, _, pid = str(driver).rpartition(":")
    return host if host and pid.isdigit() and host != socket.gethostname() else None


def _stale_hours() -> float:
    raw = os.environ.get("SCALELAB_TUNE_FOREIGN_HOURS", "")
    try:
        hours = float(raw) if raw.strip() else FOREIGN_STALE_HOURS
    except ValueError:
        hours = FOREIGN_STALE_HOURS
    return hours if hours > 0 else FOREIGN_STALE_HOURS


def _recover(ostudy: Any, say: Callable[[str], None] | None = None) -> int:
    """Trials left running by a killed process: marked failed (``interrupted``, not
    counted) and their parameters asked again first, so their runs resume. A trial of this
    host is interrupted when its driver's pid is gone; one that another live ``tune`` runs
    is its own, left alone. A trial of another host is left alone (its pid cannot be checked
    from here) until it has run FOREIGN_STALE_HOURS (``SCALELAB_TUNE_FOREIGN_HOURS``), then
    taken as interrupted; ``say`` is told which and why."""
    import datetime

    from optuna.trial import TrialState

    now = datetime.datetime.now()
    limit = datetime.timedelta(hours=_stale_hours())
    stale, foreign = [], []
    for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = t.user_attrs.get("driver")
        host = _foreign(driver)
        if host is None:
            if not _alive(driver):
                stale.append(t)
            continue
        started = t.datetime_start or now
        if now - started > limit:
            stale.append(t)
            why = f"started {now - started} ago, past {limit.total_seconds() / 3600:g} h"
            foreign.append(f"trial {t.number} of {host} taken as interrupted ({why})")
        else:
            foreign.append(
                f"trial {t.number} running on {host} left alone (its process cannot be "
                f"checked from here; taken as interrupted after {limit.total_seconds() / 3600:g} h "
                "without finishing: SCALELAB_TUNE_FOREIGN_HOURS)"
            )
    for t in stale:
        _ask_again(ostudy, t)
    if say is not None:
        for line in foreign:
            say(line)
    return len(stale)


@contextlib.contextmanager
def _budget_lock(db: Path) -> Iterator[None]:
    """Serialises "count the trials, ask one" across every ``tune`` on one store."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(db.with_name(f".{db.name}.tune-lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _taken(ostudy: Any) -> int:
    """Trials that count against ``trials`` now: finished ones and those running (in this
    process or in another ``tune`` on the same store)."""
    from optuna.trial import TrialState

    running = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return _finished_count(ostudy) + len(running)


def _ask_again(ostudy: Any, trial: Any) -> None:
    """An interrupted trial (live or frozen): failed and marked ``interrupted`` (not counted
    toward ``trials``), its values queued to be asked first, so its run resumes.

    Queued as ``study.enqueue_trial`` does, plus the grid sampler's ``grid_id`` (as Optuna's
    own RetryFailedTrialCallback keeps it): a re-asked grid point without one makes
    ``GridSampler.after_trial`` fail once a single grid point is left."""
    from optuna.trial import TrialState, create_trial

    storage = ostudy._storage
    frozen = storage.get_trial(trial._trial_id)
    storage.set_trial_user_attr(frozen._trial_id, "interrupted", True)
    storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
    grid = {k: v for k, v in frozen.system_attrs.items() if k in ("grid_id", "search_space")}
    ostudy.add_trial(
        create_trial(
            state=TrialState.WAITING,
            system_attrs={"fixed_params": dict(frozen.params), **grid},
            user_attrs={"resumes": frozen.number},
        )
    )


def tune(
    study: Study | str | Path | Mapping[str, Any],
    *,
    db: str | Path = "results.db",
    out: str | Path = "runs",
    trials: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str = "local",
    address: str | None = None,
    tune_spec: TuneSpec | Mapping[str, Any] | None = None,
    sampler: str | None = None,
    trainer: TrainFn | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search ``[tune.space]`` for every group of the study, ``trials`` per group.

    ``study`` is a path to a study TOML with a ``[tune]`` section (or a parsed ``Study``
    with ``tune_spec``). ``workers`` trials train at once in spawned processes of
    ``threads`` torch threads each (default 1, as in ``sweep``). ``sampler`` replaces
    ``tune.sampler`` (a separate search of the same space). ``trainer`` replaces
    ``scalelab.train`` (tests). Returns each group's best trial and the trials run now.
    """
    import optuna

    t0 = time.perf_counter()
    if tune_spec is None:
        if not isinstance(study, (str, Path)):
            raise ConfigError("tune(study) needs a TOML path with [tune], or tune_spec=")
        tune_spec = load_tune(study)
        spec_study = load_study(study)
    else:
        spec_study = as_study(study)
        if isinstance(tune_spec, Mapping):
            tune_spec = parse_tune(tune_spec, grid_keys=[k for k, _ in spec_study.grid])
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    check_backend(backend, address, workers=workers, threads=threads)
    ts: TuneSpec = tune_spec
    if sampler is not None:  # --sampler: the same space searched another way
        ts = parse_tune({**_raw(ts), "sampler": sampler})
    if spec_study.branches:  # a trial is one run from scratch; a branch needs its parent
        raise ConfigError(
            'tune searches dedicated runs: remove study.budgets = "branches" (and '
            "study.cooldown) from the study it tunes"
        )
    runs = expand(spec_study)
    _check_space(ts.space, runs)
    n_trials = ts.trials_per_group(trials)
    if ts.sampler == "grid" and n_trials > ts.grid_size():
        n_trials = ts.grid_size()
    say = log or (print if progress else (lambda _s: None))
    # a Ray task may start in another directory, or on another node: absolute paths
    out_dir, db_path = (Path(out).resolve() if backend == "ray" else Path(out)), Path(db)
    out_dir.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(db_path)
    with Store(db_path) as store:
        store.put_study(
            spec_study.name,
            {**spec_study.to_dict(), "tune": ts.to_dict()},
            out_dir.resolve(),
        )
    result = TuneResult(spec_study.name, db_path, out_dir, ts)

    studies: dict[str, Any] = {}
    bases: dict[str, PlannedRun] = {}
    for run in runs:
        name = group_name(spec_study.name, run, ts.sampler)
        ostudy = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=_sampler(ts),
            pruner=pruner_for(ts),
            direction="minimize",
            load_if_exists=True,
        )
        recovered = _recover(ostudy, say)
        if recovered:
            say(f"{_label(run)}: {recovered} interrupted trial(s) will resume")
        studies[name], bases[name] = ostudy, run

    # (group, trials left) in study order; trials interleave across groups so that every
    # size has some answer early
    left = {name: max(0, n_trials - _finished_count(s)) for name, s in studies.items()}
    queue = _interleave(left)

    def ask(name: str) -> tuple[Any, TrialTask] | None:
        """The next trial of group ``name``, or None when its budget is spent (two tunes
        on one store share ``trials``: the count and the ask happen under one lock)."""
        ostudy, run = studies[name], bases[name]
        with _budget_lock(db_path):
            if _taken(ostudy) >= n_trials:
                return None
            trial = ostudy.ask()
            trial.set_user_attr("driver", _driver())
        params = {p.key: p.suggest(trial) for p in ts.space}
        cfg = trial_config(run.config, params)
        task = TrialTask(
            db=str(db_path),
            out=str(out_dir),
            study=spec_study.name,
            group=name,
            trial_id=trial._trial_id,
            number=trial.number,
            params=params,
            config=cfg.to_dict(),
            axes={k: v for k, v in run.axes.items()},
            metric=ts.metric,
            spec={k: v for k, v in ts.to_dict().items() if k != "space"},
            trainer=trainer,
        )
        return trial, task

    def tell(trial: Any, task: TrialTask, res: Mapping[str, Any]) -> None:
        from optuna.trial import TrialState

        ostudy = studies[task.group]
        state = getattr(TrialState, res["state"])
        try:
            ostudy.tell(trial, res["value"] if state == TrialState.COMPLETE else None, state=state)
        except RuntimeError as e:
            # GridSampler calls study.stop() once the grid is covered, which Optuna allows
            # only inside optimize(); the trial's result is stored before that (a finally)
            if "stop" not in str(e):
                raise
        outcome = TrialOutcome(
            task.group, task.number, task.params, res["state"], res["value"], res["run_id"],
            res["reason"], res["seconds"],
        )  # fmt: skip
        result.trials.append(outcome)
        try:
            best = ostudy.best_value
        except ValueError:
            best = None
        vals = ", ".join(f"{k}={_fmt(v)}" for k, v in task.params.items())
        got = f"{ts.metric} {res['value']:.4f}" if res["value"] is not None else res["state"]
        best_s = f"  best {best:.4f}" if best is not None else ""
        say(
            f"{_label(bases[task.group])} trial {task.number} ({vals}): {got}"
            f"{best_s}  [{res['seconds']:.1f}s]"
        )

    _run_trials(
        queue,
        ask,
        tell,
        backend=backend,
        address=address,
        workers=workers,
        threads=threads,
        db=str(db_path.resolve()),
        spec={k: v for k, v in ts.to_dict().items() if k != "space"},
        pruning=ts.pruner != "none",
    )

    for name, ostudy in studies.items():
        result.groups.append(_group_result(name, bases[name], ostudy))
    result.wall_seconds = time.perf_counter() - t0
    return result


def _raw(ts: TuneSpec) -> dict[str, Any]:
    """A TuneSpec back as its TOML table (to re-parse with one key changed)."""
    space: dict[str, Any] = {}
    for p in ts.space:
        if p.kind == "categorical":
            space[p.key] = list(p.choices)
        else:
            rng = {"low": p.low, "high": p.high, "log": p.log, "step": p.step, "n": p.n}
            space[p.key] = {k: v for k, v in rng.items() if v is not None}
    d = {k: v for k, v in ts.to_dict().items() if k != "space" and v is not None}
    return {**d, "space": space}


def _interleave(left: Mapping[str, int]) -> list[str]:
    """Round-robin over groups: g1, g2, g3, g1, g2, g3, ..."""
    counts = dict(left)
    out: list[str] = []
    while any(counts.values()):
        for name in counts:
            if counts[name]:
                out.append(name)
                counts[name] -= 1
    return out


def _run_trials(
    queue: list[str],
    ask: Callable[[str], tuple[Any, TrialTask] | None],
    tell: Callable[[Any, TrialTask, Mapping[str, Any]], None],
    *,
    backend: str,
    address: str | None,
    workers: int | None,
    threads: int | None,
    db: str,
    spec: Mapping[str, Any],
    pruning: bool,
) -> None:
    """Every trial through the one pool (:func:`scalelab.runner.pool.run_pool`), as ``sweep``
    runs its runs: in this process, in ``workers`` spawned processes, or as Ray tasks. A
    new trial is asked only when a slot frees, so the sampler sees every result so far.

    A worker that dies (killed, out of memory) breaks a local pool: every trial in flight
    is marked interrupted and asked again first, with its values, so its run resumes from
    its checkpoint in a new pool; the interrupted trials then run alone until they end, and
    a trial whose worker dies while it runs alone
    :data:`~scalelab.runner.pool.MAX_POOL_CRASHES` times is failed. On Ray a dead worker's
    task is retried by Ray itself."""
    jobs = [Job(group) for group in queue]  # a group's next trial, asked when it starts
    trials: dict[int, Any] = {}  # trial id -> the Optuna trial (it stays in this process)

    def start(job: Job) -> tuple[Any, str] | None:
        got = ask(job.key)
        if got is None:  # the group's budget is spent (another tune on the store took it)
            return None
        trial, task = got
        trials[task.trial_id] = trial
        return task, trial_config_id(task)

    def finished(job: Job, task: TrialTask, res: Mapping[str, Any]) -> bool:
        tell(trials.pop(task.trial_id), task, res)
        return True

    def failed(job: Job, task: TrialTask | None, why: str) -> None:
        if task is None:  # a trial needs no other run: never reached
            return
        fail_trial_dir(task, why)
        tell(trials.pop(task.trial_id), task, record_trial(task, 0.0))

    def retry(job: Job, task: TrialTask) -> Job:
        trial = trials.pop(task.trial_id)
        _ask_again(trial.study, trial)  # asked first, with its values: its run resumes
        return job

    hooks: dict[str, Any] = {"start": start, "failed": failed, "retry": retry}
    if backend == "ray":
        from scalelab.tune.ray_trials import trials_on_ray

        def finished_remote(job: Job, task: TrialTask, res: Mapping[str, Any]) -> bool:
            return finished(job, task, record_trial(task, res["seconds"], res["record"]))

        with trials_on_ray(address, workers, threads or 1, db, spec, pruning) as tasks:
            run_pool(jobs, tasks, finished=finished_remote, **hooks)
    elif (workers or 1) > 1:
        run_pool(
            jobs, LocalProcesses(run_trial, workers or 1, threads or 1), finished=finished, **hooks
        )
    else:
        import torch

        saved = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            run_pool(jobs, InProcess(run_trial), finished=finished, **hooks)
        finally:
            torch.set_num_threads(saved)


def _group_result(name: str, run: PlannedRun, ostudy: Any) -> GroupResult:
    from optuna.trial import TrialState

    done = ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = min(done, key=lambda t: t.value) if done else None
    return GroupResult(
        name=name,
        axes=dict(run.axes),
        base_run_id=run.run_id,
        n_trials=_finished_count(ostudy),
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else {},
        best_run_id=trial_config(run.config, best.params).run_id() if best else None,
    )


def _label(run: PlannedRun) -> str:
    a = run.axes
    parts = [str(a.get("size", "")), str(a.get("budget", "") or "")]
    parts += [f"{k}={_fmt(v)}" for k, v in a.items() if "." in k]
    return " ".join(p for p in parts if p) or run.run_id


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


__all__ = [
    "GroupResult",
    "TrialOutcome",
    "TuneResult",
    "group_name",
    "trial_config",
    "tune",
]
