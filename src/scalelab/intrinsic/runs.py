"""d90 of fine-tuning a run on a task (``scalelab intrinsic RUN --task T``).

The model is the run's pretrained network with the task's head (as ``scalelab finetune``
builds it, the head's initial weights fixed by the seed); every one of its parameters is in
theta (D counts them all). Performance is validation accuracy; "full" is every parameter
trained for the same number of steps (Aghajanyan et al. 2021 compare with full fine-tuning
the same way). ``initial=True`` starts from the run's weights *before* pretraining, the
step-0 point of a d90-against-pretraining curve. Results go to
``RUN/intrinsic/<task>-<projection>[-said][-initial].json`` and, with ``db``, the store's
``intrinsic`` table.

``task = "lm"`` measures pretraining from scratch instead (Li et al. 2018 measured it for
their networks trained from scratch): the run's initial weights, its own causal-LM objective
on windows of its training split, and the loss *reduction* on validation windows as the
performance (see :mod:`scalelab.intrinsic.search`), so d90 is the subspace that achieves 90%
of what training every weight for ``full_steps`` achieves.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scalelab.errors import ScalelabError
from scalelab.intrinsic.search import DEFAULT_DIMS, IntrinsicResult, intrinsic_dimension

LM_TASK = "lm"  # pretraining from scratch: the run's own objective


def _chance_floor(chance: float, n: int) -> float:
    """The accuracy full fine-tuning must exceed for d90 to mean something: chance plus the
    binomial margin a guesser exceeds 2.5% of the time on ``n`` items, and at least 0.05
    (an exact-match task has chance ~0, where 90% of 1% would be no finding)."""
    return chance + max(0.05, 1.96 * math.sqrt(chance * (1 - chance) / n))


def _check_settings(
    dims: Sequence[int],
    steps: int,
    lr: float,
    full_lr: float,
    full_steps: int | None,
    batch_size: int,
    threshold: float,
    resolution: float,
) -> None:
    """The measurement's settings, checked before any model is loaded."""
    from scalelab.errors import ConfigError

    def bad(what: str, value: object, want: str) -> ConfigError:
        return ConfigError(f"{what} must be {want}, got {value!r}")

    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise bad("--dims", list(dims), "positive integers (10,30,100)")
    for name, v in (("--steps", steps), ("--full-steps", full_steps), ("batch size", batch_size)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise bad(name, v, "a whole number >= 1")
    for name, x in (("--lr", lr), ("--full-lr", full_lr)):
        if not (math.isfinite(x) and x > 0):
            raise bad(name, x, "a finite number > 0")
    if not (0 < threshold <= 1):
        raise bad("the threshold", threshold, "in (0, 1] (0.9: 90% of full fine-tuning)")
    if not (0 <= resolution <= 1):  # the bisection's relative bracket: 0 exact, 1 none
        raise bad("the resolution", resolution, "in [0, 1]")


def run_intrinsic(
    run: str | Path,
    task: str,
    *,
    dims: Sequence[int] = DEFAULT_DIMS,
    projection: str = "fastfood",
    said: bool = False,
    initial: bool = False,
    steps: int = 200,
    lr: float = 0.1,
    full_lr: float = 1e-3,
    full_steps: int | None = None,
    batch_size: int = 32,
    threshold: float = 0.9,
    resolution: float = 0.1,
    seed: int = 0,
    db: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    verify: bool = True,
) -> IntrinsicResult:
    _check_settings(dims, steps, lr, full_lr, full_steps, batch_size, threshold, resolution)
    if task == LM_TASK:
        return _lm_intrinsic(
            run, dims=dims, projection=projection, said=said, steps=steps, lr=lr,
            full_lr=full_lr, full_steps=full_steps, batch_size=batch_size, threshold=threshold,
            resolution=resolution, seed=seed, db=db, log=log,
        )  # fmt: skip
    from scalelab.errors import ConfigError
    from scalelab.tasks.finetune import (
        accuracy,
        batch_at,
        collate,
        finetune_config,
        prepare,
        task_loss,
        task_model,
    )

    cfg = finetune_config(method="full", batch_size=batch_size, seed=seed)
    loaded, t, splits = prepare(run, task, cfg, initial=initial, verify=verify)
    if t.output != "class" and not splits.val:
        raise ConfigError(f"task {task!r} has no validation examples")
    import torch

    settings = {
        "steps": steps, "lr": lr, "full_lr": full_lr, "full_steps": full_steps,
        "batch_size": batch_size, "dims": list(dims), "resolution": resolution, "seed": seed,
    }  # fmt: skip
    progress = _Progress(
        loaded.run_dir, _name(t.name, projection, said, initial),
        {**settings, "threshold": threshold, "step": loaded.step},
    )  # fmt: skip
    torch.manual_seed(seed)
    model = task_model(loaded.model, t, cfg)
    per_epoch = max(1, len(splits.train) // batch_size)
    data = [collate(batch_at(splits.train, s, cfg), t) for s in range(per_epoch)]
    val = [collate(splits.val[i : i + 128], t) for i in range(0, len(splits.val), 128)]

    def loss_fn(module: Any, batch: Any) -> torch.Tensor:
        return task_loss(module, batch, t)

    def performance(module: Any) -> float:
        return accuracy(module, splits.val, t) / len(splits.val)

    result = intrinsic_dimension(
        model,
        loss_fn,
        data,
        performance=performance,
        eval_data=val,
        dims=dims,
        projection=projection,
        said=said,
        threshold=threshold,
        steps=steps,
        lr=lr,
        full_lr=full_lr,
        full_steps=full_steps,
        # above chance by the binomial margin of the validation split, else d90 is undefined
        min_full=_chance_floor(t.chance, len(splits.val)),
        resolution=resolution,
        seed=seed,
        log=log,
        **progress.hooks(),
    )
    _save(loaded.run_dir, loaded.run_id, loaded.step, t.name, initial, result, db, settings)
    progress.finish()
    return result


def record_intrinsic(db: str | Path, payload: dict[str, Any]) -> None:
    """Put one ``RUN/intrinsic/*.json`` payload into the store's ``intrinsic`` table."""
    from scalelab.tasks.results import put_intrinsic

    put_intrinsic(
        db,
        {
            "run_id": payload["run_id"],
            "task": payload["task"],
            "projection": payload["projection"],
            "said": int(payload["said"]),
            "initial": int(payload["initial"]),
            "d90": payload["d90"],
            "D": payload["D"],
            "full_performance": payload["full_performance"],
            "target": payload["target"],
            "step": payload["step"],
            "seconds": payload["seconds"],
            "trials_json": json.dumps(payload["trials"]),
            "note": payload.get("note"),
        },
    )


def _name(task: str, projection: str, said: bool, initial: bool) -> str:
    return f"{task}-{projection}{'-said' if said else ''}{'-initial' if initial else ''}"


class _Progress:
    """The trials of a search finished so far, kept in ``RUN/intrinsic/NAME.partial.json``
    as each ends: a search killed midway resumes from them (the same settings only) instead
    of training every dimension again; removed once the result is written."""

    def __init__(self, run_dir: Path, name: str, settings: dict[str, Any]) -> None:
        from scalelab import rundir

        self.path = run_dir / "intrinsic" / f"{name}.partial.json"
        self.settings = json.loads(json.dumps(settings))  # as it reads back
        self.done: dict[str, list[float]] = {}
        if self.path.is_file():
            with contextlib.suppress(ScalelabError):
                kept = rundir.read_json(self.path)
                if isinstance(kept, dict) and kept.get("settings") == self.settings:
                    self.done = {str(k): list(v) for k, v in kept.get("trials", {}).items()}

    def hooks(self) -> dict[str, Any]:
        return {"done": self.done, "on_trial": self._keep}

    def _keep(self, key: str, trial: Any) -> None:
        from scalelab import rundir

        self.done[key] = [trial.performance, trial.loss, trial.seconds]
        self.path.parent.mkdir(exist_ok=True)
        rundir.write_json(self.path, {"settings": self.settings, "trials": self.done})

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def _save(
    run_dir: Path,
    run_id: str,
    step: int,
    task: str,
    initial: bool,
    result: IntrinsicResult,
    db: str | Path | None,
    settings: dict[str, Any],
) -> None:
    from scalelab import rundir

    out_dir = run_dir / "intrinsic"
    out_dir.mkdir(exist_ok=True)
    name = _name(task, result.projection, result.said, initial)
    payload = {
        **result.to_dict(),
        "run_id": run_id,
        "task": task,
        "step": step,
        "initial": initial,
        "settings": settings,
    }
    rundir.write_json(out_dir / f"{name}.json", payload)
    if db is not None:
        record_intrinsic(db, payload)


def _lm_intrinsic(
    run: str | Path,
    *,
    dims: Sequence[int],
    projection: str,
    said: bool,
    steps: int,
    lr: float,
    full_lr: float,
    full_steps: int | None,
    batch_size: int,
    threshold: float,
    resolution: float,
    seed: int,
    db: str | Path | None,
    log: Callable[[str], None] | None,
) -> IntrinsicResult:
    """d90 of pretraining from scratch on the run's own data (see the module docstring)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from scalelab.data import load_tokens
    from scalelab.runs import open_run, read_config
    from scalelab.tasks.runs import check_causal
    from scalelab.train.batches import TrainSampler, gather, val_windows

    cfg = read_config(run)
    check_causal(cfg, "the language-modelling objective")
    loaded = open_run(run, initial=True)
    data = load_tokens(cfg.data, cfg.model.vocab_size)
    T = cfg.model.context
    sampler = TrainSampler(np.asarray(data.train), T, seed)
    n_batches = max(1, (full_steps or steps))
    train = [
        sampler.batch(i * batch_size, batch_size, torch.device("cpu")) for i in range(n_batches)
    ]
    starts = val_windows(np.asarray(data.val), T, 2)
    windows = gather(np.asarray(data.val), starts, T + 1, torch.device("cpu"))
    val = [(windows[i : i + 32, :-1], windows[i : i + 32, 1:]) for i in range(0, len(windows), 32)]

    def loss_fn(module: Any, batch: Any) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(module(x).float().flatten(0, 1), y.flatten())

    settings = {
        "steps": steps, "lr": lr, "full_lr": full_lr, "full_steps": full_steps,
        "batch_size": batch_size, "dims": list(dims), "resolution": resolution, "seed": seed,
    }  # fmt: skip
    progress = _Progress(
        loaded.run_dir, _name(LM_TASK, projection, said, True),
        {**settings, "threshold": threshold},
    )  # fmt: skip

    result = intrinsic_dimension(
        loaded.model,
        loss_fn,
        train,
        eval_data=val,
        dims=dims,
        projection=projection,
        said=said,
        threshold=threshold,
        steps=steps,
        lr=lr,
        full_lr=full_lr,
        full_steps=full_steps,
        resolution=resolution,
        seed=seed,
        log=log,
        **progress.hooks(),
    )
    _save(loaded.run_dir, loaded.run_id, 0, LM_TASK, True, result, db, settings)
    progress.finish()
    return result
