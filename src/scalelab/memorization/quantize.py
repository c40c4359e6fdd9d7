"""Round-to-nearest weight quantization, to ask how many stored bits survive int8 and int4.

Written here because the compression issue's quantizer was not on ``main`` when this was
built; it is the plain baseline of that literature: symmetric, per output channel (one
scale per row of every weight matrix, embeddings included), ``w_q = s * round(w / s)``
with ``s = max|w_row| / (2**(b-1) - 1)``, clipped to the signed b-bit range (Dettmers et
al. 2022 sec. 2 and Frantar et al. 2023 use it as the RTN baseline). Norm gains and
biases stay in floating point, as in those papers. The model is changed in place, in fp32
(fake quantization: the values are exactly those an int-b kernel would use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

PRECISIONS = {"fp32": None, "int8": 8, "int4": 4}


def quantize_rtn(model: nn.Module, bits: int) -> int:
    """Quantize every parameter of two or more dimensions to ``bits`` (2..8) in place;
    returns how many parameters were quantized (tied weights once)."""
    import torch

    if not 2 <= bits <= 8:
        raise ConfigError(f"round-to-nearest quantization takes 2..8 bits, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    done = 0
    with torch.no_grad():
        for p in model.parameters():  # parameters() yields a tied tensor once
            if p.dim() < 2:
                continue
            w = p.reshape(p.shape[0], -1)
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / qmax
            w.copy_(torch.clamp(torch.round(w / scale), -qmax, qmax) * scale)
            done += p.numel()
    return done


def apply_precision(model: nn.Module, precision: str) -> int:
    """``precision`` in fp32 (unchanged), int8, int4; returns the count quantized."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    bits = PRECISIONS[precision]
    return 0 if bits is None else quantize_rtn(model, bits)


__all__ = ["PRECISIONS", "apply_precision", "quantize_rtn"]
