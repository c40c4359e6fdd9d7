import math

import numpy as np
import pytest

from scalelab.data import bits_per_byte, bits_per_token, nats_per_token, perplexity
from scalelab.errors import DataError


def test_bits_per_byte():
    # ln 2 nats per token is one bit per token; at 4 bytes per token that is 1/4 bit per byte
    assert bits_per_token(math.log(2)) == pytest.approx(1.0)
    assert bits_per_byte(math.log(2), 4.0) == pytest.approx(0.25)
    # a uniform byte model: ln 256 nats per byte-token is 8 bits per byte
    assert bits_per_byte(math.log(256), 1.0) == pytest.approx(8.0)
    losses = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(bits_per_byte(losses, 2.5), losses / math.log(2) / 2.5)
    assert nats_per_token(bits_per_byte(2.3, 3.1), 3.1) == pytest.approx(2.3)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "2"])
def test_bits_per_byte_rejects_bad_bytes_per_token(bad):
    with pytest.raises(DataError, match="bytes_per_token"):
        bits_per_byte(1.0, bad)


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(512)) == pytest.approx(512)
    assert perplexity(1e6) == math.inf
    np.testing.assert_allclose(perplexity(np.array([0.0, math.log(3)])), [1.0, 3.0])
    assert perplexity(np.array([1e6]))[0] == np.inf
