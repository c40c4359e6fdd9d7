"""Recovery fine-tuning of a compressed model, keeping what the compression stored.

A few more tokens of ordinary training, continuing the parent's data order (the samples
after the parent's last step), at the parent's final learning rate (``train.lr x
train.min_lr_ratio``: the run resumes where its cosine ended) with AdamW and the parent's
clipping. After every step ``after_step`` puts the constraint back: a pruning mask is
multiplied in again, so the zeros stay zeros (Han et al. 2015, sec. 3: retrain with the
mask fixed); low-rank factors and shared blocks are trained as such and need nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.config import RunConfig
from scalelab.errors import ConfigError


def recover(
    model: nn.Module,
    cfg: RunConfig,
    data: Any,
    tokens: int,
    *,
    first_sample: int,
    device: torch.device,
    after_step: Callable[[nn.Module], None] | None = None,
) -> int:
    """Train ``model`` for ``tokens`` (rounded to whole steps); returns the tokens trained."""
    from scalelab.train.batches import TrainSampler
    from scalelab.train.device import resolve_precision
    from scalelab.train.optim import make_optimizer

    if cfg.train.objective != "clm":
        raise ConfigError("--recover trains causal LMs only (train.objective = 'clm')")
    tc = cfg.train
    per_step = tc.batch_size * cfg.model.context
    steps = max(1, round(tokens / per_step))
    lr = tc.lr * tc.min_lr_ratio
    precision = resolve_precision(tc.precision, device, cfg.data.cache_dir)
    sampler = TrainSampler(data.train, cfg.model.context, tc.seed)
    model.train()
    opt = make_optimizer(model, cfg, device)
    for g in opt.param_groups:
        g["lr"] = lr
    for step in range(steps):
        x, y = sampler.batch(first_sample + step * tc.batch_size, tc.batch_size, device)
        with precision.autocast(device):
            logits = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if after_step is not None:
            after_step(model)
    model.eval()
    return steps * per_step


def keep_masks(masks: dict[str, torch.Tensor]) -> Callable[[nn.Module], None]:
    """An ``after_step`` that multiplies each pruning mask back in."""

    @torch.no_grad()
    def apply(model: nn.Module) -> None:
        params = dict(model.named_parameters())
        for name, keep in masks.items():
            params[name].mul_(keep)

    return apply
