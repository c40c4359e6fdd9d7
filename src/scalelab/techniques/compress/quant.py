"""Weight-only quantization of the body's Linears: round-to-nearest and GPTQ.

The stored format is asymmetric uniform quantization per output channel (``group = 0``)
or per group of ``group`` consecutive input columns of each row: integer codes in
``[0, 2^bits - 1]``, and per group a scale (stored as a 16-bit float, so it is rounded
to fp16 *before* it is used) and an integer zero point of ``bits`` bits. The grid of a
group spans ``[min(w, 0), max(w, 0)]`` (zero is exactly representable). The model is
evaluated with the weights dequantized from exactly those codes, scales and zero
points, so its loss is the loss of the stored bits.

* **RTN**: every weight to its nearest grid point.
* **GPTQ** (Frantar et al. 2022, Algorithm 1): columns are quantized one at a time, and
  each column's rounding error is spread over the columns not yet quantized through the
  inverse Hessian of the layer's reconstruction loss, ``H = 2 X X^T`` over a calibration
  sample X of the layer's inputs. As in the paper: a dampening of 1% of the mean diagonal,
  the inverse through a Cholesky factorisation (the upper factor of ``H^-1`` holds the
  rows the update needs), lazy batch updates in blocks of 128 columns, and layers
  quantized in forward order, each block's calibration inputs computed with the earlier
  blocks already quantized. Group parameters are fitted when the sweep reaches the group
  (on the error-updated weights), as the paper's group-wise variant does. No activation
  reordering (``act_order``).

No kept library does this on CPU for arbitrary torch modules (auto-gptq and its successors
need CUDA kernels and Hugging Face model classes), so it is written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.techniques.compress.base import BASE_BITS, TensorCost, body_linears
from scalelab.techniques.compress_options import ALGORITHMS, BITS, GROUPS

BLOCK = 128  # GPTQ's lazy-batch width (Frantar et al. 2022, sec. 4, step 2)
DAMP = 0.01  # GPTQ's dampening, a share of the mean diagonal of H


@dataclass
class Grid:
    """Scales and zero points of one group of rows: [rows, 1] each."""

    scale: torch.Tensor
    zero: torch.Tensor
    maxq: int

    @classmethod
    def fit(cls, w: torch.Tensor, bits: int) -> Grid:
        maxq = 2**bits - 1
        lo = w.min(dim=1, keepdim=True).values.clamp(max=0)
        hi = w.max(dim=1, keepdim=True).values.clamp(min=0)
        flat = (lo == 0) & (hi == 0)
        lo, hi = torch.where(flat, -1.0, lo), torch.where(flat, 1.0, hi)
        scale = _fp16_up((hi - lo) / maxq)  # stored in 16 bits: use what is stored
        zero = torch.round(-lo / scale).clamp(0, maxq)
        return cls(scale, zero, maxq)

    def codes(self, w: torch.Tensor) -> torch.Tensor:
        return torch.clamp(torch.round(w / self.scale) + self.zero, 0, self.maxq)

    def dequant(self, q: torch.Tensor) -> torch.Tensor:
        return self.scale * (q - self.zero)


def _fp16_up(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded *up* to a positive float16 (as float32): the stored scale, never so
    small that the group's range overflows the codes."""
    x = x.float().clamp(min=float(torch.finfo(torch.float16).tiny) * 2**-10)  # > 0
    h = x.half()
    low = h.float() < x
    raw = h.view(torch.int16).clone()
    raw[low] += 1  # the next float16 up (positive finite numbers are ordered as integers)
    return raw.view(torch.float16).float()


def _check(bits: int, group: int, algorithm: str) -> None:
    if bits not in BITS:
        raise ConfigError(f"quant level is the bits per weight, one of {BITS}; got {bits}")
    if group not in GROUPS:
        raise ConfigError(f"quant group must be one of {GROUPS} (0: per channel); got {group}")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"quant algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")


def _groups(cols: int, group: int) -> list[tuple[int, int]]:
    size = group or cols
    return [(a, min(a + size, cols)) for a in range(0, cols, size)]


@torch.no_grad()
def rtn(w: torch.Tensor, bits: int, group: int = 0) -> torch.Tensor:
    """Round-to-nearest: the dequantized weight."""
    w = w.float()
    out = torch.empty_like(w)
    for a, b in _groups(w.shape[1], group):
        g = Grid.fit(w[:, a:b], bits)
        out[:, a:b] = g.dequant(g.codes(w[:, a:b]))
    return out


@torch.no_grad()
def gptq(w: torch.Tensor, H: torch.Tensor, bits: int, group: int = 0) -> torch.Tensor:
    """GPTQ of one weight [out, in] given ``H = 2 X X^T / n`` [in, in]: the dequantized weight."""
    W = w.float().clone()
    H = H.double().clone()
    cols = W.shape[1]
    dead = torch.diag(H) == 0  # inputs that never fire: their weights cannot matter
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += DAMP * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=H.dtype)
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True).float()
    Q = torch.zeros_like(W)
    grid = Grid.fit(W, bits) if group == 0 else None
    block = BLOCK if group == 0 else max(group, BLOCK // group * group)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            if group and (i1 + i) % group == 0:
                grid = Grid.fit(W1[:, i : i + group], bits)  # the group's updated weights
            assert grid is not None
            w_col = W1[:, i : i + 1]
            q = grid.dequant(grid.codes(w_col))
            Q[:, i1 + i] = q[:, 0]
            err = (w_col - q) / Hinv1[i, i]
            W1[:, i:] -= err @ Hinv1[i : i + 1, i:]
            Err1[:, i] = err[:, 0]
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return Q


def quant_cost(name: str, w: torch.Tensor, bits: int, group: int) -> TensorCost:
    """Codes + a 16-bit scale and a ``bits``-bit zero point per group and row."""
    rows, cols = w.shape
    n_groups = rows * math.ceil(cols / (group or cols))
    total = w.numel() * bits + n_groups * (BASE_BITS + bits)
    enc = f"int{bits}" + (f"g{group}" if group else "ch")
    return TensorCost(name, w.numel(), int((w != 0).sum()), total, enc)


def _block_of(name: str) -> str:
    return ".".join(name.split(".")[:2])  # "blocks.3.attn.qkv" -> "blocks.3"


@torch.no_grad()
def quantize(
    model: nn.Module,
    bits: int,
    *,
    group: int = 0,
    algorithm: str = "rtn",
    calib: torch.Tensor | None = None,
) -> dict[str, TensorCost]:
    """Quantize the body's Linears in place (weights replaced by their dequantized values);
    returns the cost of every quantized weight."""
    _check(int(bits), group, algorithm)
    bits = int(bits)
    layers = body_linears(model)
    costs: dict[str, TensorCost] = {}
    if algorithm == "rtn":
        for name, m in layers:
            m.weight.copy_(rtn(m.weight, bits, group))
            costs[f"{name}.weight"] = quant_cost(f"{name}.weight", m.weight, bits, group)
        return costs
    assert calib is not None, "GPTQ needs a calibration sample"
    by_block: dict[str, list[tuple[str, nn.Linear]]] = {}
    for name, m in layers:
        by_block.setdefault(_block_of(name), []).append((name, m))
    for block_layers in by_block.values():  # forward order: earlier blocks already quantized
        hs = {name: _Hessian(m) for name, m in block_layers}
        try:
            model(calib)
        finally:
            for h in hs.values():
                h.remove()
        for name, m in block_layers:
            m.weight.copy_(gptq(m.weight, hs[name].H, bits, group).to(m.weight.dtype))
            costs[f"{name}.weight"] = quant_cost(f"{name}.weight", m.weight, bits, group)
    return costs


class _Hessian:
    """Accumulates ``H = 2 X X^T / n`` from a Linear's inputs (a forward pre-hook)."""

    def __init__(self, m: nn.Linear) -> None:
        cols = m.weight.shape[1]
        self.H = torch.zeros(cols, cols, dtype=torch.float64, device=m.weight.device)
        self.n = 0
        self.handle = m.register_forward_pre_hook(self)

    def __call__(self, _m: nn.Module, args: tuple) -> None:
        x = args[0].detach().flatten(0, -2).double()
        k = x.shape[0]
        self.H *= self.n / (self.n + k)
        self.n += k
        self.H += (2.0 / self.n) * x.T @ x

    def remove(self) -> None:
        self.handle.remove()
