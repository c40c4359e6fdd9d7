"""Random projections P: R^d -> R^D for subspace training, theta = theta_0 + P z (Li et al. 2018).

Three kinds, each with columns of unit length (Li et al. normalise P's columns so a step of
1 in any z_i moves theta by a distance of 1):

* ``dense``: i.i.d. Gaussian entries; stores D x d numbers (the reference, and the cost that
  rules it out beyond a few million D x d).
* ``sparse``: the very sparse random projection of Li, Hastie & Church (2006) that Li et al.
  use for large D: entries +-1 with probability 1/sqrt(D) each column-wise, else 0 (about
  d sqrt(D) non-zeros), stored sparse.
* ``fastfood``: the Fastfood transform of Le, Sarlos & Smola (2013), V = H G Pi H B, with H
  the Walsh-Hadamard matrix applied by the fast transform (O(L log L), never stored), B a
  random +-1 diagonal, Pi a random permutation and G a Gaussian diagonal; z is padded with
  zeros to L = 2^ceil(log2 D) and the first D outputs kept. Only B, Pi and G are stored: O(D)
  memory whatever d is, which is what makes the intrinsic dimension of a large model
  measurable (Aghajanyan et al. 2021 use it for that reason).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.intrinsic.options import PROJECTIONS


def fwht(x: torch.Tensor) -> torch.Tensor:
    """The (unnormalised) fast Walsh-Hadamard transform over the last dimension, whose size
    must be a power of two: H x with H_{ij} = (-1)^{popcount(i & j)}, in log2(L) butterfly
    passes. H is symmetric and H H = L I, so autograd's backward is the same transform."""
    n = x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    lead = x.shape[:-1]
    h = 1
    while h < n:
        y = x.reshape(*lead, n // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        x = torch.stack((a + b, a - b), dim=-2).reshape(*lead, n)
        h *= 2
    return x


class Projection(nn.Module):
    """``forward(z[d]) -> delta[D]``; the random state is fixed by ``seed`` and kept in
    buffers (not trained)."""

    def __init__(self, D: int, d: int) -> None:
        super().__init__()
        if not 1 <= d <= D:
            raise ConfigError(
                f"the subspace dimension d must be between 1 and the parameter count D = {D}, "
                f"got {d}"
            )
        self.D, self.d = D, d

    def state_bytes(self) -> int:
        """Bytes of the tensors this projection holds (its memory cost)."""
        total = 0
        for b in self.buffers():
            if b.is_sparse:
                total += b._values().nbytes + b._indices().nbytes
            else:
                total += b.nbytes
        return total


class DenseProjection(Projection):
    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d)
        g = torch.Generator().manual_seed(seed)
        P = torch.randn(D, d, generator=g)
        self.register_buffer("P", P / P.norm(dim=0, keepdim=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.P @ z


class SparseProjection(Projection):
    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d)
        g = torch.Generator().manual_seed(seed)
        # Li, Hastie & Church (2006): s = sqrt(D), so each entry is non-zero with prob 1/s.
        per_column = max(1, round(D / math.sqrt(D)))
        rows = torch.randint(0, D, (d, per_column), generator=g).reshape(-1)
        cols = torch.arange(d).repeat_interleave(per_column)
        signs = torch.randint(0, 2, (d * per_column,), generator=g).float() * 2 - 1
        P = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), signs, (D, d), check_invariants=True
        ).coalesce()
        # a repeated row index sums its two signs; normalise each column to unit length
        norms = torch.zeros(d).index_add_(0, P.indices()[1], P.values() ** 2).sqrt()
        values = P.values() / norms.clamp_min(1e-12)[P.indices()[1]]
        self.register_buffer(
            "P",
            torch.sparse_coo_tensor(P.indices(), values, (D, d), check_invariants=True).coalesce(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sparse.mm(self.P, z.unsqueeze(1)).squeeze(1)


class FastfoodProjection(Projection):
    def __init__(self, D: int, d: int, seed: int = 0) -> None:
        super().__init__(D, d)
        g = torch.Generator().manual_seed(seed)
        L = 1 << max(0, (D - 1).bit_length())
        self.L = L
        self.register_buffer("B", torch.randint(0, 2, (L,), generator=g).float() * 2 - 1)
        self.register_buffer("Pi", torch.randperm(L, generator=g))
        G = torch.randn(L, generator=g)
        self.register_buffer("G", G)
        # Column j of H G Pi H B is H (g * s) for a +-1 vector s: norm sqrt(L) ||G|| over all
        # L rows. Only the first D rows are kept, which hold a share D / L of that squared
        # norm on average, so the divisor is sqrt(L) ||G|| sqrt(D / L) = sqrt(D) ||G||: unit
        # columns at every D, as for the dense projection. The public PyTorch implementations
        # of Li et al.'s and Aghajanyan et al.'s Fastfood subspace divide by
        # ``divisor * sqrt(D / L)`` for this reason. Without the sqrt(D / L) a column is
        # sqrt(D / L) long, 0.71 just above a power of two and 1.0 just below, and the step
        # a unit of z takes in parameter space changes with model size.
        self.scale = 1.0 / (math.sqrt(L) * float(G.norm()) * math.sqrt(D / L))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.zeros(self.L, dtype=z.dtype, device=z.device)
        x = x.index_copy(0, torch.arange(self.d, device=z.device), z)
        x = fwht(x * self.B)
        x = fwht(x[self.Pi] * self.G)
        return x[: self.D] * self.scale


def make_projection(kind: str, D: int, d: int, seed: int = 0) -> Projection:
    if kind == "dense":
        if D * d > 2e9:
            raise ConfigError(
                f"a dense projection of D = {D} by d = {d} holds {4 * D * d / 2**30:.0f} GiB; "
                "use --projection fastfood (it stores O(D), not D x d)"
            )
        return DenseProjection(D, d, seed)
    if kind == "sparse":
        return SparseProjection(D, d, seed)
    if kind == "fastfood":
        return FastfoodProjection(D, d, seed)
    raise ConfigError(f"projection {kind!r} is not one of {', '.join(PROJECTIONS)}")
