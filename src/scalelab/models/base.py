"""What every language model here shares around its body: embeddings in, final norm and head out.

The architectures in this package differ in their blocks (how tokens mix, how weights are
shared or routed); the stem around them is the transformer's, so that a comparison between
architectures changes one thing at a time. Parameter names follow ``transformer.py``
(``tok_emb``, ``pos_emb``, ``norm_f``, ``head``), and so does its accounting:
:func:`scalelab.accounting.tallies.tally_lm` adds the stem's pieces to a body.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scalelab.config import ModelConfig
from scalelab.models.transformer import make_norm, rotary_tables

Rope = tuple[torch.Tensor, torch.Tensor] | None


def norm_over(cfg: ModelConfig, width: int) -> nn.Module:
    """``make_norm(cfg)`` over ``width`` features instead of d_model."""
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(width, eps=cfg.norm_eps)
    return nn.LayerNorm(width, eps=cfg.norm_eps, bias=cfg.bias)


class CausalLM(nn.Module):
    """Token (+ learned position) embedding, a body the subclass defines, final norm, head.

    A subclass builds its blocks, then calls :meth:`init_weights`; its ``forward`` is
    ``self.logits(body(self.embed(idx)))``. ``d_embed`` is the width of the embedding tables
    and of the head's input (d_model unless the embedding is factorised, as in ALBERT).
    """

    def __init__(self, cfg: ModelConfig, d_embed: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.aux_loss: torch.Tensor | None = None
        e = cfg.d_model if d_embed is None else d_embed
        self.tok_emb = nn.Embedding(cfg.vocab_size, e)
        self.pos_emb = nn.Embedding(cfg.context, e) if cfg.pos == "learned" else None
        self.norm_f = make_norm(cfg)
        self.head = nn.Linear(e, cfg.vocab_size, bias=False)
        if cfg.pos == "rotary":
            cos, sin = rotary_tables(cfg.head_dim, cfg.context, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def check_length(self, idx: torch.Tensor) -> int:
        T = idx.shape[1]
        if self.cfg.context < T:
            raise ValueError(
                f"sequence of {T} tokens is longer than the context {self.cfg.context}"
            )
        return T

    def embed(self, idx: torch.Tensor) -> tuple[torch.Tensor, Rope]:
        T = self.check_length(idx)
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        rope = (self.rope_cos, self.rope_sin) if self.cfg.pos == "rotary" else None
        return x, rope

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm_f(x))

    def init_weights(self, residual_writes: int) -> None:
        """GPT-2 initialisation (Radford et al. 2019, sec. 2.3): N(0, init_std) matrices, zero
        biases, unit norm gains; a projection that writes into the residual stream (a
        parameter named ``*proj.weight``) is scaled by 1/sqrt(residual_writes), the number of
        such writes along the depth, so the residual's variance does not grow with it. Then
        the head is tied to the token embedding if asked."""
        for name, p in self.named_parameters():
            if p.dim() < 2:
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                continue
            std = self.cfg.init_std
            if name.endswith("proj.weight"):
                std /= math.sqrt(max(residual_writes, 1))
            nn.init.normal_(p, mean=0.0, std=std)
        if self.cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight
