"""Checks shared by the per-architecture tests (the cross-architecture suite is test_arch_suite)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scalelab.config import ModelConfig, example_config

NEW_ARCHS = (
    "universal",
    "albert",
    "switch",
    "performer",
    "funnel",
    "lconv",
    "dconv",
    "mixer",
    "mos",
    "evolved",
    "glu",
)


def tiny(arch: str, **fields: Any) -> ModelConfig:
    shape: dict[str, Any] = dict(n_layer=2, d_model=32, n_head=4, vocab_size=64, context=16)
    return example_config(arch, **{**shape, **fields})


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def max_leak(model: nn.Module, idx: torch.Tensor, seed: int = 1) -> float:
    """Largest change of the logits at positions < t when every token from t on is redrawn,
    over all t: 0 for a causal model."""
    g = torch.Generator().manual_seed(seed)
    vocab = model.cfg.vocab_size
    with torch.no_grad():
        base = model(idx)
        worst = 0.0
        for t in range(1, idx.shape[1]):
            changed = idx.clone()
            changed[:, t:] = torch.randint(0, vocab, changed[:, t:].shape, generator=g)
            worst = max(worst, (model(changed)[:, :t] - base[:, :t]).abs().max().item())
    return worst


def measured_flops(model: nn.Module, idx: torch.Tensor) -> int:
    """Forward FLOPs torch counts (matmuls, convolutions, attention with the math kernel)."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as c:
        model(idx)
    return c.get_total_flops()
