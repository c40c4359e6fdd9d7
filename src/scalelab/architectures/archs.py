"""Every architecture scalelab builds, declared as data: its name, inductive bias, own
``ModelConfig`` fields and defaults, field checks, accounting function and model class.

The model class is a lazy reference ("module:Class" in ``scalelab.models``), so this file,
and everything that checks or counts a config, never imports torch. To add an
architecture: write its module in ``scalelab/models/``, its accounting function in
:mod:`scalelab.accounting.tallies`, and one ``register(Arch(...))`` here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab.architectures.arch import Arch, register
from scalelab.architectures.choices import DEFAULT_MLP, GATED_MLPS
from scalelab.architectures.shapes import albert_d_embed
from scalelab.errors import ConfigError

# each architecture's accounting function, named lazily as its model class is (registry sits
# below accounting; scalelab.accounting.count imports the function when it counts)
T = "scalelab.accounting.tallies:"

if TYPE_CHECKING:
    from scalelab.config import ModelConfig


# -- field checks ------------------------------------------------------------------------------
def check_albert(cfg: ModelConfig) -> None:
    if albert_d_embed(cfg) > cfg.d_model:
        raise ConfigError(
            f"model.d_embed ({cfg.d_embed}) is wider than model.d_model ({cfg.d_model}): "
            "ALBERT factorises the embedding through E <= d_model; lower model.d_embed"
        )


def check_evolved(cfg: ModelConfig) -> None:
    if cfg.d_model % 2:
        raise ConfigError(
            f"arch 'evolved' has a d_model / 2 convolution branch: model.d_model "
            f"({cfg.d_model}) must be even"
        )
    if cfg.mlp != DEFAULT_MLP:
        raise ConfigError(
            f"arch 'evolved' has its own searched Swish feed-forward; model.mlp = {cfg.mlp!r} "
            "does not apply: remove it"
        )


def check_funnel(cfg: ModelConfig) -> None:
    if cfg.pool < 2:
        raise ConfigError(
            f"model.pool = {cfg.pool} does not shorten the sequence: set model.pool >= 2 "
            "(or use arch 'transformer')"
        )


def check_glu(cfg: ModelConfig) -> None:
    if cfg.mlp not in GATED_MLPS:
        raise ConfigError(
            f"arch 'glu' is the transformer with a gated feed-forward, but model.mlp = "
            f"{cfg.mlp!r}: set model.mlp to one of {', '.join(GATED_MLPS)} "
            "(or use arch 'transformer')"
        )


def no_rotary(cfg: ModelConfig) -> None:
    """Check for architectures without attention: rotary positions rotate queries and keys."""
    if cfg.pos == "rotary":
        raise ConfigError(
            f"model.pos = 'rotary' rotates attention queries and keys, and arch {cfg.arch!r} "
            "has no attention: set model.pos = 'learned' or 'none'"
        )


# -- the architectures ---------------------------------------------------------------------
M = "scalelab.models."

register(
    Arch(
        "transformer",
        M + "transformer:Transformer",
        "dense self-attention over every earlier token: the baseline",
        fields=(
            "parametrization",
            "base_width",
            "mup_zero_readout",
            "base_n_head",
        ),  # muP: transformer only
        bidirectional=True,
        accounting=T + "tally_transformer",
    )
)
register(
    Arch(
        "albert",
        M + "albert:Albert",
        "factorised embedding (E < d_model) and one block's weights shared by all layers",
        fields=("d_embed",),
        bidirectional=True,
        accounting=T + "tally_albert",
        check=check_albert,
    )
)
register(
    Arch(
        "lconv",
        M + "conv:LightConvLM",
        "lightweight convolution: local, softmax-normalised kernels shared by each head's channels",
        fields=("kernel_size",),
        accounting=T + "tally_lconv",
        check=no_rotary,
    )
)
register(
    Arch(
        "dconv",
        M + "conv:DynamicConvLM",
        "dynamic convolution: local kernels predicted per position from the current token",
        fields=("kernel_size",),
        accounting=T + "tally_dconv",
        check=no_rotary,
    )
)
register(
    Arch(
        "evolved",
        M + "evolved:EvolvedTransformer",
        "Evolved Transformer decoder: wide attention, branched separable convolutions, Swish FFN",
        accounting=T + "tally_evolved",
        check=check_evolved,
    )
)
register(
    Arch(
        "funnel",
        M + "funnel:Funnel",
        "middle blocks on a k-times shorter sequence (shift, pool, upsample: Hourglass-causal)",
        fields=("pool",),
        accounting=T + "tally_funnel",
        check=check_funnel,
    )
)
register(
    Arch(
        "glu",
        M + "glu:GLUTransformer",
        "the transformer with a gated (GLU-family) feed-forward: multiplicative gating in the MLP",
        bidirectional=True,
        accounting=T + "tally_transformer",
        check=check_glu,
        defaults={"mlp": "swiglu"},
    )
)
register(
    Arch(
        "mixer",
        M + "mixer:Mixer",
        "MLP-Mixer: fixed, causally masked position-to-position weights instead of attention",
        accounting=T + "tally_mixer",
        check=no_rotary,
    )
)
register(
    Arch(
        "mos",
        M + "mos:MixtureOfSoftmaxes",
        "mixture of softmaxes output: K softmaxes mixed by a prior, a high-rank output layer",
        fields=("n_softmax",),
        bidirectional=True,
        accounting=T + "tally_mos",
    )
)
register(
    Arch(
        "performer",
        M + "performer:Performer",
        "FAVOR+ linear attention with positive orthogonal random features (low-rank, O(T))",
        fields=("n_features", "feature_redraw"),
        accounting=T + "tally_performer",
    )
)
register(
    Arch(
        "switch",
        M + "switch:SwitchTransformer",
        "top-1 mixture-of-experts feed-forward: parameters grow with experts, compute does not",
        fields=("n_experts", "capacity_factor", "aux_loss_coef"),
        bidirectional=True,
        accounting=T + "tally_switch",
    )
)
register(Arch(
    "universal", M + "universal:UniversalTransformer",
    "one block's weights applied n_layer times (recurrence in depth, fixed steps)",
    bidirectional=True, accounting=T + "tally_universal",
))  # fmt: skip
