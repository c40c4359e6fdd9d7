"""Uniformly random strings: the memorisation set-up of Morris et al. 2025.

``bits:strings=S,length=L[,seed=S][,symbols=V]``

S strings of L symbols, each symbol drawn uniformly from V (default 2: bits), each
string followed by ``eos``. Nothing in one string predicts another, so everything a
model learns about the training strings beyond the uniform distribution is memorised,
and the content is exact: ``information_bits = S x L x log2 V`` (Morris et al., "How much
do language models memorize?", 2025, sec. 3: with uniform data the reference model's
code length is this entropy, so memorisation is entropy minus the model's code length).

Tokens are the symbols, as for ``markov`` (ids ``0..V-1``, then eos and mask); the
tokenizer is :class:`scalelab.data.tokenizer.SymbolTokenizer` and ``data.tokenizer`` is
ignored. Validation holds ``max(8, round(S x val_fraction))`` other strings from their own
stream, so the training strings do not depend on ``val_fraction``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scalelab.data.corpus_spec import CorpusSpec, parse_spec
from scalelab.data.synthetic import SyntheticSource
from scalelab.data.tokenizer import SymbolTokenizer
from scalelab.errors import DataError

MAX_SYMBOLS = 1 << 16


class BitsSource(SyntheticSource):
    """The ``bits`` corpus (module docstring)."""

    kind = "bits"

    def __init__(
        self, strings: int, length: int, seed: int = 0, symbols: int = 2, spec: str = ""
    ) -> None:
        self.strings, self.length, self.seed, self.symbols = strings, length, seed, symbols
        self.spec = parse_spec(spec or self.canonical())
        where = f"data.corpus = {self.spec.text!r}"
        if strings < 1 or length < 1:
            raise DataError(f"{where}: strings and length must be >= 1")
        if not 2 <= symbols <= MAX_SYMBOLS:
            raise DataError(f"{where}: symbols must be 2..{MAX_SYMBOLS}, got {symbols}")

    @classmethod
    def from_spec(cls, spec: CorpusSpec) -> BitsSource:
        spec.require("strings", "length")
        strings = spec.int_option("strings", minimum=1)
        length = spec.int_option("length", minimum=1)
        seed = spec.int_option("seed", 0)
        symbols = spec.int_option("symbols", 2, minimum=2)
        assert strings is not None and length is not None
        assert seed is not None and symbols is not None
        return cls(strings, length, seed, symbols, spec.text)

    def canonical(self) -> str:
        return (
            f"bits:strings={self.strings},length={self.length},seed={self.seed},"
            f"symbols={self.symbols}"
        )

    def slug(self) -> str:
        return f"bits-s{self.strings}-l{self.length}-v{self.symbols}-s{self.seed}"

    def tokenizer(self) -> SymbolTokenizer:
        return SymbolTokenizer(self.symbols)

    def val_strings(self, val_fraction: float) -> int:
        return max(8, round(self.strings * val_fraction))

    def info(self) -> dict[str, Any]:
        per = self.length * math.log2(self.symbols)
        return {
            "information_bits": self.strings * per,
            "strings": self.strings,
            "length": self.length,
            "symbols": self.symbols,
            "bits_per_string": per,
        }

    def matrix(self, split: str, val_fraction: float) -> np.ndarray:
        """The strings of ``split`` as a [count, L] array of symbols."""
        train_seed, val_seed = np.random.SeedSequence([self.seed, 0xB175]).spawn(2)
        if split == "train":
            rng, n = np.random.default_rng(train_seed), self.strings
        elif split == "val":
            rng, n = np.random.default_rng(val_seed), self.val_strings(val_fraction)
        else:
            raise DataError(f"split must be 'train' or 'val', got {split!r}")
        return rng.integers(0, self.symbols, size=(n, self.length), dtype=np.uint32)

    def _flat(self, strings: np.ndarray) -> np.ndarray:
        eos = np.full((len(strings), 1), self.symbols, dtype=np.uint32)
        return np.concatenate([strings, eos], axis=1).reshape(-1)

    def generate(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        return (
            self._flat(self.matrix("train", val_fraction)),
            self._flat(self.matrix("val", val_fraction)),
        )


__all__ = ["BitsSource"]
