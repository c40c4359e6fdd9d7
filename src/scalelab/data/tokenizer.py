"""Tokenizers: byte-level BPE (Hugging Face ``tokenizers``), raw bytes, and Markov symbols.

All three share one small interface (:class:`Tokenizer`): ``encode(str) ->
list[int]``, ``decode(list[int]) -> str``, ``encode_batch(list[str]) ->
list[np.ndarray]`` (the fast path used to fill the token cache), ``vocab_size``,
``eos_id`` and ``mask_id``. The two special tokens count in ``vocab_size``.

Special tokens are never read out of text: a document that contains the string
``<|eos|>`` is encoded as those characters, so a corpus cannot forge a document
boundary.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from scalelab.errors import DataError

EOS_TOKEN = "<|eos|>"
MASK_TOKEN = "<|mask|>"
N_BYTES = 256
N_SPECIAL = 2


@runtime_checkable
class Tokenizer(Protocol):
    name: str
    vocab_size: int
    eos_id: int
    mask_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens: ids 0-255 are byte values, 256 is eos, 257 is mask."""

    name = "bytes"
    vocab_size = N_BYTES + N_SPECIAL
    eos_id = N_BYTES
    mask_id = N_BYTES + 1

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        out, chunk = [], bytearray()
        for i in ids:
            i = int(i)
            if i < N_BYTES:
                chunk.append(i)
                continue
            out.append(chunk.decode("utf-8", errors="replace"))
            chunk = bytearray()
            out.append(EOS_TOKEN if i == self.eos_id else MASK_TOKEN)
        out.append(chunk.decode("utf-8", errors="replace"))
        return "".join(out)

    def __repr__(self) -> str:
        return "ByteTokenizer()"


class BPETokenizer:
    """Byte-level BPE (GPT-2's scheme, Radford et al. 2019 sec. 2.2) trained with Hugging Face
    ``tokenizers``: 256 byte symbols, then merges, with eos (id 0) and mask (id 1) first.
    """

    name = "bpe"

    def __init__(self, tok: object) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        assert isinstance(tok, HFTokenizer)
        self._tok = tok
        # Special tokens in the *text* are plain characters, never ids (see module doc).
        tok.encode_special_tokens = True
        self.vocab_size = tok.get_vocab_size()
        eos, mask = tok.token_to_id(EOS_TOKEN), tok.token_to_id(MASK_TOKEN)
        if eos is None or mask is None:
            raise DataError(
                f"tokenizer has no {EOS_TOKEN} / {MASK_TOKEN} tokens: it was not made by scalelab; "
                "delete the token cache entry to retrain it"
            )
        self.eos_id, self.mask_id = int(eos), int(mask)

    @classmethod
    def train(
        cls, texts: Iterable[str], vocab_size: int, length: int | None = None
    ) -> BPETokenizer:
        """Learn merges from ``texts`` until the vocabulary (specials included) has
        ``vocab_size`` entries, or the texts run out of pairs to merge (then it is smaller)."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if vocab_size < N_BYTES + N_SPECIAL:
            raise DataError(
                f"byte-level BPE needs model.vocab_size >= {N_BYTES + N_SPECIAL} (256 bytes + eos "
                f"+ mask), got {vocab_size}: raise model.vocab_size"
            )
        tok = HFTokenizer(models.BPE())
        # No prefix space: source code and prose keep their exact bytes, decode(encode(s)) == s.
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOS_TOKEN, MASK_TOKEN],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(_nonempty(texts), trainer=trainer, length=length)
        return cls(tok)

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            return cls(HFTokenizer.from_file(str(path)))
        except Exception as e:
            raise DataError(f"cannot read tokenizer {path}: {e}; delete it to rebuild") from None

    def save(self, path: str | Path) -> None:
        self._tok.save(os.fspath(path))

    @property
    def hf(self) -> object:
        """The underlying ``tokenizers.Tokenizer`` (for export to Hugging Face)."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        # encode_batch_fast (tokenizers >= 0.20) skips offsets; both run in parallel over
        # documents (Rust threads).
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        enc = encode(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.uint32) for e in enc]

    def decode(self, ids: Iterable[int]) -> str:
        return str(self._tok.decode([int(i) for i in ids], skip_special_tokens=False))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


class SymbolTokenizer:
    """The tokens of a Markov source: symbols ``0..V-1``, then eos and mask.

    Text form: symbols written as decimal numbers separated by spaces, with
    ``<|eos|>`` and ``<|mask|>`` for the specials; ``decode`` and ``encode`` are inverses.
    """

    name = "symbols"

    def __init__(self, n_symbols: int) -> None:
        self.n_symbols = n_symbols
        self.vocab_size = n_symbols + N_SPECIAL
        self.eos_id, self.mask_id = n_symbols, n_symbols + 1

    def encode(self, text: str) -> list[int]:
        ids = []
        for word in text.split():
            if word == EOS_TOKEN:
                ids.append(self.eos_id)
            elif word == MASK_TOKEN:
                ids.append(self.mask_id)
            elif word.isdigit() and int(word) < self.n_symbols:
                ids.append(int(word))
            else:
                raise DataError(
                    f"{word!r} is not a symbol of this Markov source: write numbers "
                    f"0..{self.n_symbols - 1} separated by spaces"
                )
        return ids

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(self.encode(t), dtype=np.uint32) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        names = {self.eos_id: EOS_TOKEN, self.mask_id: MASK_TOKEN}
        return " ".join(names.get(int(i), str(int(i))) for i in ids)

    def __repr__(self) -> str:
        return f"SymbolTokenizer(n_symbols={self.n_symbols})"


class WordTokenizer:
    """A fixed word vocabulary (the ``facts`` corpus): ids ``0..W-1`` are the words, then eos
    and mask. A word written ``##x`` attaches to the one before it without a space (name
    syllables, punctuation), as in WordPiece; ``decode`` reads like text. ``encode`` splits on
    spaces and then into the longest known words, so it inverts ``decode``.
    """

    name = "words"

    def __init__(self, words: list[str]) -> None:
        self.words = list(words)
        self.vocab_size = len(self.words) + N_SPECIAL
        self.eos_id, self.mask_id = len(self.words), len(self.words) + 1
        self._ids = {w: i for i, w in enumerate(self.words)}
        self._longest = max((len(w) for w in self.words), default=1)

    def _split(self, chunk: str) -> list[int]:
        ids: list[int] = []
        i = 0
        while i < len(chunk):
            for j in range(min(len(chunk), i + self._longest + 2), i, -1):
                piece = chunk[i:j] if i == 0 else "##" + chunk[i:j]
                if piece in self._ids:
                    ids.append(self._ids[piece])
                    i = j
                    break
            else:
                raise DataError(f"{chunk!r} is not made of words of this vocabulary")
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for chunk in text.split():
            if chunk == EOS_TOKEN:
                ids.append(self.eos_id)
            elif chunk == MASK_TOKEN:
                ids.append(self.mask_id)
            else:
                ids += self._split(chunk)
        return ids

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(self.encode(t), dtype=np.uint32) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        for i in ids:
            i = int(i)
            word = (
                self.words[i]
                if i < len(self.words)
                else (EOS_TOKEN if i == self.eos_id else MASK_TOKEN)
            )
            if word.startswith("##") and out:
                out[-1] += word[2:]
            else:
                out.append(word)
        return " ".join(out)

    def __repr__(self) -> str:
        return f"WordTokenizer(words={len(self.words)})"


def _nonempty(texts: Iterable[str]) -> Iterator[str]:
    return (t for t in texts if t)


__all__ = [
    "EOS_TOKEN",
    "MASK_TOKEN",
    "BPETokenizer",
    "ByteTokenizer",
    "SymbolTokenizer",
    "Tokenizer",
    "WordTokenizer",
]
