"""GLU: the transformer with a gated feed-forward (Shazeer 2020, "GLU Variants Improve Transformer").

The inductive bias is multiplicative interaction inside the feed-forward sublayer:
``FFN(x) = W2 (act(x W) * (x V))`` (Shazeer 2020, eq. 5-6) instead of ``W2 act(x W1)``, with
``act`` = Swish (SwiGLU), GELU (GeGLU) or ReLU (ReGLU), picked by ``model.mlp``. Everything
else is :mod:`scalelab.models.transformer`, so a comparison with ``transformer`` isolates the
gate. The default ``d_ff`` of a gated MLP is 8/3 d_model (rounded up to a multiple of 8),
which keeps the parameter count of the 4 d_model plain MLP (Shazeer 2020, sec. 2).

It is the transformer's module with ``mlp`` restricted to the gated family, registered under
its own name so that studies and reports can compare it as an architecture.
"""

from __future__ import annotations

from scalelab.accounting.transformer import tally_transformer
from scalelab.config import GATED_MLPS, ModelConfig
from scalelab.errors import ConfigError
from scalelab.models import register
from scalelab.models.transformer import Transformer


def check_glu(cfg: ModelConfig) -> None:
    if cfg.mlp not in GATED_MLPS:
        raise ConfigError(
            f"arch 'glu' is the transformer with a gated feed-forward, but model.mlp = "
            f"{cfg.mlp!r}: set model.mlp to one of {', '.join(GATED_MLPS)} "
            "(or use arch 'transformer')"
        )


@register(
    "glu",
    "the transformer with a gated (GLU-family) feed-forward: multiplicative gating in the MLP",
    bidirectional=True,
    accounting=tally_transformer,
    check=check_glu,
    defaults={"mlp": "swiglu"},
)
class GLUTransformer(Transformer):
    """The transformer of ``transformer.py``; ``cfg.mlp`` is ``swiglu``, ``geglu`` or ``reglu``."""

    def __init__(self, cfg: ModelConfig) -> None:
        check_glu(cfg)
        super().__init__(cfg)
