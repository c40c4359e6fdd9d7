"""``random``: the baseline every other method must beat.

Each unit gets a uniform score from a generator seeded by ``seed``; units are kept in
order of that score until ``keep`` of the training tokens are in. The same seed gives
the same selection on every machine (NumPy's PCG64 stream is fixed across platforms).
"""

from __future__ import annotations

import time

import numpy as np

from scalelab.data.cache import TokenData
from scalelab.data.subset_file import Selection, Units, keep_by_tokens, make_selection


def random_scores(n: int, seed: int) -> np.ndarray:
    """``n`` uniform scores in [0, 1) for seed ``seed`` (used as tie-breakers elsewhere too)."""
    return np.random.default_rng([seed, 0x5E1EC7]).random(n)


def select_random(data: TokenData, units: Units, keep: float, *, seed: int = 0) -> Selection:
    t0 = time.perf_counter()
    scores = random_scores(len(units), seed)
    kept = keep_by_tokens(np.argsort(scores, kind="stable"), units.lengths, keep)
    return make_selection(
        data,
        units,
        method="random",
        keep=keep,
        kept=kept,
        scores=scores,
        score="uniform random draw (kept lowest first)",
        params={"seed": seed},
        seconds=time.perf_counter() - t0,
    )


__all__ = ["random_scores", "select_random"]
