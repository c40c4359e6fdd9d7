import json
import math

import numpy as np
import pytest

from scalelab.config import DataConfig
from scalelab.data import load_tokens, open_corpus
from scalelab.data.facts import N_WORDS, WORDS, FactsSource
from scalelab.errors import DataError


def test_information_content_equals_a_hand_count_for_3_people_and_2_attributes():
    src = open_corpus("facts:people=3,attributes=2,seed=7")
    info = src.info()
    # birth date: 12 months x 28 days x 100 years; birth city: 200 cities; 3 people
    by_hand = 3 * (math.log2(12 * 28 * 100) + math.log2(200))
    assert info["attribute_bits"] == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(68.0401, abs=1e-4)
    # 3 distinct names out of M = 2048**2: log2 C(M, 3) = log2(M (M-1) (M-2) / 6)
    M = N_WORDS**2
    names = math.log2(M) + math.log2(M - 1) + math.log2(M - 2) - math.log2(6)
    assert info["name_bits"] == pytest.approx(names, rel=1e-9)
    assert info["information_bits"] == pytest.approx(by_hand + names, rel=1e-12)
    assert info["template_bits"] == 0.0  # one template: no choice
    assert [a["choices"] for a in info["attributes"]] == [33600, 200]


def test_layout_points_at_each_persons_values():
    src = FactsSource(people=20, attributes=6, templates=3, seed=1)
    tokens, lay = src.layout("train", 0.02)
    tok = src.tokenizer()
    assert lay.people == 20 and lay.attr.shape == (20, 6, 3)
    for p in range(20):
        end = lay.start[p] + lay.length[p]
        assert tokens[end - 1] == tok.eos_id  # every biography ends with eos
        assert (tokens[lay.start[p] : end - 1] != tok.eos_id).all()
        # the name is the first 4 tokens and decodes to two capitalised words
        first, last = tok.decode(tokens[lay.name[p]]).split()
        assert first[0].isupper() and last[0].isupper()
        # the date's tokens are a month, a day and a year, in that order
        month, day, year = (WORDS[t] for t in tokens[lay.attr[p, 0]])
        v = lay.values[p, 0]
        assert (
            month
            == [
                "January",
                "February",
                "March",
                "April",
                "May",
                "June",
                "July",
                "August",
                "September",
                "October",
                "November",
                "December",
            ][v // 2800]
        )
        assert int(day) == (v % 2800) // 100 + 1 and int(year) == 1900 + v % 100
        # entity attributes are two tokens, padded with -1
        assert (lay.attr[p, 1:, 2] == -1).all() and (lay.attr[p, 1:, :2] >= 0).all()
    # the same value of one attribute is always written with the same tokens
    cities = {}
    for p in range(20):
        key = int(lay.values[p, 1])
        ids = tuple(tokens[lay.attr[p, 1, :2]])
        assert cities.setdefault(key, ids) == ids


def test_seeded_deterministic_and_splits_disjoint():
    a, b = FactsSource(50, seed=3), FactsSource(50, seed=3)
    np.testing.assert_array_equal(a.generate(0.02)[0], b.generate(0.02)[0])
    assert not np.array_equal(a.generate(0.02)[0], FactsSource(50, seed=4).generate(0.02)[0])
    # the training people do not depend on val_fraction
    np.testing.assert_array_equal(a.generate(0.02)[0], a.generate(0.2)[0])
    train, tl = a.layout("train", 0.1)
    val, vl = a.layout("val", 0.1)
    assert vl.people == 8  # at least 8 validation people
    names = {tuple(train[i]) for i in tl.name}
    assert not names & {tuple(val[i]) for i in vl.name}
    assert len(names) == 50  # names are unique


def test_text_reads_and_round_trips():
    src = FactsSource(2, attributes=3, seed=0)
    tokens = src.generate(0.02)[0]
    tok = src.tokenizer()
    text = tok.decode(tokens)
    assert " was born on " in text or " has a birthday on " in text
    assert "They " in text and "University." in text
    assert tok.encode(text) == [int(t) for t in tokens]


def test_cached_corpus_describes_its_information_bits(tmp_path):
    data = load_tokens(
        DataConfig(corpus="facts:people=30,attributes=2", cache_dir=str(tmp_path)), 293
    )
    d = data.describe()
    assert d["tokenizer"] == "words" and d["vocab_size"] == 293
    assert d["information_bits"] == pytest.approx(FactsSource(30, 2).info()["information_bits"])
    assert d["documents"]["train"] == 30
    assert data.tokenizer.decode(data.train[:4]).count(" ") == 1  # "First Last"
    with pytest.raises(DataError, match="too small"):
        load_tokens(DataConfig(corpus="facts:people=30", cache_dir=str(tmp_path)), 100)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("facts:attributes=2", "needs people"),
        ("facts:people=3,attributes=7", "attributes must be 1..6"),
        ("facts:people=3,templates=9", "templates must be 1..5"),
        ("facts:people=3,colour=2", "unknown option 'colour'"),
        ("facts:people=1.5", "integer"),
    ],
)
def test_bad_specs_say_what_to_fix(spec, message):
    with pytest.raises(DataError, match=message):
        open_corpus(spec)


def test_corpus_command_prints_information_bits(cli, tmp_path):
    out = cli(
        "corpus", "facts:people=3,attributes=2", "--json", env={"SCALELAB_CACHE": str(tmp_path)}
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["information_bits"] == pytest.approx(131.45512588, rel=1e-9)
    assert info["attribute_bits"] == pytest.approx(68.04008940698463)
