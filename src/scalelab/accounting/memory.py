"""Memory arithmetic: bytes per parameter, training state, activations, KV cache, sizes.

Sources for the constants:

* Mixed-precision AdamW keeps, per parameter, 16-bit weights (2 B) and gradients (2 B), an fp32
  master copy (4 B) and fp32 Adam moments m and v (4 + 4 B): 16 B, or 18 B with fp32 gradients
  (Rajbhandari et al. 2020, "ZeRO", sec. 3.1, who count 2 + 2 + 12 = 16 B per parameter).
* Activations of one transformer layer, 16-bit, with dropout and a 4h MLP:
  ``s b h (34 + 5 a s / h)`` bytes without recomputation, ``34 s b h`` with selective
  recomputation (the attention core recomputed) and ``2 s b h`` with full recomputation (only
  the layer's input kept) (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large
  Transformer Models", eqs. 1-2 and sec. 4.1 / 5).
* H100 SXM dense BF16 tensor-core peak: 989 TFLOP/s (NVIDIA H100 Tensor Core GPU datasheet,
  "BF16 Tensor Core 1,979 teraFLOPS" quoted with 2:4 sparsity, i.e. half of it dense).
"""

from __future__ import annotations

import math
import re

from scalelab.errors import ConfigError, did_you_mean

# bytes per stored element; int4 packs two parameters per byte (quantization scales not counted)
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
}
_DTYPE_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}

H100_BF16_DENSE_FLOPS = 989e12
DEFAULT_MFU = (
    0.4  # Llama 3 405B reached 38-43% BF16 MFU on 8k-16k H100s (Dubey et al. 2024, Table 4)
)

RECOMPUTE = ("none", "selective", "full")


def check_dtype(dtype: str) -> str:
    name = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if name not in DTYPE_BYTES:
        raise ConfigError(
            f"dtype {dtype!r} is not one of {', '.join(DTYPE_BYTES)}{did_you_mean(name, DTYPE_BYTES)}"
        )
    return name


def nbytes(elements: int, dtype: str) -> int:
    """Bytes of ``elements`` values stored as ``dtype`` (rounded up to whole bytes)."""
    return math.ceil(elements * DTYPE_BYTES[check_dtype(dtype)])


def adamw_bytes_per_param(grad_dtype: str = "bf16") -> dict[str, int]:
    """Bytes per parameter of mixed-precision AdamW training, by what they hold."""
    grads = {"bf16": 2, "fp16": 2, "fp32": 4}
    if grad_dtype not in grads:
        raise ConfigError(f"grad_dtype {grad_dtype!r} is not one of {', '.join(grads)}")
    return {"weights": 2, "gradients": grads[grad_dtype], "master": 4, "adam_m": 4, "adam_v": 4}


def activation_bytes_per_token(
    n_layer: int, d_model: int, n_head: int, seq_len: int, recompute: str = "none"
) -> int:
    """Korthikanti et al. (2022) activation bytes per token, summed over the layers.

    Per layer and token, ``h (34 + 5 a s / h) = 34 h + 5 a s`` bytes without recomputation,
    ``34 h`` with selective and ``2 h`` with full recomputation. The formula is the paper's
    (16-bit activations, dropout, multi-head attention, 4h MLP), applied as is to every model.
    """
    if recompute not in RECOMPUTE:
        raise ConfigError(
            f"recompute {recompute!r} is not one of {', '.join(RECOMPUTE)}"
            f"{did_you_mean(recompute, RECOMPUTE)}"
        )
    per_layer = {
        "none": 34 * d_model + 5 * n_head * seq_len,
        "selective": 34 * d_model,
        "full": 2 * d_model,
    }[recompute]
    return n_layer * per_layer


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int | float, field: str = "device_memory") -> int:
    """Bytes from ``"80GiB"``, ``"80GB"``, ``"8e10"``, ``"512 MiB"`` or a number of bytes."""
    if isinstance(text, bool):
        raise ConfigError(f"{field} must be a size such as 80GiB, 80GB or 8e10, got {text!r}")
    if isinstance(text, (int, float)):
        value, unit = float(text), ""
    else:
        m = _SIZE.match(text)
        if not m or m.group(2).lower() not in _UNITS:
            raise ConfigError(
                f"{field} {text!r} is not a size: write e.g. 80GiB, 80GB, 512MiB or 8e10 (bytes)"
            )
        value, unit = float(m.group(1)), m.group(2).lower()
    size = value * _UNITS[unit]
    if not math.isfinite(size) or size <= 0:
        raise ConfigError(f"{field} must be a positive size, got {text!r}")
    return int(size)


def format_bytes(n: float) -> str:
    """``1.5 GiB`` style, binary units."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def parse_count(text: str | int | float, field: str) -> float:
    """A positive number written as ``15.6e12``, ``15.6T``, ``2B``, ``300M`` or ``1_000``."""
    if isinstance(text, bool):
        raise ConfigError(f"{field} must be a positive number, got {text!r}")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        m = re.match(r"^\s*([0-9_]*\.?[0-9_]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBtT]?)\s*$", text)
        if not m:
            raise ConfigError(f"{field} {text!r} is not a number: write e.g. 15.6e12 or 15.6T")
        scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
        value = float(m.group(1).replace("_", "")) * scale
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{field} must be a positive number, got {text!r}")
    return value
