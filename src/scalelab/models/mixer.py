"""MLP-Mixer for language: tokens mix through fixed, position-indexed weights, causally masked
(Tolstikhin et al. 2021, "MLP-Mixer: An all-MLP Architecture for Vision").

The inductive bias is content-independent token mixing: how much position s contributes to
position t is a learned weight of the pair (t, s), the same for every input, instead of an
attention score computed from the tokens.

A Mixer layer (Tolstikhin et al. eq. 1) is a token-mixing MLP applied to every channel
(the same weights for all channels), then a channel-mixing MLP applied to every position:

    U = X + W2 sigma(W1 LN(X))          token mixing; W1, W2 [T, T] act along positions
    Y = U + MLP(LN(U))                  channel mixing (``transformer.MLP``)

For a causal LM both token matrices are lower triangular (position t reads positions <= t;
the hidden units of the token MLP are indexed by position too, so the composition stays
lower triangular). Only the triangle is stored: each matrix is T (T + 1) / 2 parameters
(plus T biases with ``bias``), so ``count`` reports weights that exist, and the T x T
matrix is rebuilt (zeros above the diagonal) at each forward. sigma is GELU, as in the
paper. T is ``model.context``; a shorter sequence uses the top-left corner, which is the
same causal map restricted to its positions. Learned position embeddings are redundant with
position-indexed mixing but allowed (``pos = "none"`` drops them); rotary positions have no
attention to rotate and are rejected.

Accounting: token mixing is two T x T products over d channels, d MACs per attended
position each (``mix_macs_per_position = 2 d``, as dense attention's q.k and p.v; the dense
kernel multiplies the zeros too, ``causal`` counting leaves them out).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM
from scalelab.models.transformer import MLP, make_norm


class CausalTokenMixing(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        T = cfg.context
        rows, cols = torch.tril_indices(T, T)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)
        # the triangles, stored as [1, T (T + 1) / 2] rows: weight matrices are what optimisers
        # decay (the trainer decays parameters with dim >= 2), and these are matrices
        self.w1 = nn.Parameter(torch.empty(1, rows.numel()))
        self.w2 = nn.Parameter(torch.empty(1, rows.numel()))
        self.b1 = nn.Parameter(torch.zeros(T)) if cfg.bias else None
        self.b2 = nn.Parameter(torch.zeros(T)) if cfg.bias else None
        self.context = T

    def reset_parameters(self, out_scale: float) -> None:
        """Fan-in initialisation: row t has t + 1 inputs, std 1/sqrt(t + 1) (LeCun, as in the
        Mixer's linear layers); the second matrix, which writes into the residual stream, is
        scaled by ``out_scale`` as every residual projection is."""
        with torch.no_grad():
            std = 1.0 / (self.rows.to(torch.float32) + 1).sqrt()
            self.w1.copy_(torch.randn_like(self.w1) * std)
            self.w2.copy_(torch.randn_like(self.w2) * std * out_scale)

    def matrix(self, w: torch.Tensor, T: int) -> torch.Tensor:
        full = w.new_zeros(self.context, self.context).index_put((self.rows, self.cols), w[0])
        return full[:T, :T]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        h = self.matrix(self.w1, T) @ x  # [T, T] @ [B, T, d]: mixes positions, per channel
        if self.b1 is not None:
            h = h + self.b1[:T, None]
        y = self.matrix(self.w2, T) @ F.gelu(h)
        if self.b2 is not None:
            y = y + self.b2[:T, None]
        return y


class MixerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1, self.tokens = make_norm(cfg), CausalTokenMixing(cfg)
        self.norm2, self.mlp = make_norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.tokens(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Mixer(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(MixerBlock(cfg) for _ in range(cfg.n_layer))
        self.init_weights(residual_writes=2 * cfg.n_layer)
        for block in self.blocks:
            block.tokens.reset_parameters(out_scale=1 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, _ = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.logits(x)
