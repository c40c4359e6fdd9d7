"""``prototype``: k-means on a reference's mean hidden states separates document kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.select.conftest import tiny_config

from scalelab.data import load_tokens
from scalelab.data.subset_file import units_of
from scalelab.select import select
from scalelab.select.dedup import unit_texts
from scalelab.select.prototype import prototype_scores


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


def test_prototype_scores_have_a_known_answer() -> None:
    """Two clusters of directions placed symmetrically about 0 and 90 degrees, each row at
    its own length: the normalised centroids are those axes exactly, so every score is
    1 - cos(its angle to the axis), whatever the row's length."""
    rng = np.random.default_rng(1)
    angles = np.radians(
        [10.0, -10.0, 30.0, -30.0, 90.0 + 20.0, 90.0 - 20.0, 90.0 + 5.0, 90.0 - 5.0]
    )
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    lengths = rng.uniform(0.5, 50.0, len(angles))[:, None]  # cosine distance ignores length
    scores, labels = prototype_scores(unit * lengths, 2, 0)
    axis = np.radians([0.0, 0.0, 0.0, 0.0, 90.0, 90.0, 90.0, 90.0])
    want = 1.0 - np.cos(angles - axis)
    assert np.allclose(scores, want, atol=1e-9), (scores, want)
    assert len(set(labels[:4])) == 1 and len(set(labels[4:])) == 1 and labels[0] != labels[4]
    # the farthest point from its prototype is the 30 degree pair, the nearest the 5 degree
    assert set(np.argsort(-scores)[:2]) == {2, 3} and set(np.argsort(scores)[:2]) == {6, 7}
