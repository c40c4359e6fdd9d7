"""Shape rules an architecture's module and its accounting share (torch-free).

Each is the one place a derived size is decided, so the built model and
:mod:`scalelab.accounting.tallies` cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from scalelab.errors import ConfigError

if TYPE_CHECKING:
    from scalelab.config import ModelConfig

PERFORMER_CHUNK = 32  # positions per chunk of the performer's causal prefix sum


def albert_d_embed(cfg: ModelConfig) -> int:
    """E: ``model.d_embed``, or ALBERT's 128 capped at d_model / 4 for small widths."""
    return cfg.d_embed if cfg.d_embed is not None else max(1, min(128, cfg.d_model // 4))


def conv_kernel_widths(cfg: ModelConfig) -> list[int]:
    """K of each layer: 3, 7, 15, 31, ... (Wu et al. sec. 5.1), capped at ``kernel_size``."""
    return [min(cfg.kernel_size, 2 ** (i + 2) - 1) for i in range(cfg.n_layer)]


def evolved_wide_config(cfg: ModelConfig) -> ModelConfig:
    """The wide attention's config: ``max(min(2 n_head, 16), n_head)`` heads (the reference's
    16 heads for 8), or n_head when that many heads do not fit d_model (or its kv heads)."""
    assert cfg.n_kv_head is not None
    wide = max(min(2 * cfg.n_head, 16), cfg.n_head)
    kv, rem = divmod(cfg.n_kv_head * wide, cfg.n_head)
    if cfg.d_model % wide or rem:
        return cfg
    try:
        return dataclasses.replace(cfg, n_head=wide, n_kv_head=kv)
    except ConfigError:  # e.g. an odd head size under rotary positions
        return cfg


def funnel_split(cfg: ModelConfig) -> tuple[int, int, int]:
    """(pre, shortened, post) blocks of the funnel."""
    outer = cfg.n_layer // 4
    return outer, cfg.n_layer - 2 * outer, outer


def performer_features(cfg: ModelConfig) -> int:
    """m: ``model.n_features``, or round(hd ln hd) (Choromanski et al. 2021, Theorem 4)."""
    hd = cfg.head_dim
    return cfg.n_features if cfg.n_features is not None else max(hd, round(hd * math.log(hd)))


def performer_chunk(cfg: ModelConfig) -> int:
    return min(PERFORMER_CHUNK, cfg.context)


def switch_capacity(cfg: ModelConfig) -> int:
    """Tokens an expert takes from one sequence of ``context`` tokens (Fedus et al. eq. 3)."""
    return max(1, math.ceil(cfg.capacity_factor * cfg.context / cfg.n_experts))
