"""The tokens one run trains on: the corpus, cut by ``data.select`` and ``data.fraction``,
then changed by the plug-ins' data hooks (canaries), in that order.

:func:`training_stream` is the one place that order is written: the loop calls it before
training, and a measurement of what a finished run saw (:mod:`scalelab.memorization.seen`)
calls it again to replay the stream.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from scalelab.config import RunConfig
from scalelab.data.cache import TokenData
from scalelab.data.subset_file import apply_selection, load_selection
from scalelab.errors import ConfigError
from scalelab.plugin import apply_data_hooks


class TokenSource(Protocol):
    """What the loop needs of ``scalelab.data.TokenData`` (see docs/internals.md, "Data")."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    eos_id: int
    mask_id: int | None
    bytes_per_token: float
    entropy_rate: float | None
    unique_tokens: int


def check_data(cfg: RunConfig, data: TokenSource) -> None:
    """The tokenizer's vocabulary (and, for masked LM, its mask token) fits the model's."""
    if data.vocab_size > cfg.model.vocab_size:
        raise ConfigError(
            f"the tokenizer has {data.vocab_size} tokens but model.vocab_size is "
            f"{cfg.model.vocab_size}: set model.vocab_size >= {data.vocab_size}"
        )
    if cfg.train.objective == "mlm" and (
        data.mask_id is None or data.mask_id >= cfg.model.vocab_size
    ):
        raise ConfigError(
            f"masked LM needs a mask token below model.vocab_size ({cfg.model.vocab_size}); "
            f"the tokenizer's mask_id is {data.mask_id}: raise model.vocab_size"
        )


def training_stream(cfg: RunConfig, data: TokenSource) -> tuple[TokenSource, dict[str, Any] | None]:
    """``data`` as the run trains on it, and the selection's summary (None without
    ``data.select``): the selection's kept documents or chunks, then the first
    ``data.fraction`` of every tile, then the active plug-ins' data hooks (canaries are
    planted in the tokens the run sees, each copy as often as planned)."""
    selection: dict[str, Any] | None = None
    if cfg.data.select is not None:
        if not isinstance(data, TokenData):
            raise ConfigError(
                f"data.select needs token data that can be cut (scalelab.data.TokenData); "
                f"{type(data).__name__} cannot: pass it whole"
            )
        sel = load_selection(cfg.data.select)
        data = apply_selection(data, sel)
        selection = sel.summary()
    if cfg.data.fraction < 1.0:
        take = getattr(data, "fraction_of_train", None)
        if take is None:
            raise ConfigError(
                f"data.fraction = {cfg.data.fraction} needs token data that can be cut "
                f"(scalelab.data.TokenData); {type(data).__name__} cannot: pass it whole"
            )
        data = take(cfg.data.fraction)
    return apply_data_hooks(cfg, data), selection
