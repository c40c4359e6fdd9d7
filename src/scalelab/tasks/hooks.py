"""What a study measures on each finished run beyond its loss (``study.tasks``,
``study.intrinsic``), skipping what the run directory already holds, so a re-run sweep adds
only what is missing.

    [study]
    tasks = ["code-next-line", "code-brackets", "code-indent", "cloze"]
    intrinsic = { task = "syntax", dims = [10, 30, 100, 300, 1000], projection = "fastfood",
                  steps = 150, initial = true }

``initial = true`` measures d90 from the run's weights before pretraining as well (the
"no pretraining" point of d90 against pretraining steps).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError, ScalelabError, did_you_mean

INTRINSIC_KEYS: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "dims": list,
    "projection": str,
    "said": bool,
    "initial": bool,
    "steps": int,
    "lr": (int, float),
    "full_lr": (int, float),
    "full_steps": int,
    "batch_size": int,
    "resolution": (int, float),
    "seed": int,
}


def check_intrinsic_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a ``study.intrinsic`` table (torch-free: a study is checked before it runs)."""
    from scalelab.tasks.registry import get_task

    for key, value in values.items():
        if key not in INTRINSIC_KEYS:
            raise ConfigError(
                f"unknown key study.intrinsic.{key}{did_you_mean(key, INTRINSIC_KEYS)}; "
                f"keys: {', '.join(INTRINSIC_KEYS)}"
            )
        if not isinstance(value, INTRINSIC_KEYS[key]) or (
            isinstance(value, bool) and INTRINSIC_KEYS[key] is not bool
        ):
            raise ConfigError(f"study.intrinsic.{key} has the wrong type: {value!r}")
    if "task" not in values:
        raise ConfigError('study.intrinsic needs a task, e.g. task = "syntax"')
    if values["task"] != "lm":  # "lm": pretraining from scratch, the run's own objective
        task = get_task(values["task"])
        if task.kind != "fine-tune":
            raise ConfigError(
                f"study.intrinsic.task {task.name!r} must be a fine-tune task (or lm)"
            )
    dims = values.get("dims", [10, 30, 100, 300, 1000])
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ConfigError(f"study.intrinsic.dims must be positive integers, got {dims!r}")
    projection = values.get("projection", "fastfood")
    if projection not in ("dense", "sparse", "fastfood"):
        raise ConfigError(
            f"study.intrinsic.projection {projection!r} is not dense, sparse or fastfood"
        )
    return dict(values)


def after_run(
    run_dir: str | Path,
    db: str | Path | None,
    tasks: Sequence[str],
    intrinsic: Mapping[str, Any],
) -> None:
    """Score ``tasks`` and measure ``intrinsic`` on a finished run (what is missing only).
    A task that cannot be scored on this run is a warning, not a failed run. With
    ``db=None`` the results go to the run directory only (a remote worker's half: the
    driver records them in the store afterwards)."""
    from scalelab import rundir
    from scalelab.tasks.registry import get_task
    from scalelab.tasks.results import put_task_results, read_run_results

    run_dir = Path(run_dir)
    done = read_run_results(run_dir)
    try:
        zero = [
            t for t in tasks if get_task(t).kind == "zero-shot" and f"{t}/zero-shot" not in done
        ]
        if zero:
            from scalelab.tasks.evaluation import evaluate

            evaluate(run_dir, zero, db=db)
        else:  # already scored: make sure the store has the rows (a store rebuilt afresh)
            rows = [v for k, v in done.items() if k.split("/")[0] in tasks]
            if rows and db is not None:
                put_task_results(db, rows)
        for t in tasks:
            if get_task(t).kind == "fine-tune" and f"{t}/full" not in done:
                from scalelab.tasks.finetune import finetune

                finetune(run_dir, t, db=db)
        if intrinsic:
            from scalelab.intrinsic.runs import record_intrinsic, run_intrinsic

            settings = {k: v for k, v in intrinsic.items() if k not in ("task", "initial")}
            for initial in (False, True) if intrinsic.get("initial") else (False,):
                name = (
                    f"{intrinsic['task']}-{settings.get('projection', 'fastfood')}"
                    f"{'-said' if settings.get('said') else ''}{'-initial' if initial else ''}"
                )
                path = run_dir / "intrinsic" / f"{name}.json"
                saved = rundir.read_json(path) if path.exists() else None
                asked = {k: v for k, v in settings.items() if k not in ("projection", "said")}
                if saved is not None and all(
                    saved.get("settings", {}).get(k) == v for k, v in asked.items()
                ):
                    if db is not None:  # measured already, with these settings
                        record_intrinsic(db, saved)
                else:
                    run_intrinsic(run_dir, intrinsic["task"], initial=initial, db=db, **settings)
    except ScalelabError as e:
        warnings.warn(f"{run_dir.name}: downstream measurement skipped: {e}", stacklevel=2)
