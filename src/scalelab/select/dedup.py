"""``dedup``: exact and near-duplicate removal.

Exact: units whose *normalised* text (trailing spaces stripped, runs of whitespace
collapsed) hashes alike (SHA-256) are one cluster.

Near: the Jaccard similarity of two units' sets of word ``shingle``-grams (words and
punctuation marks are the tokens of a shingle). Candidates come from MinHash LSH
(Broder 1997; datasketch's ``MinHashLSH``, bands tuned to ``threshold``), and every candidate
pair is then checked with the *exact* Jaccard of the two shingle sets, so a reported pair is
at or above the threshold, not just probably (LSH only sets the recall). Pairs join clusters
by union-find (a chain of near-copies is one cluster, as in Lee et al. 2022).

Each cluster keeps its first unit in corpus order. ``scores[i]`` is 0 for a kept
representative or a unit without duplicates, else its highest similarity to another member
(1.0 for an exact copy). Units are kept lowest score first (ties by a seeded random draw):
with ``keep=None`` exactly the duplicates are dropped; a smaller ``keep`` then drops unique
units at random, a larger one takes back the least similar duplicates.
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from collections import defaultdict
from typing import Any

import numpy as np

from scalelab.data.cache import TokenData
from scalelab.data.subset_file import (
    Selection,
    SelectionError,
    Units,
    keep_by_tokens,
    make_selection,
)
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.select.random import random_scores

DEFAULT_THRESHOLD = 0.8
DEFAULT_SHINGLE = 3
NUM_PERM = 128
_WORD = re.compile(r"\w+|[^\w\s]")
_SPACE = re.compile(r"\s+")


def unit_texts(data: TokenData, units: Units) -> list[str]:
    """The decoded text of every unit (its ``eos`` dropped)."""
    train = np.asarray(data.train)
    out: list[str] = []
    fast = isinstance(data.tokenizer, ByteTokenizer)
    for s, e in zip(units.starts, units.ends, strict=True):
        ids = train[s:e]
        ids = ids[ids != data.eos_id]
        if fast:  # bytes: the ids are the UTF-8 bytes
            out.append(ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace"))
        else:
            out.append(data.tokenizer.decode(ids.tolist()))
    return out


def normalise(text: str) -> str:
    """Whitespace-insensitive form for exact matching."""
    return _SPACE.sub(" ", text).strip()


def shingles(text: str, n: int = DEFAULT_SHINGLE) -> np.ndarray:
    """The set of word ``n``-grams of ``text`` as sorted unique 32-bit CRCs (stable across
    processes, unlike Python's ``hash``)."""
    words = _WORD.findall(text)
    if not words:
        return np.zeros(0, dtype=np.uint64)
    if len(words) < n:
        grams = [" ".join(words)]
    else:
        grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return np.unique(np.fromiter((zlib.crc32(g.encode()) for g in grams), np.uint64, len(grams)))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:  # the smaller id (earlier in the corpus) stays the root
            self.parent[max(ra, rb)] = min(ra, rb)


def _preview(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().strip("#\"' ")
        if line:
            return line[:80]
    return ""


def find_duplicates(
    texts: list[str], *, threshold: float = DEFAULT_THRESHOLD, shingle: int = DEFAULT_SHINGLE
) -> tuple[np.ndarray, list[dict[str, Any]], dict[str, int]]:
    """(scores, clusters, counts) for ``texts``: see the module docstring."""
    if not 0.0 < threshold <= 1.0:
        raise SelectionError(
            f"dedup threshold must be a Jaccard similarity in (0, 1], got {threshold}"
        )
    if shingle < 1:
        raise SelectionError(f"dedup shingle must be >= 1 word, got {shingle}")
    from datasketch import MinHash, MinHashLSH

    n = len(texts)
    uf = _UnionFind(n)
    sim = np.zeros(n)
    exact_pairs = near_pairs = 0
    # exact: one hash per normalised text
    first: dict[bytes, int] = {}
    for i, t in enumerate(texts):
        h = hashlib.sha256(normalise(t).encode()).digest()
        if h in first:
            uf.union(first[h], i)
            sim[i] = sim[first[h]] = 1.0
            exact_pairs += 1
        else:
            first[h] = i
    # near: MinHash LSH over the exact-distinct units, then exact Jaccard on candidates
    reps = sorted(first.values())
    sets = {i: shingles(texts[i], shingle) for i in reps}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    hashes: dict[int, MinHash] = {}
    for i in reps:
        m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=int)
        values = sets[i].tolist()
        for k in range(0, len(values), 20000):
            m.update_batch(values[k : k + 20000])
        lsh.insert(i, m, check_duplication=False)
        hashes[i] = m
    for i in reps:
        for j in lsh.query(hashes[i]):
            if j <= i:
                continue
            s = jaccard(sets[i], sets[j])
            if s >= threshold:
                uf.union(i, j)
                sim[i], sim[j] = max(sim[i], s), max(sim[j], s)
                near_pairs += 1
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[uf.find(i)].append(i)
    clusters: list[dict[str, Any]] = []
    scores = np.zeros(n)
    for root, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        for i in members:
            scores[i] = 0.0 if i == root else sim[i]
        exact = len({hashlib.sha256(normalise(texts[i]).encode()).digest() for i in members}) == 1
        clusters.append(
            {
                "ids": members,
                "kept": root,
                "kind": "exact" if exact else "near",
                "preview": _preview(texts[root]),
            }
        )
    clusters.sort(key=lambda c: -len(c["ids"]))
    counts = {
        "units": n,
        "clusters": len(clusters),
        "duplicates": int(sum(len(c["ids"]) - 1 for c in clusters)),
        "exact_pairs": exact_pairs,
        "near_pairs": near_pairs,
    }
    return scores, clusters, counts


def select_dedup(
    data: TokenData,
    units: Units,
    keep: float | None = None,
    *,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    shingle: int = DEFAULT_SHINGLE,
) -> Selection:
    t0 = time.perf_counter()
    texts = unit_texts(data, units)
    scores, clusters, counts = find_duplicates(texts, threshold=threshold, shingle=shingle)
    lengths = units.lengths
    unique = scores == 0
    unique_share = float(lengths[unique].sum() / lengths.sum())
    # lowest score first, ties (the unique units) in a seeded random order
    order = np.lexsort((random_scores(len(units), seed), scores))
    kept = np.flatnonzero(unique) if keep is None else keep_by_tokens(order, lengths, keep)
    return make_selection(
        data,
        units,
        method="dedup",
        keep=unique_share if keep is None else keep,
        kept=kept,
        scores=scores,
        score="highest Jaccard similarity to another unit of its cluster (0: kept representative or unique)",
        params={"seed": seed, "threshold": threshold, "shingle": shingle, "num_perm": NUM_PERM},
        extra={**counts, "unique_token_share": unique_share, "clusters": clusters},
        seconds=time.perf_counter() - t0,
    )


__all__ = ["find_duplicates", "jaccard", "normalise", "select_dedup", "shingles", "unit_texts"]
