"""A module trained in a random subspace: theta = theta_0 + P z (Li et al. 2018, eq. 1).

:class:`Subspace` wraps any ``nn.Module``: the module's own parameters are frozen at
theta_0, the only trainable tensor is ``z`` (d numbers, zero at the start, so training
starts exactly at the pretrained weights), and each forward calls the module with
``theta_0 + P z`` through ``torch.func.functional_call`` (tied weights stay tied: a shared
tensor is one parameter, projected once).

SAID (Aghajanyan et al. 2021, eq. 3): theta_i = theta_0,i + lambda_i P(z)_i, one learned
scale lambda_i per parameter tensor (m of them), so z has d - m numbers and the trainable
count is still d. lambda starts at 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.intrinsic.projections import make_projection


class Subspace(nn.Module):
    def __init__(
        self,
        module: nn.Module,
        d: int,
        *,
        projection: str = "fastfood",
        said: bool = False,
        seed: int = 0,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        params = dict(module.named_parameters())
        self.names = list(names) if names is not None else list(params)
        if not self.names:
            raise ConfigError("the module has no parameters to train in a subspace")
        self.shapes = [params[n].shape for n in self.names]
        self.sizes = [params[n].numel() for n in self.names]
        self.D = sum(self.sizes)
        self.m = len(self.names) if said else 0
        if said and d <= self.m:
            raise ConfigError(
                f"SAID learns one scale per parameter tensor ({self.m} here) out of the d "
                f"trainable numbers, so d must exceed {self.m}; got d = {d}"
            )
        self.d = d
        self.module = [module]  # a list keeps it out of this module's parameters
        for p in module.parameters():
            p.requires_grad_(False)
        flat = torch.cat([params[n].detach().reshape(-1).float() for n in self.names])
        self.register_buffer("theta0", flat)
        self.projection = make_projection(projection, self.D, d - self.m, seed)
        self.z = nn.Parameter(torch.zeros(d - self.m))
        self.scales = nn.Parameter(torch.ones(self.m)) if said else None

    def delta(self) -> torch.Tensor:
        out = self.projection(self.z)
        if self.scales is not None:
            sizes = torch.tensor(self.sizes, device=out.device)
            out = out * torch.repeat_interleave(self.scales, sizes)
        return out

    def parameters_now(self) -> dict[str, torch.Tensor]:
        """theta_0 + P z, by parameter name."""
        theta = self.theta0 + self.delta()
        dtype = {n: p.dtype for n, p in self.module[0].named_parameters()}
        return {
            n: t.view(s).to(dtype[n])
            for n, t, s in zip(self.names, theta.split(self.sizes), self.shapes, strict=True)
        }

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return torch.func.functional_call(self.module[0], self.parameters_now(), args, kwargs)

    def train(self, mode: bool = True) -> Subspace:
        super().train(mode)
        self.module[0].train(mode)  # dropout and the like follow the wrapper's mode
        return self

    def write_back(self) -> None:
        """Copy theta_0 + P z into the wrapped module's own parameters."""
        with torch.no_grad():
            own = dict(self.module[0].named_parameters())
            for n, t in self.parameters_now().items():
                own[n].copy_(t)
