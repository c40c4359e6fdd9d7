"""``perplexity``: keep units by a small reference model's loss on them.

Marion et al. 2023 ("When Less is More") score every document by a reference model's
perplexity and keep the ``low``, ``middle`` or ``high`` part; which is best depends on the
corpus (for their web text, ``middle``). Ankner et al. 2024 showed a 125M reference is enough
to prune data for a 3B model. Low-loss units are the easy, regular, often repetitive text;
high-loss ones are the noisy or rare. Scores are mean next-token losses (nats/token) of the
reference on the unit (see :func:`scalelab.select.reference.unit_stats`).
"""

from __future__ import annotations

import time

import numpy as np

from scalelab.data.cache import TokenData
from scalelab.data.subset_file import (
    Selection,
    SelectionError,
    Units,
    keep_by_tokens,
    make_selection,
)
from scalelab.select.reference import Reference, unit_stats

ORDERS = ("low", "middle", "high")


def order_by(scores: np.ndarray, order: str) -> np.ndarray:
    """Unit ids, the first to keep first. ``middle`` keeps the units nearest the median (in
    rank), so the kept set is the central ``keep`` share of the distribution. Units without a
    score (NaN) go last."""
    if order not in ORDERS:
        raise SelectionError(f"perplexity order must be one of {', '.join(ORDERS)}, got {order!r}")
    s = np.where(np.isfinite(scores), scores, np.inf)
    ranks = np.argsort(np.argsort(s, kind="stable"), kind="stable").astype(float)
    finite = np.isfinite(s)
    if order == "low":
        key = ranks
    elif order == "high":
        key = -ranks
    else:
        key = np.abs(ranks - (finite.sum() - 1) / 2.0)
    key = np.where(finite, key, np.inf)
    return np.argsort(key, kind="stable")


def select_perplexity(
    data: TokenData,
    units: Units,
    keep: float,
    ref: Reference,
    *,
    order: str = "low",
    seed: int = 0,
) -> Selection:
    t0 = time.perf_counter()
    scores, _ = unit_stats(ref.model, ref.cfg.model.context, data, units)
    kept = keep_by_tokens(order_by(scores, order), units.lengths, keep)
    return make_selection(
        data,
        units,
        method="perplexity",
        keep=keep,
        kept=kept,
        scores=scores,
        score="reference model's mean next-token loss on the unit (nats/token)",
        params={
            "order": order,
            "seed": seed,
            "reference": str(ref.run_dir),
            "reference_run_id": ref.run_id,
        },
        seconds=time.perf_counter() - t0,
    )


__all__ = ["ORDERS", "order_by", "select_perplexity"]
