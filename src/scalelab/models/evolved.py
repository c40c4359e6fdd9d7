"""The Evolved Transformer's decoder block, for a decoder-only LM (So et al. 2019, "The Evolved
Transformer", fig. 3; layer by layer as in tensor2tensor's ``evolved_transformer_decoder``).

The inductive bias is a searched mixture of local and global mixing: wide attention, then
two convolution branches of different widths, then ordinary attention, then a Swish
feed-forward, each a pre-norm residual sublayer:

    x = x + Attention_wide(LN(x))                          twice the heads (16 for 8), capped at 16
    l = ReLU(SepConv_11(LN(x)) -> 2d)                      left branch, 11-tap
    r = SepConv_7(LN(x)) -> d/2, zero-padded to 2d         right branch, 7-tap
    x = x + SepConv_7(LN(l + r)) -> d                      the branches merged
    x = x + Attention(LN(x))
    x = x + W2 LN(Swish(W1 LN(x)))                         d -> d_ff -> d, a norm inside

A separable convolution is a depthwise K-tap convolution followed by a pointwise
(1 x 1) projection (Chollet 2017; Keras' SeparableConv1D, one multiplier, bias on the
pointwise part). Every convolution is causal: K - 1 zeros of left padding, as the reference
decoder pads by 10 and 6 before its "VALID" convolutions.

The encoder-decoder attention branches of the reference decoder have no encoder to attend
to in a decoder-only LM and are left out; the gated linear unit of the Evolved Transformer
is part of its *encoder* cell, not the decoder cell built here. Dropout is left out. The
Swish feed-forward is the searched one: ``model.mlp`` does not apply (a non-default value is
rejected); ``d_ff`` sets its width (default 4 d_model, as the reference).

Parameter layout per block: ``norm_wide``, ``attn_wide`` (``transformer.Attention`` with
the wide head count), ``norm_conv``, ``left`` / ``right`` / ``conv_out`` (``depthwise``
[c, 1, K], ``pointwise``), ``norm_mid`` (over 2d), ``norm_attn``, ``attn``, ``norm_ffn``,
``ffn_in``, ``norm_hidden`` (over d_ff), ``ffn_proj``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.architectures.shapes import evolved_wide_config
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM, Rope, norm_over
from scalelab.models.transformer import Attention, make_norm, rotary_tables


class SeparableConv(nn.Module):
    """Causal depthwise K-tap convolution, then a pointwise projection c_in -> c_out."""

    def __init__(self, c_in: int, c_out: int, width: int, bias: bool) -> None:
        super().__init__()
        self.width = width
        self.depthwise = nn.Parameter(torch.empty(c_in, 1, width))
        self.pointwise = nn.Linear(c_in, c_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.pad(x.transpose(1, 2), (self.width - 1, 0))  # left padding: causal
        h = F.conv1d(h, self.depthwise, groups=x.shape[-1]).transpose(1, 2)
        return self.pointwise(h)


class EvolvedBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        assert cfg.d_ff is not None
        self.norm_wide, self.attn_wide = make_norm(cfg), Attention(evolved_wide_config(cfg))
        self.norm_conv = make_norm(cfg)
        self.left = SeparableConv(d, 2 * d, 11, cfg.bias)
        self.right = SeparableConv(d, d // 2, 7, cfg.bias)
        self.norm_mid = norm_over(cfg, 2 * d)
        self.conv_out = SeparableConv(2 * d, d, 7, cfg.bias)
        self.norm_attn, self.attn = make_norm(cfg), Attention(cfg)
        self.norm_ffn = make_norm(cfg)
        self.ffn_in = nn.Linear(d, cfg.d_ff, bias=cfg.bias)
        self.norm_hidden = norm_over(cfg, cfg.d_ff)
        self.ffn_proj = nn.Linear(cfg.d_ff, d, bias=cfg.bias)

    def forward(self, x: torch.Tensor, rope: Rope, rope_wide: Rope) -> torch.Tensor:
        x = x + self.attn_wide(self.norm_wide(x), rope_wide)
        h = self.norm_conv(x)
        left, right = F.relu(self.left(h)), self.right(h)
        h = left + F.pad(right, (0, left.shape[-1] - right.shape[-1]))  # zero channels
        x = x + self.conv_out(self.norm_mid(h))
        x = x + self.attn(self.norm_attn(x), rope)
        return x + self.ffn_proj(self.norm_hidden(F.silu(self.ffn_in(self.norm_ffn(x)))))


class EvolvedTransformer(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(EvolvedBlock(cfg) for _ in range(cfg.n_layer))
        wide = evolved_wide_config(cfg)
        if cfg.pos == "rotary":
            cos, sin = rotary_tables(wide.head_dim, cfg.context, cfg.rope_theta)
            self.register_buffer("rope_wide_cos", cos, persistent=False)
            self.register_buffer("rope_wide_sin", sin, persistent=False)
        # four sublayers write into the residual stream per block
        self.init_weights(residual_writes=4 * cfg.n_layer)
        with torch.no_grad():
            for block in self.blocks:
                for conv in (block.left, block.right, block.conv_out):
                    # fan-in (K taps) scale, so a depthwise kernel neither shrinks nor grows
                    # its channel; the pointwise part carries the GPT-2 scale
                    conv.depthwise.normal_(0.0, 1 / math.sqrt(conv.width))
                block.conv_out.pointwise.weight.mul_(1 / math.sqrt(4 * cfg.n_layer))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        rope_wide = (self.rope_wide_cos, self.rope_wide_sin) if rope is not None else None
        for block in self.blocks:
            x = block(x, rope, rope_wide)
        return self.logits(x)
