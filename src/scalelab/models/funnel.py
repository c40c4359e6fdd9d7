"""Funnel: the middle blocks run on a sequence shortened k times, then upsampled back
(Dai et al. 2020, "Funnel-Transformer"), made causal as the Hourglass transformer does
(Nawrot et al. 2021, "Hierarchical Transformers Are More Efficient Language Models").

The inductive bias is hierarchy: the middle of the network sees groups of k tokens as one,
which cuts its weight FLOPs k times and its attention FLOPs k^2 times.

    x  = pre blocks(embed(idx))                      full length T
    s  = mean-pool_k(shift_right(x, k - 1))          T / k positions
    s  = short blocks(s)                             causal attention among the T / k
    x  = x + repeat_k(s)                             upsample by repetition, plus residual
    logits = head(post blocks(x))                    full length T

Why it is causal (Nawrot et al. sec. 3.1, "shift right by k - 1 before shortening"): after
the shift, short position j averages x at positions jk - k + 1 .. jk (zeros before 0), and
repetition hands s_j to positions jk .. jk + k - 1, each of which is >= jk: no position
receives a summary of a later one. Attention among short positions is causal, so s_j mixes
only s_0 .. s_j. Without the shift, position jk would receive x_{jk + k - 1}.

Pooling is Funnel's mean pooling and upsampling is repetition (Hourglass' "naive" variants;
its linear pooling and upsampling add parameters). The blocks are ``transformer.Block``.
``pool`` is k; the depth splits as n_layer // 4 full-length blocks before, as many after,
and the rest shortened (n_layer = 4: 1 + 2 + 1; 8: 2 + 4 + 2; 2: 0 + 2 + 0). Any length T
works: the shift's k - 1 leading zeros make the shifted sequence long enough for
ceil(T / k) whole groups, and the upsampled sequence is cut back to T.

Accounting: a shortened block costs 1/k of its weight MACs per token and 1/k^2 of its
attention MACs per attended position, and caches keys and values for one token in k: exact
when k divides the block's weight MACs and k^2 divides 2 d_model (any even d_model for
k = 2), otherwise rounded to the nearest MAC per token and layer. With ``causal`` counting
the short attention's average span is counted as (T + 1) / 2 rather than (T + k) / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.architectures.shapes import funnel_split
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM, Rope
from scalelab.models.transformer import Block


def shorten(x: torch.Tensor, k: int) -> torch.Tensor:
    """[B, T, d] -> [B, ceil(T / k), d]: shift right by k - 1, then mean over groups of k."""
    B, T, d = x.shape
    n = -(-T // k)
    # shifted[t] = x[t - k + 1] (zeros before 0); n k <= T + k - 1, so every token is kept
    shifted = F.pad(x, (0, 0, k - 1, 0))[:, : n * k]
    return shifted.reshape(B, n, k, d).mean(dim=2)


def upsample(s: torch.Tensor, k: int, length: int) -> torch.Tensor:
    """[B, n, d] -> [B, length, d]: position t gets s[t // k]."""
    return s.repeat_interleave(k, dim=1)[:, :length]


class Funnel(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        pre, short, post = funnel_split(cfg)
        self.pre = nn.ModuleList(Block(cfg) for _ in range(pre))
        self.short = nn.ModuleList(Block(cfg) for _ in range(short))
        self.post = nn.ModuleList(Block(cfg) for _ in range(post))
        self.init_weights(residual_writes=2 * cfg.n_layer)

    def run(self, blocks: nn.ModuleList, x: torch.Tensor, rope: Rope) -> torch.Tensor:
        for block in blocks:
            x = block(x, rope)
        return x

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        T, k = idx.shape[1], self.cfg.pool
        x = self.run(self.pre, x, rope)
        # rotary positions of the short sequence are its own indices 0 .. T/k - 1
        s = self.run(self.short, shorten(x, k), rope)
        x = x + upsample(s, k, T)
        return self.logits(self.run(self.post, x, rope))
