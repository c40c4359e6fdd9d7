"""Each architecture's accounting function, ``ModelConfig -> Tally``, from the torch-free
blocks of :mod:`scalelab.accounting.blocks` (docs/internals.md, "Accounting hook").

Every function mirrors the module it counts in ``scalelab.models`` piece by piece, and
``tests/models`` checks that ``count(cfg).params.total`` equals the built module's
``sum(p.numel())`` and the forward FLOPs equal torch's FlopCounterMode.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from scalelab.accounting.blocks import (
    Piece,
    Tally,
    attention,
    embeddings,
    linear,
    lm_head,
    mlp,
    moe,
    norm,
)
from scalelab.accounting.transformer import TransformerShape, tally_shape
from scalelab.architectures.choices import GATED_MLPS
from scalelab.architectures.shapes import (
    albert_d_embed,
    conv_kernel_widths,
    evolved_wide_config,
    funnel_split,
    performer_chunk,
    performer_features,
)

if TYPE_CHECKING:
    from scalelab.config import ModelConfig


# -- scalelab's transformer (and glu): the Hugging Face families' TransformerShape ----------------------
def shape_from_config(cfg: ModelConfig) -> TransformerShape:
    """The :class:`TransformerShape` of scalelab's own transformer (``scalelab.models.transformer``)."""
    assert cfg.n_kv_head is not None and cfg.d_ff is not None
    return TransformerShape(
        n_layer=cfg.n_layer,
        d_model=cfg.d_model,
        n_head=cfg.n_head,
        n_kv_head=cfg.n_kv_head,
        head_dim=cfg.head_dim,
        d_ff=cfg.d_ff,
        vocab_size=cfg.vocab_size,
        context=cfg.context,
        gated=cfg.mlp in GATED_MLPS,
        qkv_bias=cfg.bias,
        out_bias=cfg.bias,
        mlp_bias=cfg.bias,
        norm_bias=cfg.norm == "layernorm" and cfg.bias,
        learned_positions=cfg.context if cfg.pos == "learned" else 0,
        tie_embeddings=cfg.tie_embeddings,
        causal=cfg.causal,
    )


def tally_transformer(cfg: ModelConfig) -> Tally:
    """Accounting function of the ``transformer`` (and ``glu``) architecture."""
    return tally_shape(shape_from_config(cfg))


# -- the stem every CausalLM shares (scalelab.models.base) ----------------------------------
def tally_lm(
    cfg: ModelConfig,
    body: Piece,
    *,
    n_layer: int | None = None,
    n_head: int | None = None,
    d_embed: int | None = None,
    head: Piece | None = None,
) -> Tally:
    """The stem of ``CausalLM`` around ``body``: embeddings, final norm and head.

    ``n_layer`` and ``n_head`` feed only the activation-memory estimate (Korthikanti et al.
    2022): pass ``n_head = 0`` for a body without a T x T softmax score matrix. ``d_embed`` is
    the embedding width (default d_model); ``head`` replaces the plain LM head's piece (a
    mixture of softmaxes).
    """
    e = cfg.d_model if d_embed is None else d_embed
    learned = cfg.context if cfg.pos == "learned" else 0
    if head is None:
        head = lm_head(e, cfg.vocab_size, tied=cfg.tie_embeddings)
    total = embeddings(cfg.vocab_size, e, positions=learned) + body + norm_piece(cfg) + head
    return Tally(
        body=total,
        embedding=(cfg.vocab_size + learned) * e,
        untied_head=0 if cfg.tie_embeddings else cfg.vocab_size * e,
        n_layer=cfg.n_layer if n_layer is None else n_layer,
        d_model=cfg.d_model,
        n_head=cfg.n_head if n_head is None else n_head,
        context=cfg.context,
        causal=cfg.causal,
    )


def norm_piece(cfg: ModelConfig, d: int | None = None) -> Piece:
    """The accounting of ``make_norm(cfg)`` over ``d`` features (default d_model)."""
    return norm(cfg.d_model if d is None else d, bias=cfg.norm == "layernorm" and cfg.bias)


def attention_piece(cfg: ModelConfig) -> Piece:
    """The accounting of ``transformer.Attention(cfg)``."""
    return attention(
        cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.head_dim, qkv_bias=cfg.bias, out_bias=cfg.bias
    )


def mlp_piece(cfg: ModelConfig) -> Piece:
    """The accounting of ``transformer.MLP(cfg)``."""
    assert cfg.d_ff is not None
    return mlp(cfg.d_model, cfg.d_ff, gated=cfg.mlp in GATED_MLPS, bias=cfg.bias)


def block_piece(cfg: ModelConfig) -> Piece:
    """The accounting of ``transformer.Block(cfg)``: two norms, attention, MLP."""
    return norm_piece(cfg) * 2 + attention_piece(cfg) + mlp_piece(cfg)


# -- one function per architecture, in the order of scalelab.architectures.archs ----------------
def tally_universal(cfg: ModelConfig) -> Tally:
    return tally_lm(cfg, block_piece(cfg).reused(cfg.n_layer))


def tally_albert(cfg: ModelConfig) -> Tally:
    e = albert_d_embed(cfg)
    body = (
        linear(e, cfg.d_model, bias=cfg.bias, component="embeddings")  # emb_up E -> H
        + block_piece(cfg).reused(cfg.n_layer)
        + linear(cfg.d_model, e, bias=cfg.bias, component="head")  # head_down H -> E
    )
    return tally_lm(cfg, body, d_embed=e)


def tally_switch(cfg: ModelConfig) -> Tally:
    assert cfg.d_ff is not None
    experts = moe(
        cfg.d_model, cfg.n_experts, 1, cfg.d_ff, gated=cfg.mlp in GATED_MLPS, bias=cfg.bias
    )
    block = norm_piece(cfg) * 2 + attention_piece(cfg) + experts
    return tally_lm(cfg, block * cfg.n_layer)


def favor_piece(cfg: ModelConfig) -> Piece:
    """The transformer's attention projections, with FAVOR+ mixing instead of softmax."""
    m, hd, C = performer_features(cfg), cfg.head_dim, performer_chunk(cfg)
    per_head = 2 * m * hd + 2 * m * (hd + 1) + C * (m + hd + 1)
    return dataclasses.replace(
        attention_piece(cfg), mix_macs_per_position=0, mix_macs=cfg.n_head * per_head, kv=0
    )


def tally_performer(cfg: ModelConfig) -> Tally:
    block = norm_piece(cfg) * 2 + favor_piece(cfg) + mlp_piece(cfg)
    # no T x T score matrix to store: n_head = 0 in the activation estimate; the generation
    # state is a fixed m x (hd + 1) per head, not a per-token cache (kv = 0)
    return tally_lm(cfg, block * cfg.n_layer, n_head=0)


def shortened(piece: Piece, k: int) -> Piece:
    """A block run on a sequence k times shorter, per token of the full sequence."""
    return Piece(
        dict(piece.params),
        piece.active,
        round(piece.macs / k),
        round(piece.mix_macs_per_position / k**2),
        round(piece.mix_macs / k),
        round(piece.kv / k),
    )


def tally_funnel(cfg: ModelConfig) -> Tally:
    pre, short, post = funnel_split(cfg)
    block = block_piece(cfg)
    return tally_lm(cfg, block * (pre + post) + shortened(block, cfg.pool) * short)


def conv_piece(cfg: ModelConfig, width: int, dynamic: bool) -> Piece:
    d, H = cfg.d_model, cfg.n_head
    piece = linear(d, 2 * d, bias=cfg.bias, component="conv") + linear(
        d, d, bias=cfg.bias, component="conv"
    )
    if dynamic:
        piece = piece + linear(d, H * width, bias=cfg.bias, component="conv")
    else:
        piece = piece + Piece({"conv": H * width}, H * width)
    return piece + Piece(mix_macs=d * width)


def _tally_conv(cfg: ModelConfig, dynamic: bool) -> Tally:
    rest = norm_piece(cfg) * 2 + mlp_piece(cfg)
    body = sum((conv_piece(cfg, k, dynamic) + rest for k in conv_kernel_widths(cfg)), Piece())
    return tally_lm(cfg, body, n_head=0)


def tally_lconv(cfg: ModelConfig) -> Tally:
    return _tally_conv(cfg, dynamic=False)


def tally_dconv(cfg: ModelConfig) -> Tally:
    return _tally_conv(cfg, dynamic=True)


def token_mixing_piece(cfg: ModelConfig) -> Piece:
    T = cfg.context
    n = 2 * (T * (T + 1) // 2 + (T if cfg.bias else 0))
    return Piece({"token_mixing": n}, n, mix_macs_per_position=2 * cfg.d_model)


def tally_mixer(cfg: ModelConfig) -> Tally:
    block = norm_piece(cfg) * 2 + token_mixing_piece(cfg) + mlp_piece(cfg)
    return tally_lm(cfg, block * cfg.n_layer, n_head=0)


def tally_mos(cfg: ModelConfig) -> Tally:
    d, K = cfg.d_model, cfg.n_softmax
    head = (
        linear(d, K, bias=cfg.bias, component="head")  # prior
        + linear(d, K * d, bias=cfg.bias, component="head")  # latent
        + lm_head(d, cfg.vocab_size, tied=cfg.tie_embeddings).reused(K)
    )
    return tally_lm(cfg, block_piece(cfg) * cfg.n_layer, head=head)


def separable_piece(c_in: int, c_out: int, width: int, bias: bool) -> Piece:
    depthwise = Piece({"conv": c_in * width}, c_in * width, mix_macs=c_in * width)
    return depthwise + linear(c_in, c_out, bias=bias, component="conv")


def tally_evolved(cfg: ModelConfig) -> Tally:
    d, wide = cfg.d_model, evolved_wide_config(cfg)
    assert cfg.d_ff is not None
    block = (
        norm_piece(cfg) * 4
        + norm_piece(cfg, 2 * d)
        + norm_piece(cfg, cfg.d_ff)
        + attention_piece(wide)
        + separable_piece(d, 2 * d, 11, cfg.bias)
        + separable_piece(d, d // 2, 7, cfg.bias)
        + separable_piece(2 * d, d, 7, cfg.bias)
        + attention_piece(cfg)
        + mlp(d, cfg.d_ff, bias=cfg.bias)
    )
    return tally_lm(cfg, block * cfg.n_layer, n_head=cfg.n_head + wide.n_head)
