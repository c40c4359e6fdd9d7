"""``evaluate(run, tasks)``: score a trained run on zero-shot tasks (``scalelab eval``).

Accuracy comes with its 95% Wilson interval and the task's chance level, and is written to
``RUN/tasks.json`` and, with ``db``, to the store's ``tasks`` table. Every task and the run's
fitness for it are checked before any model is loaded, so a bad request fails at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scalelab.config import RunConfig
from scalelab.data.corpus_spec import parse_spec
from scalelab.errors import ConfigError, DataError
from scalelab.runs import open_run, read_config
from scalelab.tasks.registry import Task, get_task
from scalelab.tasks.results import put_task_results, read_run_results, write_run_results
from scalelab.tasks.runs import check_causal

DEFAULT_ITEMS = 500


@contextmanager
def threads_restored(threads: Any) -> Iterator[None]:
    try:
        yield
    finally:
        threads.restore()


def check_task_fits(task: Task, cfg: RunConfig) -> None:
    """A ``DataError`` when the run lacks what ``task`` needs (text, Python code)."""
    kind = parse_spec(cfg.data.corpus).kind
    if "text" in task.needs and kind == "markov":
        raise DataError(
            f"task {task.name!r} is written as text and needs a text tokenizer; this run "
            f"reads the symbols of {cfg.data.corpus!r}. Use a run trained on text"
            + (" (copy works on any corpus)" if task.kind == "fine-tune" else "")
        )


def evaluate(
    run: str | Path,
    tasks: Sequence[str],
    *,
    n: int | None = DEFAULT_ITEMS,
    seed: int = 0,
    db: str | Path | None = None,
    batch_size: int = 64,
    verify: bool = True,
) -> Any:
    """Score ``run`` on each zero-shot task in ``tasks``; a DataFrame, one row per task
    (``run_id``, ``task``, ``method``, ``kind``, ``metric``, ``n``, ``correct``,
    ``accuracy``, ``lo``, ``hi``, ``chance``, ``seed``, ``step``, ``seconds``)."""
    import pandas as pd
    import torch

    from scalelab.tasks.scoring import score_items, wilson
    from scalelab.tasks.zeroshot import items

    if not tasks:
        raise ConfigError("name at least one task (scalelab tasks lists them)")
    resolved = [get_task(t) for t in tasks]
    cfg = read_config(run)
    for task in resolved:
        if task.kind == "generative":
            raise ConfigError(
                f"task {task.name!r} is a generative task: score it with `scalelab posttrain "
                f"RUN --method eval --task {task.name}` (its grader reads sampled completions)"
            )
        if task.kind != "zero-shot":
            raise ConfigError(
                f"task {task.name!r} is a fine-tune task: run `scalelab finetune RUN --task "
                f"{task.name}` (it scores the fine-tuned model on the task's test split)"
            )
        check_task_fits(task, cfg)
    check_causal(cfg, "zero-shot evaluation")
    if n is not None and n < 1:
        raise ConfigError(f"the number of items must be positive, got {n}")
    from scalelab.train.device import ThreadPolicy

    loaded = open_run(run, verify=verify)
    read_run_results(loaded.run_dir)  # a damaged tasks.json is refused before any scoring
    tokenizer = loaded.tokenizer()
    rows = []
    n_params = sum(p.numel() for p in loaded.model.parameters())
    threads = ThreadPolicy(torch.device("cpu"), 2.0 * n_params * batch_size * cfg.model.context)
    threads.apply()
    with threads_restored(threads), torch.inference_mode():
        for task in resolved:
            t0 = time.perf_counter()
            its = items(task.name, cfg.data, n, seed)
            if not its:
                raise DataError(
                    f"task {task.name!r} found no items in the held-out split of "
                    f"{cfg.data.corpus!r}; a larger corpus or data.val_fraction would give some"
                )
            picks = score_items(
                loaded.model,
                tokenizer,
                its,
                context=cfg.model.context,
                normalize=task.normalize,
                batch_size=batch_size,
            )
            correct = sum(p == it.answer for p, it in zip(picks, its, strict=True))
            lo, hi = wilson(correct, len(its))
            rows.append(
                {
                    "run_id": loaded.run_id,
                    "task": task.name,
                    "method": "zero-shot",
                    "kind": task.kind,
                    "metric": task.metric,
                    "n": len(its),
                    "correct": int(correct),
                    "accuracy": correct / len(its),
                    "lo": lo,
                    "hi": hi,
                    "chance": task.chance,
                    "seed": seed,
                    "step": loaded.step,
                    "seconds": time.perf_counter() - t0,
                }
            )
    write_run_results(loaded.run_dir, rows)
    if db is not None:
        put_task_results(db, rows)
    return pd.DataFrame(rows)
