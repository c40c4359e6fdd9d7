"""Canaries: random token sequences planted in the training stream at known repeat counts.

``data.canaries = {count = C, length = 32, repeats = [1, 4, 16, 64], seed = S}`` makes
``C`` canaries for every entry ``r`` of ``repeats`` and inserts each of them exactly ``r``
times into the training split (per pass over it; ``train.epochs = E`` shows it ``r x E``
times), never into validation. A canary is ``prefix + length`` token ids drawn uniformly
from the tokenizer's ordinary ids (specials excluded), so no model can predict its secret
(the last ``length`` tokens) from the language: emitting it means it was memorised (the
"secret sharer" design of Carlini et al. 2019, with the duplication counts of Carlini et
al. 2022, sec. 4.2).

Where: each copy goes at a random document boundary (just after an ``eos``) so no document
is cut, with an ``eos`` after it; a stream without ``eos`` (markov) takes copies at random
offsets. The positions are a function of the seed and the split, so a run and its
measurement agree on them. The trainer applies this after ``data.fraction``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scalelab.data.cache import TokenData
    from scalelab.memorization.canaries_plugin import CanaryConfig


@dataclass(frozen=True)
class Canaries:
    """The canaries of a config: ``tokens[i]`` (prefix + secret) and ``repeats[i]``."""

    tokens: np.ndarray  # [n, prefix + length] token ids
    repeats: np.ndarray  # [n] copies inserted per pass
    prefix: int
    length: int

    @property
    def secrets(self) -> np.ndarray:
        return self.tokens[:, self.prefix :]


def canaries_for(data: TokenData, cfg: CanaryConfig) -> Canaries:
    """The canaries of ``cfg`` drawn from ``data``'s ordinary token ids."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xCA4A]))
    specials = {data.eos_id, data.mask_id}
    ordinary = np.array([i for i in range(data.vocab_size) if i not in specials])
    n = cfg.count * len(cfg.repeats)
    idx = rng.integers(0, len(ordinary), size=(n, cfg.prefix + cfg.length))
    repeats = np.repeat(np.asarray(cfg.repeats, dtype=np.int64), cfg.count)
    return Canaries(tokens=ordinary[idx], repeats=repeats, prefix=cfg.prefix, length=cfg.length)


def insert_canaries(data: TokenData, cfg: CanaryConfig) -> tuple[TokenData, np.ndarray]:
    """``data`` with every canary inserted ``repeats`` times into ``train`` (validation
    untouched), and the start offset of every copy in the new training array (sorted)."""
    can = canaries_for(data, cfg)
    train = np.asarray(data.train)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x1A5E, len(train)]))
    copies = np.repeat(np.arange(len(can.tokens)), can.repeats)
    rng.shuffle(copies)
    boundaries = np.flatnonzero(train == data.eos_id) + 1
    if len(boundaries) == 0:
        boundaries = np.arange(len(train) + 1)
    at = np.sort(rng.choice(boundaries, size=len(copies), replace=True))
    eos = np.array([data.eos_id], dtype=train.dtype)
    parts, starts, pos, prev = [], [], 0, 0
    for where, c in zip(at, copies, strict=True):
        chunk = train[prev:where]
        parts.append(chunk)
        pos += len(chunk)
        starts.append(pos)
        parts += [can.tokens[c].astype(train.dtype), eos]
        pos += can.tokens.shape[1] + 1
        prev = where
    parts.append(train[prev:])
    new = np.concatenate(parts) if parts else train
    return replace(data, train=new, unique_tokens=len(new)), np.asarray(starts, dtype=np.int64)


__all__ = ["Canaries", "canaries_for", "insert_canaries"]
