import math

import numpy as np
import pytest
import torch
from torch import nn

from scalelab.data.bits import BitsSource
from scalelab.data.facts import FactsSource, attribute_choices
from scalelab.memorization.capacity import facts_bits, measure, string_bits
from scalelab.memorization.seen import documents_seen


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


def _city_logp(people: int, ce_bits: list[float]) -> tuple[np.ndarray, object]:
    """log2 probabilities for a 2-attribute corpus (birth date, birth city: 200 choices):
    person p's city costs ``ce_bits[p]`` bits (split over its 2 tokens), every other token
    is certain."""
    src = FactsSource(people=people, attributes=2, seed=3)
    tokens, lay = src.layout("train", 0.02)
    logp = np.zeros(len(tokens))
    city = lay.attributes.index("birth_city")
    for p, ce in enumerate(ce_bits):
        logp[lay.attr[p, city, :2]] = -ce / 2
    return logp, lay


def test_half_known_half_confidently_wrong_is_averaged_before_the_floor():
    # Allen-Zhu & Li's bound: P log2(c / 2^mean CE), the loss averaged over the people
    # first. 200 choices, half the people at 0 bits and half at 12: 1.64 bits a person;
    # flooring each person apart would say (7.64 + 0) / 2 = 3.82.
    logp, lay = _city_logp(10, [0.0] * 5 + [12.0] * 5)
    got = facts_bits(lay, logp)
    per_person = got.per_attribute["birth_city"] / 10
    assert per_person == pytest.approx(math.log2(200) - 6.0, rel=1e-12)  # 1.644
    assert per_person == pytest.approx(1.64, abs=0.005)
    assert got.per_attribute["birth_date"] == pytest.approx(10 * math.log2(33600), rel=1e-12)


@pytest.mark.parametrize(
    ("ce", "expected"),
    [
        # 3 known, 7 two bits worse than uniform: 3 log2 200 - 14 = 8.93 (floored apart: 22.9)
        ([0.0] * 3 + [math.log2(200) + 2] * 7, 3 * math.log2(200) - 14),
        # 2 known, 8 four bits worse: the mean is worse than uniform, so 0 (apart: 15.3)
        ([0.0] * 2 + [math.log2(200) + 4] * 8, 0.0),
        # everyone a bit better than uniform, unevenly: the mean decides
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.5, 9.0, 12.0], 10 * math.log2(200) - 56.5),
    ],
)
def test_the_averaged_form_where_it_differs_from_flooring_each_person(ce, expected):
    logp, lay = _city_logp(10, ce)
    floored_apart = sum(max(0.0, math.log2(200) - c) for c in ce)
    assert abs(floored_apart - max(expected, 0.0)) > 1.0  # the two forms disagree here
    assert facts_bits(lay, logp).per_attribute["birth_city"] == pytest.approx(
        max(expected, 0.0), abs=1e-9
    )


def test_names_are_averaged_over_the_people_too():
    src = FactsSource(people=8, attributes=1, seed=1)
    tokens, lay = src.layout("train", 0.02)
    name_bits = math.log2(2048**2)
    logp = np.zeros(len(tokens))
    # half the names certain, half 30 bits each (8 bits worse than uniform over 2048^2)
    for p in range(4, 8):
        logp[lay.name[p]] = -30.0 / 4
    got = facts_bits(lay, logp)
    assert got.name_bits == pytest.approx(8 * (name_bits - 15.0), rel=1e-12)
    assert got.name_bits < 4 * name_bits  # flooring each name apart would give 4 log2 M


def test_only_people_wholly_in_the_trained_stream_are_counted():
    src = FactsSource(people=6, attributes=2, seed=4)
    tokens, lay = src.layout("train", 0.02)
    scored = lay.length - 1  # the eos is the next biography's context
    # the stream held people 0-2 whole, then the first half of person 3's biography
    cut = int(lay.start[3] + scored[3] // 2)
    seen = np.arange(cut)
    assert documents_seen(lay.start, scored, seen, len(tokens)).tolist() == [1, 1, 1, 0, 0, 0]
    # a stream with a hole in person 1 (data.select kept other units): 1 is out
    holed = np.setdiff1d(np.arange(len(tokens)), [lay.attr[1, 1, 0]])
    assert documents_seen(lay.start, scored, holed, len(tokens)).tolist() == [1, 0, 1, 1, 1, 1]
    oracle = Oracle(_facts_docs(src, "train"), src.vocab_size, key=4)
    got = measure(oracle, src, val_fraction=0.02, context=64, seen=seen)
    per_person = math.log2(33600) + math.log2(200)
    assert got.documents == 3
    assert got.bits == pytest.approx(3 * per_person, rel=1e-9)
    assert got.content_bits == pytest.approx(3 * per_person)


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
