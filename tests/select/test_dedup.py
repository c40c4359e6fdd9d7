"""Known truth for ``dedup``: planted exact copies and near-copies are found, nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.select.conftest import random_words, tiny_config, write_jsonl

from scalelab.data import load_tokens
from scalelab.data.subset_file import units_of
from scalelab.select import select
from scalelab.select.dedup import find_duplicates, jaccard, shingles, unit_texts


def test_exact_copies_of_every_other_document_are_removed_exactly(
    tmp_path: Path, cache: Path
) -> None:
    rng = np.random.default_rng(0)
    originals = [" ".join(random_words(rng, 80)) for _ in range(60)]
    docs: list[str] = []
    for i, d in enumerate(originals):
        docs.append(d)
        if i % 2 == 0:  # a copy of every other document, whitespace changed
            docs.append(d.replace(" ", "  ") + "\n")
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs)
    sel = select(corpus, "dedup", cache_dir=str(cache))
    data = load_tokens(tiny_config(corpus, cache).data, 258)
    texts = unit_texts(data, units_of(data))
    seen: set[str] = set()
    copies = set()
    for i, t in enumerate(texts):
        key = " ".join(t.split())
        if key in seen:
            copies.add(i)
        seen.add(key)
    assert copies, "some copies should be in the training split"
    assert set(range(len(texts))) - set(sel.kept) == copies
    assert sel.extra["duplicates"] == len(copies)
    assert all(c["kind"] == "exact" for c in sel.extra["clusters"])
    assert all(sel.scores[i] == 1.0 for i in copies)


def test_near_copies_are_found_at_the_stated_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = [random_words(rng, 200) for _ in range(40)]
    texts = [" ".join(w) for w in base]
    near = []
    for k in range(0, 40, 4):  # 10 near-copies: one word in twenty replaced
        words = list(base[k])
        for j in rng.choice(200, 10, replace=False):
            words[j] = f"x{rng.integers(10**6)}"
        near.append((k, len(texts)))
        texts.append(" ".join(words))
    # the truth the threshold is stated against: exact Jaccard of word 3-gram sets
    sims = [jaccard(shingles(texts[a]), shingles(texts[b])) for a, b in near]
    assert min(sims) > 0.6
    scores, clusters, counts = find_duplicates(texts, threshold=0.6)
    pairs = {tuple(c["ids"]) for c in clusters}
    assert pairs == set(near)
    assert counts["duplicates"] == 10 and counts["near_pairs"] == 10
    assert all(c["kind"] == "near" and c["kept"] == c["ids"][0] for c in clusters)
    assert np.count_nonzero(scores) == 10
    # a threshold above every planted similarity finds none of them
    _, none, _ = find_duplicates(texts, threshold=min(0.99, max(sims) + 0.05))
    assert not none


def test_keep_below_the_unique_share_drops_unique_documents_at_random(
    tmp_path: Path, cache: Path
) -> None:
    rng = np.random.default_rng(2)
    originals = [" ".join(random_words(rng, 50)) for _ in range(40)]
    corpus = write_jsonl(tmp_path / "docs.jsonl", originals + originals[:10])
    sel = select(corpus, "dedup", 0.5, cache_dir=str(cache))
    dups = [i for i, s in enumerate(sel.scores) if s > 0]
    assert dups and not set(dups) & set(sel.kept)
    assert abs(sel.kept_fraction - 0.5) < 0.05
