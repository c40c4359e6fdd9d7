"""``active``: grow the kept set by the uncertainty of small models trained on it.

Li et al. 2023 ("Exploiting redundancy in large materials datasets") start from a random
share, train a model, and add the pool samples it predicts worst (highest uncertainty),
round after round; a small informative part then trains as well as all of it. Here: start
with ``keep / (rounds + 1)`` of the training tokens at random (or ``initial`` unit ids),
train a small model on it (the ``template`` run config: its model, optimiser and budget; the
data settings ``data_cfg``, which must read the corpus as ``data`` was read),
score the remaining pool by that model's mean loss per unit, add the highest-loss units
until the next ``(keep - start) / rounds`` of tokens is in, and repeat ``rounds`` times.

Every round is kept: ``WORK/round-R.json`` (the selection trained on in round R) and the run
in ``WORK/runs/<run_id>`` (resumable: a second call reuses finished rounds). ``scores`` of the
final selection are the last model's losses (nats/token) on every unit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.config import DataConfig, RunConfig
from scalelab.data.cache import TokenData
from scalelab.data.subset_file import (
    Selection,
    SelectionError,
    Units,
    keep_by_tokens,
    make_selection,
)
from scalelab.select.random import random_scores
from scalelab.select.reference import load_reference, unit_stats

DEFAULT_ROUNDS = 3


def select_active(
    data: TokenData,
    units: Units,
    keep: float,
    template: RunConfig,
    work: str | Path,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    initial: Sequence[int] | None = None,
    data_cfg: DataConfig | None = None,
    progress: bool = False,
) -> Selection:
    from scalelab.train import train

    if rounds < 1:
        raise SelectionError(f"active rounds must be >= 1, got {rounds}")
    if not 0.0 < keep <= 1.0:
        raise SelectionError(f"keep must be a fraction in (0, 1], got {keep}")
    t0 = time.perf_counter()
    work = Path(work)
    lengths = units.lengths
    total = float(lengths.sum())
    if initial is not None:
        current = np.unique(np.asarray(initial, dtype=np.int64))
        if len(current) == 0 or current.min() < 0 or current.max() >= len(units):
            raise SelectionError(f"active initial ids must be in 0..{len(units) - 1}")
    else:
        start = keep / (rounds + 1)
        current = keep_by_tokens(np.argsort(random_scores(len(units), seed)), lengths, start)
    start_share = float(lengths[current].sum() / total)
    step = max(0.0, keep - start_share) / rounds
    base = {"seed": seed, "rounds": rounds, "template_run_id": template.run_id()}
    history: list[dict[str, Any]] = []
    scores = np.full(len(units), np.nan)
    for r in range(rounds):
        sel_r = make_selection(
            data,
            units,
            method="active",
            keep=float(lengths[current].sum() / total),
            kept=current,
            scores=scores,
            score="loss of the previous round's model (nats/token)",
            params={**base, "round": r},
        )
        path = sel_r.save(work / f"round-{r}.json")
        cfg = replace(
            template,
            data=replace(data_cfg or template.data, select=str(path.resolve()), fraction=1.0),
            train=replace(template.train, seed=seed),
        )
        summary = train(cfg, work / "runs", resume=True, progress=progress)
        if summary.status not in ("finished", "stopped_early"):
            raise SelectionError(
                f"active round {r}: the small model's run {summary.run_id} {summary.status} "
                f"({summary.reason}); change the template run's config"
            )
        ref = load_reference(work / "runs" / summary.run_id)
        scores, _ = unit_stats(ref.model, cfg.model.context, data, units)
        pool = np.setdiff1d(np.arange(len(units)), current)
        target = min(1.0, start_share + (r + 1) * step)
        need = target * total - float(lengths[current].sum())
        # highest loss first (most uncertain); NaN scores last
        pool_scores = np.where(np.isfinite(scores[pool]), scores[pool], -np.inf)
        ranked = pool[np.argsort(-pool_scores, kind="stable")]
        added = ranked[: int(np.searchsorted(np.cumsum(lengths[ranked]), need - 1e-9 * total)) + 1]
        added = added if need > 0 else added[:0]
        history.append(
            {
                "round": r,
                "selection": str(path),
                "run_id": summary.run_id,
                "run_dir": str((work / "runs" / summary.run_id).resolve()),
                "kept_fraction": sel_r.kept_fraction,
                "val_loss": summary.val_loss,
                "added": [int(i) for i in added],
                "pool_loss_mean": float(np.nanmean(scores[pool])) if len(pool) else None,
                "added_loss_mean": float(np.nanmean(scores[added])) if len(added) else None,
            }
        )
        current = np.union1d(current, added)
    final = make_selection(
        data,
        units,
        method="active",
        keep=keep,
        kept=current,
        scores=scores,
        score="mean loss (nats/token) of the last round's small model on the unit",
        params={**base, "round": rounds, "work": str(work)},
        extra={"rounds": history, "start_fraction": start_share},
        seconds=time.perf_counter() - t0,
    )
    final.save(work / f"round-{rounds}.json")
    return final


__all__ = ["DEFAULT_ROUNDS", "select_active"]
