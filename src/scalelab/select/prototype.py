"""``prototype``: self-supervised prototypes (Sorscher et al. 2022, sec. 5).

Embed every unit (the mean final hidden state of a reference model over its tokens,
L2-normalised), cluster the embeddings with k-means (scikit-learn), and score each unit by
its cosine distance to the nearest centroid: near a prototype is *easy* (typical), far is
*hard*. Sorscher et al.'s theory and ImageNet runs: with abundant data keep the hard
examples, with scarce data the easy ones; which regime a corpus is in is what the
keep-fraction study measures.
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

ORDERS = ("hard", "easy")
DEFAULT_K = 16


def prototype_scores(embeddings: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosine distance of each row to its nearest k-means centroid, cluster label)."""
    from sklearn.cluster import KMeans

    n = len(embeddings)
    if k < 1:
        raise SelectionError(f"prototype k (number of clusters) must be >= 1, got {k}")
    k = min(k, n)
    x = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    c = km.cluster_centers_ / np.maximum(
        np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12
    )
    labels = km.labels_
    return 1.0 - np.sum(x * c[labels], axis=1), labels


def select_prototype(
    data: TokenData,
    units: Units,
    keep: float,
    ref: Reference,
    *,
    order: str = "hard",
    k: int = DEFAULT_K,
    seed: int = 0,
) -> Selection:
    if order not in ORDERS:
        raise SelectionError(f"prototype order must be one of {', '.join(ORDERS)}, got {order!r}")
    t0 = time.perf_counter()
    _, hidden = unit_stats(ref.model, ref.cfg.model.context, data, units, hidden=True)
    assert hidden is not None
    scores, labels = prototype_scores(hidden.astype(np.float64), k, seed)
    ranked = np.argsort(-scores if order == "hard" else scores, kind="stable")
    kept = keep_by_tokens(ranked, units.lengths, keep)
    return make_selection(
        data,
        units,
        method="prototype",
        keep=keep,
        kept=kept,
        scores=scores,
        score="cosine distance of the unit's mean hidden state to its nearest k-means centroid",
        params={
            "order": order,
            "k": int(min(k, len(units))),
            "seed": seed,
            "reference": str(ref.run_dir),
            "reference_run_id": ref.run_id,
        },
        extra={"cluster_sizes": np.bincount(labels).tolist()},
        seconds=time.perf_counter() - t0,
    )


__all__ = ["ORDERS", "prototype_scores", "select_prototype"]
