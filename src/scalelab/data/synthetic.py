"""Synthetic corpora whose tokens are generated directly, with known information content.

The ``facts`` biographies (:mod:`scalelab.data.facts`) and ``bits`` random strings
(:mod:`scalelab.data.bits`) share this small interface so the token cache treats them
alike: the generator emits token ids (no tokenizer is trained: ``data.tokenizer`` is
ignored, as for ``markov``), it knows its vocabulary, and it reports what its training
split holds in bits (``info()``: ``information_bits`` and the pieces it is made of), which
``scalelab corpus --json`` prints and the capacity measure compares a model against.

Document layout, shared by both: every document is followed by ``eos``, so each one
starts right after an ``eos`` (the first one after nothing), and a model sees every
document from its first token in an evaluation that starts at that ``eos``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from scalelab.data.corpus_spec import CorpusSpec
from scalelab.data.tokenizer import Tokenizer


class SyntheticSource(ABC):
    """A generated corpus: ``generate(val_fraction) -> (train, val)`` token arrays."""

    kind: str = ""
    spec: CorpusSpec

    @property
    def spec_text(self) -> str:
        return self.spec.text

    @abstractmethod
    def canonical(self) -> str:
        """The spec with every option spelled out (part of the cache key)."""

    def fingerprint(self) -> str:
        return "synthetic"

    @abstractmethod
    def slug(self) -> str:
        """A short readable name for the cache directory."""

    @abstractmethod
    def tokenizer(self) -> Tokenizer:
        """The fixed tokenizer of this source (ids are the generator's)."""

    @property
    def vocab_size(self) -> int:
        return self.tokenizer().vocab_size

    @abstractmethod
    def generate(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) token arrays (uint32), each document followed by ``eos``."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """JSON-ready facts about the content: ``information_bits`` at least."""

    def tokenizer_meta(self) -> dict[str, Any]:
        """What the cache stores to rebuild :meth:`tokenizer` without the source."""
        return {}


__all__ = ["SyntheticSource"]
