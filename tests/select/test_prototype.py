"""``prototype``: k-means on a reference's mean hidden states separates document kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.select.conftest import tiny_config

from scalelab.data import load_tokens
from scalelab.select import select
from scalelab.select.dedup import unit_texts
from scalelab.select.prototype import prototype_scores
from scalelab.select.selection import units_of


def test_prototypes_separate_markov_text_from_noise(mixed: tuple[str, Path], cache: Path) -> None:
    corpus, ref = mixed
    hard = select(corpus, "prototype", 0.5, reference=ref, k=2, order="hard")
    easy = select(corpus, "prototype", 0.5, reference=ref, k=2, order="easy")
    data = load_tokens(tiny_config(corpus, cache).data, 258)
    texts = unit_texts(data, units_of(data))
    is_noise = np.array([set(t) - set("abcdefgh") != set() for t in texts])
    # two clusters of the right sizes: one per kind of document
    assert sorted(hard.extra["cluster_sizes"]) == sorted([is_noise.sum(), (~is_noise).sum()])
    scores = np.asarray(hard.scores)
    assert (scores >= -1e-9).all() and (scores <= 2 + 1e-9).all()
    assert not set(hard.kept) & set(easy.kept) or len(hard.kept) + len(easy.kept) > len(texts)
    assert np.mean(scores[list(hard.kept)]) > np.mean(scores[list(easy.kept)])


def test_prototype_scores_are_distances_to_the_nearest_centroid() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal([10, 0], 0.1, (20, 2))
    b = rng.normal([0, 10], 0.1, (20, 2))
    scores, labels = prototype_scores(np.vstack([a, b]), 2, 0)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[-1]
    assert scores.max() < 1e-3  # every point sits next to its cluster's centre
