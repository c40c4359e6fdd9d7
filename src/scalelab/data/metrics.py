"""Loss conversions: nats per token -> bits per byte, bits per token, perplexity.

Loss in nats per token depends on the tokenizer (a bigger vocabulary packs more
text into a token, so each token costs more nats). Bits per byte divides that
out, so runs with different tokenizers on the same text compare (the convention
of Gao et al. 2020, *The Pile*, which reports bits per UTF-8 byte)::

    bits_per_byte = loss_nats_per_token / ln 2 / bytes_per_token

with ``bytes_per_token`` = UTF-8 bytes per token on the validation split
(:attr:`scalelab.data.TokenData.bytes_per_token`). Perplexity is ``exp(loss)``
per token: it is only comparable between runs sharing a tokenizer.

Each function takes a float or a NumPy array (e.g. a column of losses).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from scalelab.errors import DataError

LN2 = math.log(2.0)

Loss = TypeVar("Loss", float, np.ndarray)


def bits_per_token(loss_nats: Loss) -> Loss:
    """Nats per token -> bits per token."""
    return loss_nats / LN2


def _check_bytes_per_token(bytes_per_token: float) -> None:
    ok = isinstance(bytes_per_token, (int, float)) and not isinstance(bytes_per_token, bool)
    if not (ok and math.isfinite(bytes_per_token) and bytes_per_token > 0):
        raise DataError(
            f"bytes_per_token must be a positive number, got {bytes_per_token!r}: "
            "take it from TokenData.bytes_per_token"
        )


def bits_per_byte(loss_nats: Loss, bytes_per_token: float) -> Loss:
    """Nats per token -> bits per UTF-8 byte of text, given the tokenizer's bytes per token."""
    _check_bytes_per_token(bytes_per_token)
    return loss_nats / LN2 / bytes_per_token


def nats_per_token(bits_per_byte_value: Loss, bytes_per_token: float) -> Loss:
    """The inverse of :func:`bits_per_byte`."""
    _check_bytes_per_token(bytes_per_token)
    return bits_per_byte_value * LN2 * bytes_per_token


def perplexity(loss_nats: Loss) -> Loss:
    """exp(loss) per token; ``inf`` where the loss is too large to exponentiate."""
    if isinstance(loss_nats, np.ndarray):
        with np.errstate(over="ignore"):
            return np.exp(loss_nats)
    try:
        return math.exp(loss_nats)
    except OverflowError:
        return math.inf


__all__ = ["LN2", "bits_per_byte", "bits_per_token", "nats_per_token", "perplexity"]
