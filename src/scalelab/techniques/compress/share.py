"""Sharing after the fact: adjacent blocks tied to their mean, ALBERT-style (Lan et al. 2020).

``level = k`` ties every run of k adjacent blocks (0..k-1, k..2k-1, ...; a shorter last
group) into one set of weights, the element-wise mean of the group's tensors, and the
blocks then hold the *same* Parameter objects, so the model stores (and counts) each group
once and recovery fine-tuning trains the shared weights. ALBERT trains shared layers from
the start; sharing a model trained without it is the harder, after-the-fact version, which
is why recovery matters here.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.errors import ConfigError


def _blocks(model: nn.Module) -> nn.ModuleList:
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) < 2:
        raise ConfigError(
            "share ties adjacent blocks: the model needs at least 2 layers in .blocks"
        )
    return blocks


@torch.no_grad()
def share(model: nn.Module, k: int) -> list[list[int]]:
    """Tie groups of ``k`` adjacent blocks to their mean; returns the groups."""
    blocks = _blocks(model)
    if k != int(k) or not 2 <= k <= len(blocks):
        raise ConfigError(f"share level is the blocks per group, 2..{len(blocks)}; got {k}")
    k = int(k)
    groups = [list(range(i, min(i + k, len(blocks)))) for i in range(0, len(blocks), k)]
    for g in groups:
        if len(g) < 2:
            continue
        first = blocks[g[0]]
        members = [dict(blocks[j].named_parameters()) for j in g]
        for pname, p in first.named_parameters():
            p.copy_(torch.stack([m[pname] for m in members]).mean(0))
        for j in g[1:]:
            for (_, mod), (_, src) in zip(
                blocks[j].named_modules(), first.named_modules(), strict=True
            ):
                for pname, value in list(mod._parameters.items()):
                    if value is not None:
                        mod._parameters[pname] = src._parameters[pname]
    return groups


def untie(model: nn.Module) -> None:
    """Give every block its own copy of the shared tensors (for a plain checkpoint)."""
    seen: set[int] = set()
    for mod in _blocks(model).modules():
        for pname, value in list(mod._parameters.items()):
            if value is None:
                continue
            if id(value) in seen:
                mod._parameters[pname] = nn.Parameter(value.detach().clone())
            else:
                seen.add(id(value))
