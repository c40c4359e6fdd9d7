"""The optimizer of a run: AdamW with the GPT-2/nanoGPT weight-decay groups and muP's
per-parameter learning-rate and decay scales."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from scalelab.config import RunConfig


def make_optimizer(model: nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with decay on weight matrices and embeddings, none on biases and norm gains
    (the GPT-2/nanoGPT convention); the fused kernel where available, else foreach."""
    # A model may scale the learning rate and the weight decay per parameter (muP:
    # ``model.lr_scale(p)`` and ``model.wd_scale(p)``, see scalelab.models.mup); each
    # (scale, decay scale, no decay) triple is one group, the unscaled ones first so
    # ``param_groups[0]["lr"]`` stays the schedule's own value.
    lr_scale = getattr(model, "lr_scale", None)
    wd_scale = getattr(model, "wd_scale", None)
    buckets: dict[tuple[float, float, bool], list[nn.Parameter]] = {}
    for p in model.parameters():  # parameters() yields a tied tensor once
        if p.requires_grad:
            scale = float(lr_scale(p)) if lr_scale is not None else 1.0
            decay = float(wd_scale(p)) if wd_scale is not None else 1.0
            buckets.setdefault((scale, decay, p.dim() < 2), []).append(p)
    groups = [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else cfg.train.weight_decay * decay,
            "lr_scale": scale,
        }
        for (scale, decay, no_decay), params in sorted(
            buckets.items(), key=lambda kv: kv[0][0] != 1.0
        )
    ]
    kwargs: dict[str, Any] = {"lr": cfg.train.lr, "betas": (cfg.train.beta1, cfg.train.beta2)}
    if device.type in ("cpu", "cuda", "mps"):
        with contextlib.suppress(RuntimeError, TypeError, ValueError):
            return torch.optim.AdamW(groups, fused=True, **kwargs)
    return torch.optim.AdamW(groups, foreach=device.type != "cpu" or None, **kwargs)
