"""How big is a model, really: exact parameters, FLOPs per token and memory, analytically.

``count(model, ...) -> Count`` is the entry point (see :mod:`scalelab.accounting.core` for
the definitions); ``size_for(target, ...)`` picks a shape for a parameter count. The
building blocks (:mod:`scalelab.accounting.blocks`) are what each architecture's accounting
function is made of. Nothing in this package imports torch.

The names below load on first use (PEP 562), so that :mod:`scalelab.architectures`, which sits
below :mod:`scalelab.config`, can use the building blocks without this package importing
``core`` (which needs the config) on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab._lazy import lazy_api

if TYPE_CHECKING:
    from scalelab.accounting.blocks import COMPONENTS, Piece, Tally
    from scalelab.accounting.core import (
        N_DEFINITIONS,
        Count,
        Fit,
        Flops,
        Memory,
        Params,
        TrainingTime,
        count,
    )
    from scalelab.accounting.hf import SUPPORTED_MODEL_TYPES
    from scalelab.accounting.memory import (
        DTYPE_BYTES,
        H100_BF16_DENSE_FLOPS,
        format_bytes,
        parse_size,
    )
    from scalelab.accounting.shape import size_for

_API: dict[str, str] = {
    **dict.fromkeys(("COMPONENTS", "Piece", "Tally"), "scalelab.accounting.blocks"),
    **dict.fromkeys(
        ("N_DEFINITIONS", "Count", "Fit", "Flops", "Memory", "Params", "TrainingTime", "count"),
        "scalelab.accounting.core",
    ),
    "SUPPORTED_MODEL_TYPES": "scalelab.accounting.hf",
    **dict.fromkeys(
        ("DTYPE_BYTES", "H100_BF16_DENSE_FLOPS", "format_bytes", "parse_size"),
        "scalelab.accounting.memory",
    ),
    "size_for": "scalelab.accounting.shape",
}

__getattr__, __dir__ = lazy_api(__name__, _API, globals())

__all__ = [
    "COMPONENTS",
    "DTYPE_BYTES",
    "H100_BF16_DENSE_FLOPS",
    "N_DEFINITIONS",
    "SUPPORTED_MODEL_TYPES",
    "Count",
    "Fit",
    "Flops",
    "Memory",
    "Params",
    "Piece",
    "Tally",
    "TrainingTime",
    "count",
    "format_bytes",
    "parse_size",
    "size_for",
]
