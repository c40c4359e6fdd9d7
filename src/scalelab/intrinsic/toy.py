"""Li et al. (2018)'s toy problem: a known intrinsic dimension.

theta has D = 1000 numbers; the objective asks that the first 100 sum to 1, the next 100 to
2, ..., the last 100 to 10: L = sum_k (sum of group k - k)^2. The minimum is a 990-
dimensional affine set, so exactly 10 directions matter: a random subspace of d >= 10
dimensions reaches L = 0 (its 10 x d constraint matrix has full rank with probability 1)
and one of d < 10 cannot (the 10 targets are not in the span of d random directions).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ToyProblem(nn.Module):
    """``forward() -> theta``; the constraints live in :func:`toy_loss`."""

    def __init__(self, D: int = 1000, groups: int = 10, seed: int = 0) -> None:
        super().__init__()
        if D % groups:
            raise ValueError(f"D ({D}) must be a multiple of groups ({groups})")
        g = torch.Generator().manual_seed(seed)
        self.theta = nn.Parameter(torch.randn(D, generator=g))
        self.groups = groups
        self.register_buffer("targets", torch.arange(1, groups + 1, dtype=torch.float32))

    def forward(self) -> torch.Tensor:
        return self.theta


def toy_loss(module: Any, batch: Any = None) -> torch.Tensor:
    """Li et al.'s objective for ``module`` (a :class:`ToyProblem` or its subspace wrapper)."""
    theta = module()
    toy = module.module[0] if hasattr(module, "module") else module
    sums = theta.view(toy.groups, -1).sum(dim=1)
    return ((sums - toy.targets) ** 2).sum()
