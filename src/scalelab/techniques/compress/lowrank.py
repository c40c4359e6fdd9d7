"""Low rank: every body Linear replaced by its truncated SVD, ``W ~ A B`` (Eckart-Young).

``level >= 1`` is the rank r kept in every Linear (capped at the matrix's full rank);
``0 < level < 1`` is an energy fraction: the smallest r whose singular values hold that
share of ``sum s^2`` (Sainath et al. 2013 chose ranks this way). The factors are
``A = U_r diag(s_r)`` [out, r] and ``B = V_r^T`` [r, in], both stored in 16 bits; a
factorisation that would be larger than the dense matrix (r > out in / (out + in)) is
stored dense, and counted so.

For recovery fine-tuning the Linears are swapped for :class:`Factored` modules that train
A and B; the product is written back into the model afterwards.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.techniques.compress.base import BASE_BITS, TensorCost, body_linears


def rank_for(s: torch.Tensor, level: float) -> int:
    """The kept rank of singular values ``s`` (descending) for ``level``."""
    full = int(s.numel())
    if level >= 1:
        if level != int(level):
            raise ConfigError(f"lowrank level >= 1 is a rank and must be whole; got {level}")
        return min(int(level), full)
    if not 0 < level < 1:
        raise ConfigError(
            f"lowrank level is a rank (>= 1) or an energy fraction in (0, 1); got {level}"
        )
    energy = torch.cumsum(s.double() ** 2, 0) / (s.double() ** 2).sum().clamp_min(1e-300)
    return min(int(torch.searchsorted(energy, torch.tensor(level, dtype=energy.dtype))) + 1, full)


class Factored(nn.Module):
    """``y = x B^T A^T + b``: a Linear kept as its two factors (for recovery)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(a.clone()), nn.Parameter(b.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x @ self.b.T) @ self.a.T
        return y if self.bias is None else y + self.bias

    def weight(self) -> torch.Tensor:
        return self.a @ self.b


@torch.no_grad()
def factorize(model: nn.Module, level: float) -> tuple[dict[str, TensorCost], dict[str, tuple]]:
    """Replace every body Linear's weight by its rank-r product; returns the costs and the
    factors ``{name: (A, B)}`` of the Linears stored factored."""
    costs: dict[str, TensorCost] = {}
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name, m in body_linears(model):
        w = m.weight.double()
        U, s, Vh = torch.linalg.svd(w, full_matrices=False)
        r = rank_for(s, level)
        a, b = (U[:, :r] * s[:r]).float(), Vh[:r].float()
        out, inp = w.shape
        key = f"{name}.weight"
        if r * (out + inp) < out * inp:
            m.weight.copy_((U[:, :r] * s[:r] @ Vh[:r]).to(m.weight.dtype))
            costs[key] = TensorCost(
                key, out * inp, out * inp, r * (out + inp) * BASE_BITS, f"rank{r}"
            )
            factors[name] = (a, b)
        else:  # no saving: keep (and count) the dense matrix, at full precision
            costs[key] = TensorCost(
                key, out * inp, int((m.weight != 0).sum()), out * inp * BASE_BITS, "dense16"
            )
    return costs, factors


def swap_in(model: nn.Module, factors: dict[str, tuple]) -> None:
    """Replace the factored Linears by trainable :class:`Factored` modules."""
    for name, (a, b) in factors.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        lin = getattr(parent, child)
        setattr(parent, child, Factored(a, b, lin.bias))
        parent._scalelab_linear = getattr(parent, "_scalelab_linear", {}) | {child: lin}


@torch.no_grad()
def swap_out(model: nn.Module, factors: dict[str, tuple]) -> None:
    """Write each :class:`Factored` product back into its Linear and restore the Linear."""
    for name in factors:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        fac = getattr(parent, child)
        lin = parent._scalelab_linear[child]
        lin.weight.copy_(fac.weight())
        if fac.bias is not None:
            lin.bias.copy_(fac.bias)
        setattr(parent, child, lin)
