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

import concurrent.futures as cf
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ConfigError, ScalelabError
from scalelab.rundir import write_json as write_json_atomic
from scalelab.study.cost import config_counts
from scalelab.study.executor import _busy
from scalelab.study.grid import PlannedRun, expand
from scalelab.study.records import read_run
from scalelab.study.store import Store
from scalelab.study.studyfile import Study, as_study, load_study
from scalelab.tune.space import Param, TuneSpec, load_tune, parse_tune
from scalelab.tune.storage import optuna_storage

TrainFn = Callable[..., Any]  # train(cfg, out, *, resume, progress, on_eval) -> summary


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


def _pruner(spec: TuneSpec) -> Any:
    import optuna

    if spec.pruner == "median":
        # Stop a trial whose loss at an evaluation is worse than the median of the earlier
        # trials at that step (Golovin et al. 2017, Google Vizier's median stopping rule).
        return optuna.pruners.MedianPruner(n_startup_trials=spec.startup, n_warmup_steps=0)
    if spec.pruner == "hyperband":
        # Successive halving over brackets of budgets (Li et al. 2018), budgets in steps
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


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


# -- one trial --------------------------------------------------------------------------------


@dataclass
class _TrialTask:
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


def _run_trial(task: _TrialTask) -> dict[str, Any]:
    """Train one trial's run (resuming its directory if there is one), report its
    validation curve to the pruner, record its point; returns the outcome for ``tell``."""
    import optuna

    spec = TuneSpec(**{**task.spec, "space": ()})
    cfg = run_config_from_dict(task.config)
    run_dir = Path(task.out) / cfg.run_id()
    trial = None
    if spec.pruner != "none":
        ostudy = optuna.load_study(
            study_name=task.group, storage=optuna_storage(task.db), pruner=_pruner(spec)
        )
        trial = optuna.trial.Trial(ostudy, task.trial_id)

    def on_eval(step: int, val_loss: float) -> str | None:
        if trial is None or not math.isfinite(val_loss):
            return None
        trial.report(val_loss, step)
        if trial.should_prune():
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
            if _busy(run_dir):  # another search (or sweep) trains this very config: wait
                time.sleep(2.0)
                continue
            error = f"{type(e).__name__}: {e}"
        break
    seconds = time.perf_counter() - t0
    if not (run_dir / "config.json").is_file():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", cfg.to_dict())
    rec = read_run(run_dir)
    if not rec.ended:
        write_json_atomic(
            run_dir / "summary.json",
            {"run_id": rec.run_id, "status": "failed", "reason": error or "no summary"},
        )
        rec = read_run(run_dir)
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


def _worker_run_trial(task: _TrialTask) -> dict[str, Any]:
    return _run_trial(task)


# -- the search -----------------------------------------------------------------------------


def _finished_count(ostudy: Any) -> int:
    from optuna.trial import TrialState

    return sum(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
        for t in ostudy.get_trials(deepcopy=False)
    )


def _recover(ostudy: Any) -> int:
    """Trials left running by a killed process: marked failed (``interrupted``, not
    counted) and their parameters asked again first, so their runs resume."""
    from optuna.trial import TrialState

    stale = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    storage = ostudy._storage
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        ostudy.enqueue_trial(t.params, user_attrs={"resumes": t.number}, skip_if_exists=False)
    return len(stale)


def tune(
    study: Study | str | Path | Mapping[str, Any],
    *,
    db: str | Path = "results.db",
    out: str | Path = "runs",
    trials: int | None = None,
    workers: int = 1,
    threads: int | None = None,
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
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    ts: TuneSpec = tune_spec
    if sampler is not None:  # --sampler: the same space searched another way
        ts = parse_tune({**_raw(ts), "sampler": sampler})
    runs = expand(spec_study)
    _check_space(ts.space, runs)
    n_trials = ts.trials_per_group(trials)
    if ts.sampler == "grid" and n_trials > ts.grid_size():
        n_trials = ts.grid_size()
    say = log or (print if progress else (lambda _s: None))
    out_dir, db_path = Path(out), Path(db)
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
            pruner=_pruner(ts),
            direction="minimize",
            load_if_exists=True,
        )
        recovered = _recover(ostudy)
        if recovered:
            say(f"{_label(run)}: {recovered} interrupted trial(s) will resume")
        studies[name], bases[name] = ostudy, run

    # (group, trials left) in study order; trials interleave across groups so that every
    # size has some answer early
    left = {name: max(0, n_trials - _finished_count(s)) for name, s in studies.items()}
    queue = _interleave(left)

    def ask(name: str) -> tuple[Any, _TrialTask]:
        ostudy, run = studies[name], bases[name]
        trial = ostudy.ask()
        params = {p.key: p.suggest(trial) for p in ts.space}
        cfg = trial_config(run.config, params)
        task = _TrialTask(
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

    def tell(trial: Any, task: _TrialTask, res: Mapping[str, Any]) -> None:
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

    if workers == 1:
        import torch

        saved = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            for name in queue:
                trial, task = ask(name)
                tell(trial, task, _run_trial(task))
        finally:
            torch.set_num_threads(saved)
    else:
        _run_parallel(queue, ask, tell, workers, threads or 1)

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


def _run_parallel(
    queue: list[str],
    ask: Callable[[str], tuple[Any, _TrialTask]],
    tell: Callable[[Any, _TrialTask, Mapping[str, Any]], None],
    workers: int,
    threads: int,
) -> None:
    """At most ``workers`` trials in flight, in spawned processes (as ``sweep`` does);
    a new trial is asked only when a slot frees, so the sampler sees every result so far."""
    from scalelab.study.executor import _init_worker

    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(None, threads)
    )
    pending = list(queue)
    in_flight: dict[cf.Future[dict[str, Any]], tuple[Any, _TrialTask]] = {}
    try:
        while pending or in_flight:
            while pending and len(in_flight) < workers:
                trial, task = ask(pending.pop(0))
                in_flight[pool.submit(_worker_run_trial, task)] = (trial, task)
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                trial, task = in_flight.pop(fut)
                tell(trial, task, fut.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


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
