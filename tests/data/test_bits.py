import math

import numpy as np
import pytest

from scalelab.config import DataConfig
from scalelab.data import load_tokens, open_corpus
from scalelab.data.bits import BitsSource
from scalelab.errors import DataError


def test_entropy_is_strings_times_length_times_log2_symbols():
    assert open_corpus("bits:strings=10,length=16").info()["information_bits"] == 160
    src = open_corpus("bits:strings=10,length=16,symbols=256,seed=2")
    assert src.info()["information_bits"] == pytest.approx(10 * 16 * math.log2(256))


def test_strings_are_uniform_seeded_and_ended_by_eos():
    src = BitsSource(2000, 16, seed=1, symbols=4)
    m = src.matrix("train", 0.02)
    assert m.shape == (2000, 16) and m.max() == 3
    counts = np.bincount(m.reshape(-1), minlength=4) / m.size
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    train, val = src.generate(0.02)
    assert len(train) == 2000 * 17 and (train[16::17] == 4).all()  # eos = symbols
    assert len(val) == 40 * 17
    np.testing.assert_array_equal(train, BitsSource(2000, 16, 1, 4).generate(0.3)[0])


def test_cache_and_errors(tmp_path):
    data = load_tokens(DataConfig(corpus="bits:strings=50,length=8", cache_dir=str(tmp_path)), 4)
    assert data.describe()["information_bits"] == 400 and data.vocab_size == 4
    with pytest.raises(DataError, match="needs length"):
        open_corpus("bits:strings=5")
    with pytest.raises(DataError, match="symbols must be"):
        open_corpus("bits:strings=5,length=3,symbols=1")
