"""Round-to-nearest weight quantization, to ask how many stored bits survive int8 and int4.

The arithmetic is the compression quantizer's (:func:`scalelab.techniques.compress.quant.rtn`,
one quantizer in the package): asymmetric, per output channel (one grid per row), integer
codes in ``[0, 2^b - 1]`` with a float16 scale and an integer zero point, the grid spanning
``[min(w, 0), max(w, 0)]`` (the plain RTN baseline of Dettmers et al. 2022 and Frantar et
al. 2023). What differs is the scope: compression quantizes the body's Linears and keeps the
embeddings, while the capacity measure asks what the *whole* model keeps (Allen-Zhu & Li
quantize the model), so here every parameter of two or more dimensions is quantized,
embeddings included; norm gains and biases stay in floating point. The model is changed
in place, in fp32 (fake quantization: the values are exactly those an int-b kernel would
use).

Until issue 21 this module had a quantizer of its own (symmetric, ``s = max|w| / (2^(b-1) - 1)``
per row); int8 and int4 capacities measured before then used that grid.
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

    from scalelab.techniques.compress.quant import rtn

    if not 2 <= bits <= 8:
        raise ConfigError(f"round-to-nearest quantization takes 2..8 bits, got {bits}")
    done = 0
    with torch.no_grad():
        for p in model.parameters():  # parameters() yields a tied tensor once
            if p.dim() < 2:
                continue
            w = p.reshape(p.shape[0], -1)
            w.copy_(rtn(w, bits).to(w.dtype))
            done += p.numel()
    return done


def apply_precision(model: nn.Module, precision: str) -> int:
    """``precision`` in fp32 (unchanged), int8, int4; returns the count quantized."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    bits = PRECISIONS[precision]
    return 0 if bits is None else quantize_rtn(model, bits)


__all__ = ["PRECISIONS", "apply_precision", "quantize_rtn"]
