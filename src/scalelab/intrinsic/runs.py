"""d90 of fine-tuning a run on a task (``scalelab intrinsic RUN --task T``).

The model is the run's pretrained network with the task's head (as ``scalelab finetune``
builds it, the head's initial weights fixed by the seed); every one of its parameters is in
theta (D counts them all). Performance is validation accuracy; "full" is every parameter
trained for the same number of steps (Aghajanyan et al. 2021 compare with full fine-tuning
the same way). ``initial=True`` starts from the run's weights *before* pretraining, the
step-0 point of a d90-against-pretraining curve. Results go to
``RUN/intrinsic/<task>-<projection>[-said][-initial].json`` and, with ``db``, the store's
``intrinsic`` table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from scalelab.intrinsic.search import DEFAULT_DIMS, IntrinsicResult, intrinsic_dimension


def _chance_floor(chance: float, n: int) -> float:
    """The accuracy full fine-tuning must exceed for d90 to mean something: chance plus the
    binomial margin a guesser exceeds 2.5% of the time on ``n`` items, and at least 0.05
    (an exact-match task has chance ~0, where 90% of 1% would be no finding)."""
    return chance + max(0.05, 1.96 * math.sqrt(chance * (1 - chance) / n))


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
) -> IntrinsicResult:
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
    from scalelab.train import rundir

    cfg = finetune_config(method="full", batch_size=batch_size, seed=seed)
    loaded, t, splits = prepare(run, task, cfg, initial=initial)
    if t.output != "class" and not splits.val:
        raise ConfigError(f"task {task!r} has no validation examples")
    import torch

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
    )
    out_dir = loaded.run_dir / "intrinsic"
    out_dir.mkdir(exist_ok=True)
    name = f"{t.name}-{projection}{'-said' if said else ''}{'-initial' if initial else ''}"
    payload = {
        **result.to_dict(),
        "run_id": loaded.run_id,
        "task": t.name,
        "step": loaded.step,
        "initial": initial,
        "settings": {
            "steps": steps,
            "lr": lr,
            "full_lr": full_lr,
            "full_steps": full_steps,
            "batch_size": batch_size,
            "dims": list(dims),
            "resolution": resolution,
            "seed": seed,
        },
    }
    rundir.write_json(out_dir / f"{name}.json", payload)
    if db is not None:
        record_intrinsic(db, payload)
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
