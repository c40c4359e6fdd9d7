"""GLU: the transformer with a gated feed-forward (Shazeer 2020, "GLU Variants Improve Transformer").

The inductive bias is multiplicative interaction inside the feed-forward sublayer:
``FFN(x) = W2 (act(x W) * (x V))`` (Shazeer 2020, eq. 5-6) instead of ``W2 act(x W1)``, with
``act`` = Swish (SwiGLU), GELU (GeGLU) or ReLU (ReGLU), picked by ``model.mlp``. Everything
else is :mod:`scalelab.models.transformer`, so a comparison with ``transformer`` isolates the
gate. The default ``d_ff`` of a gated MLP is 8/3 d_model (rounded up to a multiple of 8),
which keeps the parameter count of the 4 d_model plain MLP (Shazeer 2020, sec. 2).

It is the transformer's module with ``mlp`` restricted to the gated family (checked by the
registry, which also makes ``swiglu`` its default), registered under
its own name so that studies and reports can compare it as an architecture.
"""

from __future__ import annotations

from scalelab.config import ModelConfig
from scalelab.models.transformer import Transformer


class GLUTransformer(Transformer):
    """The transformer of ``transformer.py``; ``cfg.mlp`` is ``swiglu``, ``geglu`` or ``reglu``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
