"""Lightweight and dynamic convolutions in place of self-attention (Wu et al. 2019, "Pay Less
Attention with Lightweight and Dynamic Convolutions"): architectures ``lconv`` and ``dconv``.

The inductive bias is locality: a token mixes only with the K - 1 tokens before it, through
a kernel over positions rather than content-based weights over the whole context.

The mixing sublayer (Wu et al. fig. 2b and sec. 3-4), replacing attention in a pre-norm block:

    h = GLU(x W_in)                                  d -> 2d, gated back to d (sec. 4)
    y = conv(h)                                      causal depthwise convolution, H heads
    out = y W_O                                      d -> d

* **LightConv** (eq. 2-3): a kernel W [H, K] per layer, softmax-normalised over its K taps
  (so every output is a weighted average of its inputs), and shared by the d / H channels
  of each head: H K parameters per layer instead of d K (depthwise) or d^2 K (full).
* **DynamicConv** (eq. 4): the kernel is predicted for each position from that position's
  own input, ``W_t = softmax(h_t W_K)`` with W_K [d, H K]: content-dependent like
  attention, but linear in T and looking only at the current token to build its weights.
* **Causal** (sec. 4, "the decoder"): K - 1 zeros of left padding, so position t mixes
  positions t - K + 1 .. t.
* **Kernel widths** grow with depth as in the paper's decoder, 3, 7, 15, 31, 31, ...
  (layer i: 2^(i+2) - 1), capped at ``model.kernel_size``.

Left out: DropConnect on the kernel weights (the project trains without dropout) and the
paper's post-norm placement. The feed-forward sublayer is ``transformer.MLP``.

Parameter layout per block: ``norm1``, ``conv.glu_in`` [d -> 2d], ``conv.weight`` [H, K]
(lconv) or ``conv.kernel`` [d -> H K] (dconv), ``conv.proj`` [d -> d], ``norm2``, ``mlp``.
Accounting: a token costs d K MACs of mixing per layer (``mix_macs``, independent of T);
DynamicConv adds its kernel projection, d H K weight MACs. The generation state is the last
K - 1 inputs per layer, fixed in size: no per-token cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.architectures.shapes import conv_kernel_widths
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM
from scalelab.models.transformer import MLP, make_norm


class ConvMixing(nn.Module):
    def __init__(self, cfg: ModelConfig, width: int, dynamic: bool) -> None:
        super().__init__()
        self.n_head, self.width, self.dynamic = cfg.n_head, width, dynamic
        self.glu_in = nn.Linear(cfg.d_model, 2 * cfg.d_model, bias=cfg.bias)
        if dynamic:
            self.kernel = nn.Linear(cfg.d_model, cfg.n_head * width, bias=cfg.bias)
        else:
            self.weight = nn.Parameter(torch.empty(cfg.n_head, width))
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        H, K = self.n_head, self.width
        h = F.glu(self.glu_in(x), dim=-1)  # first half * sigmoid(second half)
        if self.dynamic:
            # kernels from the current position only, softmax over the K taps (eq. 4)
            w = self.kernel(h).view(B, T, H, K).softmax(dim=-1)
            # windows[b, t, c, j] = h[b, t - K + 1 + j, c]: the K positions ending at t
            windows = F.pad(h, (0, 0, K - 1, 0)).unfold(1, K, 1).reshape(B, T, H, d // H, K)
            y = torch.einsum("bthck,bthk->bthc", windows, w).reshape(B, T, d)
        else:
            # one softmax-normalised kernel per head, repeated over its d / H channels (eq. 3)
            w = self.weight.softmax(dim=-1).repeat_interleave(d // H, dim=0).unsqueeze(1)
            y = F.conv1d(F.pad(h.transpose(1, 2), (K - 1, 0)), w, groups=d).transpose(1, 2)
        return self.proj(y)


class ConvBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, width: int, dynamic: bool) -> None:
        super().__init__()
        self.norm1, self.conv = make_norm(cfg), ConvMixing(cfg, width, dynamic)
        self.norm2, self.mlp = make_norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.conv(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ConvLM(CausalLM):
    dynamic = False

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(
            ConvBlock(cfg, k, self.dynamic) for k in conv_kernel_widths(cfg)
        )
        self.init_weights(residual_writes=2 * cfg.n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, _ = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.logits(x)


class LightConvLM(ConvLM):
    dynamic = False


class DynamicConvLM(ConvLM):
    dynamic = True
