"""How big is a model, really: exact parameters, FLOPs per token and memory, analytically.

``count(model, ...) -> Count`` is the entry point (see :mod:`scalelab.accounting.core` for
the definitions); ``size_for(target, ...)`` picks a shape for a parameter count. The
building blocks (:mod:`scalelab.accounting.blocks`) are what each architecture's accounting
function is made of. Nothing in this package imports torch.
"""

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
