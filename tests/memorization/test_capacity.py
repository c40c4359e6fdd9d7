import math

import numpy as np
import pytest
import torch
from torch import nn

from scalelab.data.bits import BitsSource
from scalelab.data.facts import FactsSource, attribute_choices
from scalelab.memorization.capacity import facts_bits, measure, string_bits


class Oracle(nn.Module):
    """A lookup table: knows every document by its first tokens and puts (almost) all its
    mass on the true next token; before it can tell the document, it is uniform."""

    def __init__(self, docs: list[list[int]], vocab: int, key: int) -> None:
        super().__init__()
        self.docs = {tuple(d[:key]): d for d in docs}
        self.vocab, self.key = vocab, key

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        out = torch.zeros(B, T, self.vocab)
        for b in range(B):
            doc = self.docs.get(tuple(idx[b, 1 : 1 + self.key].tolist()))
            if doc is None:
                continue
            for t in range(self.key, T):
                if t < len(doc):
                    out[b, t, doc[t]] = 80.0  # exp(-80) elsewhere: log-prob ~ -1e-33
        return out


def _facts_docs(src: FactsSource, split: str) -> list[list[int]]:
    tokens, lay = src.layout(split, 0.02)
    return [tokens[s : s + n - 1].tolist() for s, n in zip(lay.start, lay.length, strict=True)]


def test_uniform_over_choices_stores_zero_and_a_lookup_table_stores_the_content():
    src = FactsSource(people=12, attributes=6, seed=2)
    tokens, lay = src.layout("train", 0.02)
    content = src.info()["attribute_bits"]
    # uniform over each attribute's choices: the value's tokens together get log2 choices
    uniform = np.zeros(len(tokens))
    for a, name in enumerate(lay.attributes):
        uniform[lay.attr[:, a, 0]] = -math.log2(attribute_choices(name))
    got = facts_bits(lay, uniform)
    assert got.bits == 0.0 and got.content_bits == pytest.approx(content)
    assert got.uniform_loss == pytest.approx(got.target_loss)
    # a model more confused than uniform still stores 0 (the floor), not a negative number
    assert facts_bits(lay, uniform - 1.0).bits == 0.0
    # certainty on every value: everything
    assert facts_bits(lay, np.zeros(len(tokens))).bits == pytest.approx(content, rel=1e-12)
    # half the people known, half uniform: half the content
    half = uniform.copy()
    half[lay.attr[:6][lay.attr[:6] >= 0]] = 0.0
    assert facts_bits(lay, half).bits == pytest.approx(content / 2, rel=1e-12)


def test_an_oracle_model_measured_end_to_end_stores_exactly_the_content():
    src = FactsSource(people=10, attributes=6, templates=2, seed=5)
    oracle = Oracle(_facts_docs(src, "train"), src.vocab_size, key=4)  # the name: 4 tokens
    got = measure(oracle, src, val_fraction=0.02, context=64)
    assert got.bits == pytest.approx(src.info()["attribute_bits"], rel=1e-9)
    assert got.name_bits == 0.0  # it cannot know the name before it has read it
    # people it has never seen: it knows nothing about them
    assert measure(oracle, src, val_fraction=0.02, context=64, split="val").bits == 0.0


def test_a_model_of_uniform_logits_stores_nothing():
    src = FactsSource(people=5, seed=0)

    class Uniform(nn.Module):
        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return torch.zeros(*idx.shape, src.vocab_size)

    got = measure(Uniform(), src, val_fraction=0.02, context=64)
    assert got.bits == 0.0 and got.name_bits == 0.0
    assert got.target_loss == pytest.approx(math.log(src.vocab_size))


def test_random_strings_entropy_minus_code_length():
    src = BitsSource(strings=20, length=8, seed=0, symbols=16)
    strings = src.matrix("train", 0.02)
    flat = src._flat(strings)
    assert string_bits(strings, np.full(len(flat), -4.0), 16).bits == 0.0
    got = string_bits(strings, np.zeros(len(flat)), 16)
    assert got.bits == pytest.approx(20 * 8 * 4) and got.content_bits == 640
    src = BitsSource(strings=10, length=8, seed=0, symbols=256)
    strings = src.matrix("train", 0.02)
    assert len(set(strings[:, 0])) == 10  # the first symbol names the string
    oracle = Oracle([[int(x) for x in s] for s in strings], src.vocab_size, key=1)
    # the oracle cannot know the first symbol (uniform over 258 tokens), then knows the rest
    measured = measure(oracle, src, val_fraction=0.02, context=16)
    assert measured.bits == pytest.approx(10 * (8 * 8 - math.log2(258)), abs=1e-4)  # float32


def test_documents_longer_than_the_context_are_refused():
    from scalelab.errors import StoreError

    src = BitsSource(strings=3, length=40, seed=0)
    with pytest.raises(StoreError, match="context"):
        measure(nn.Identity(), src, val_fraction=0.02, context=16)
