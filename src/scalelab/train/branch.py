"""WSD branches: one long run per size, a shorter run's point from its cooldown alone.

With the warmup-stable-decay schedule the learning rate of the stable phase does not depend
on how long the run will be, so the state of a long run at ``T`` tokens is also the state a
shorter run would reach at ``T`` before its own cooldown (up to the warmup, which is a
fraction of the long run's length unless ``train.warmup_tokens`` fixes it for both). Hägele et al. 2024 ("Scaling
Laws and Compute-Optimal Training Beyond Fixed Training Durations", sec. 4) train one run
per model size this way and branch the cooldowns off it: each budget costs only its
cooldown, and a 20% cooldown matches a cosine run of the same length.

* A **parent** (``train.save_at = [T1, T2, ...]``, WSD) keeps its full state (weights,
  optimizer, RNG, counters) at those token counts under ``RUN_DIR/branch_points/``.
* A **branch** (``train.branch_of = PARENT_ID``, ``train.branch_at = T``) is an ordinary
  run directory with its own id and budget. On its first start it loads the parent's state
  at ``T`` (and the parent's metrics up to ``T``) and trains on from there: stable until
  its own cooldown starts (``train.decay_fraction`` of its own length, shape
  ``train.cooldown``), then the cooldown to its budget. It sees the same data as a run
  trained from scratch to its budget would (the sampler depends on the step and the seed
  only). Once started it resumes from its own checkpoints, keeps the parent's precision,
  and exports like any run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalelab import rundir
from scalelab.config import RunConfig, TrainConfig
from scalelab.errors import ConfigError
from scalelab.train.checkpoint import PREFIX, Checkpoint, verify
from scalelab.train.schedule import cooldown_start, warmup_steps

BRANCH_POINTS = "branch_points"  # under a parent's run directory

# what a branch shares with its parent (everything else that matters to the trajectory up
# to the branch point: the model, the data and these train keys)
SHARED_TRAIN = (
    "batch_size",
    "objective",
    "lr",
    "min_lr_ratio",
    "schedule",
    "warmup_tokens",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip",
    "seed",
)


def _step_of(tokens: int, tokens_per_step: int, key: str) -> int:
    if tokens % tokens_per_step:
        lo = tokens // tokens_per_step * tokens_per_step
        raise ConfigError(
            f"{key} = {tokens} is not a whole number of steps of {tokens_per_step} tokens "
            f"(batch_size x context): use {lo} or {lo + tokens_per_step}"
        )
    return tokens // tokens_per_step


def save_steps(tc: TrainConfig, tokens_per_step: int, total: int) -> set[int]:
    """The steps at which a parent keeps its state: each in the stable phase (after warmup,
    before its own cooldown), or a ConfigError naming the point, before any work."""
    steps = set()
    warm = warmup_steps(tc, total, tokens_per_step)
    cool = cooldown_start(tc, total, tokens_per_step)
    for t in tc.save_at:
        s = _step_of(t, tokens_per_step, "train.save_at")
        if not warm <= s <= cool:
            raise ConfigError(
                f"train.save_at = {t} tokens (step {s}) is outside this run's stable phase, "
                f"steps {warm} to {cool} (after warmup, before its cooldown): keep branch "
                "points in the stable phase, or lengthen the run"
            )
        steps.add(s)
    return steps


def branch_point_dir(parent_dir: Path, step: int) -> Path:
    return parent_dir / BRANCH_POINTS / f"{PREFIX}{step:08d}"


def locate(cfg: RunConfig, run_dir: Path, tokens_per_step: int, total: int) -> Checkpoint:
    """The parent's state a branch starts from, checked before any work: the parent is in
    the same runs directory, shares the branch's model, data and optimizer settings, and
    kept an intact state at ``train.branch_at``, which lies before the branch's cooldown."""
    tc = cfg.train
    assert tc.branch_of is not None and tc.branch_at is not None
    step = _step_of(tc.branch_at, tokens_per_step, "train.branch_at")
    warm = warmup_steps(tc, total, tokens_per_step)
    cool = cooldown_start(tc, total, tokens_per_step)
    if not warm <= step <= cool:
        raise ConfigError(
            f"train.branch_at = {tc.branch_at} tokens (step {step}) must lie in this branch's "
            f"stable phase, steps {warm} to {cool}: "
            f"a branch of {total} steps with train.decay_fraction = {tc.decay_fraction} "
            "starts its cooldown there"
        )
    parent = run_dir.parent / tc.branch_of
    if not (parent / rundir.CONFIG).is_file():
        raise ConfigError(
            f"the branch's parent run {tc.branch_of} is not in {run_dir.parent}: train the "
            "parent first (a study with budgets = 'branches' orders them)"
        )
    _check_same_run(cfg, rundir.read_json(parent / rundir.CONFIG), tc.branch_of)
    where = branch_point_dir(parent, step)
    problem = verify(where) if where.is_dir() else "it was not kept"
    if problem is not None:
        raise ConfigError(
            f"the parent run {tc.branch_of} has no intact state at {tc.branch_at} tokens "
            f"({problem}): add {tc.branch_at} to the parent's train.save_at and train it"
        )
    state = json.loads((where / "state.json").read_text())
    return Checkpoint(where, int(state["step"]), state)


def _check_same_run(cfg: RunConfig, parent: Any, parent_id: str) -> None:
    mine = cfg.to_dict()
    if not isinstance(parent, dict):
        raise ConfigError(f"the parent run {parent_id}'s config.json is not a config")
    for section in ("model", "data"):
        if json.dumps(parent.get(section), sort_keys=True) != json.dumps(
            mine[section], sort_keys=True
        ):
            raise ConfigError(
                f"a branch trains the parent's model on the parent's data: its [{section}] "
                f"differs from run {parent_id}'s"
            )
    for key in SHARED_TRAIN:
        if parent.get("train", {}).get(key) != mine["train"][key]:
            raise ConfigError(
                f"a branch continues its parent's training: train.{key} = "
                f"{mine['train'][key]!r} differs from run {parent_id}'s "
                f"{parent.get('train', {}).get(key)!r}"
            )


def point_kept(cfg: RunConfig, runs_dir: Path) -> bool:
    """Whether a branch's parent (in ``runs_dir``) has kept an intact state at the branch's
    point, finished or not: the state is written whole before it is renamed into place
    (:func:`scalelab.train.checkpoint.save_checkpoint`) and checked here against its
    checksums, so the branch may start now, and a later crash of the parent cannot take it
    away. The sweep's pool asks this to start a branch as soon as its parent has passed its
    point, not once the parent has finished."""
    tc = cfg.train
    if tc.branch_of is None or tc.branch_at is None:
        return False
    per_step = tc.batch_size * cfg.model.context
    if tc.branch_at % per_step:
        return False  # the trainer names the fix
    where = branch_point_dir(runs_dir / tc.branch_of, tc.branch_at // per_step)
    return where.is_dir() and verify(where) is None


def parent_metrics(cfg: RunConfig, run_dir: Path, step: int) -> list[dict[str, Any]]:
    """The parent's metrics rows up to the branch point: the start of the branch's curve."""
    assert cfg.train.branch_of is not None
    rows = rundir.read_metrics(run_dir.parent / cfg.train.branch_of)
    return [r for r in rows if isinstance(r.get("step"), int) and r["step"] <= step]


def summary_fields(cfg: RunConfig, total_tokens: int) -> dict[str, Any] | None:
    """What ``summary.json`` says of a branch (None for any other run)."""
    tc = cfg.train
    if tc.branch_of is None or tc.branch_at is None:
        return None
    return {
        "parent": tc.branch_of,
        "at_tokens": tc.branch_at,
        "trained_tokens": total_tokens - tc.branch_at,
        "cooldown": tc.cooldown,
        "decay_fraction": tc.decay_fraction,
    }


__all__ = [
    "BRANCH_POINTS",
    "locate",
    "parent_metrics",
    "point_kept",
    "save_steps",
    "summary_fields",
]
