"""Corpora, tokenizers, the token cache and loss metrics.

``load_tokens(data, vocab_size) -> TokenData`` is the entry point the trainer
uses (contract in docs/internals.md). Corpus specs are described in
:mod:`scalelab.data.corpus_spec`, the synthetic source in :mod:`scalelab.data.markov`,
the cache in :mod:`scalelab.data.cache`.
"""

from __future__ import annotations

from scalelab.data.cache import TokenData, default_cache_dir, load_tokens, split_of
from scalelab.data.corpora import TextCorpus, open_corpus
from scalelab.data.corpus_spec import CorpusSpec, parse_spec
from scalelab.data.markov import MarkovSource
from scalelab.data.metrics import bits_per_byte, bits_per_token, nats_per_token, perplexity
from scalelab.data.tokenizer import BPETokenizer, ByteTokenizer, SymbolTokenizer, Tokenizer

__all__ = [
    "BPETokenizer",
    "ByteTokenizer",
    "CorpusSpec",
    "MarkovSource",
    "SymbolTokenizer",
    "TextCorpus",
    "TokenData",
    "Tokenizer",
    "bits_per_byte",
    "bits_per_token",
    "default_cache_dir",
    "load_tokens",
    "nats_per_token",
    "open_corpus",
    "parse_spec",
    "perplexity",
    "split_of",
]
