"""Mixture of softmaxes: the transformer with a high-rank output layer (Yang et al. 2018,
"Breaking the Softmax Bottleneck: A High-Rank RNN Language Model").

The inductive bias is in the output layer. A single softmax over ``h W^T`` can express only
log-probability matrices of rank <= d_model + 1 across contexts (the "softmax bottleneck",
sec. 2.2); a mixture of K softmaxes is not bound by that rank (sec. 2.3, eq. 3):

    P(x | c) = sum_k pi_{c,k} softmax(h_{c,k} W^T)_x
    pi_c     = softmax(g_c W_pi)                     prior over the K components
    h_{c,k}  = tanh(g_c W_{h,k})                     K context vectors from the last hidden g_c

where g_c is the final (normed) hidden state and W the (tied) output embedding, shared by
all components. The model returns ``log P(x | c)`` as its logits, computed stably as
``logsumexp_k(log pi_{c,k} + log_softmax(h_{c,k} W^T))`` in fp32: valid log-probabilities
(they log-sum-exp to 0 over the vocabulary), so the trainer's cross-entropy, which
normalises logits again, leaves them unchanged.

``n_softmax`` is K (Yang et al. use 15 on Penn Treebank; the default here is 4, which at
small vocabularies already costs 4x the head's FLOPs). The body is the transformer's.

Parameter layout: as the transformer, plus ``prior`` [d_model -> K] and ``latent``
[d_model -> K d_model]. Accounting: the head's weights are stored once and multiplied K
times (``lm_head(...).reused(K)``).
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM
from scalelab.models.transformer import Block


class MixtureOfSoftmaxes(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(Block(cfg, cfg.causal) for _ in range(cfg.n_layer))
        self.prior = nn.Linear(cfg.d_model, cfg.n_softmax, bias=cfg.bias)
        self.latent = nn.Linear(cfg.d_model, cfg.n_softmax * cfg.d_model, bias=cfg.bias)
        self.init_weights(residual_writes=2 * cfg.n_layer)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        K = self.cfg.n_softmax
        g = self.norm_f(x)
        h = torch.tanh(self.latent(g)).view(B, T, K, d)  # eq. 3: K context vectors
        # the matmuls run in the ambient precision; normalising and mixing in fp32
        log_prior = self.prior(g).float().log_softmax(dim=-1)  # [B, T, K]
        log_p = self.head(h).float().log_softmax(dim=-1)  # [B, T, K, V]
        return torch.logsumexp(log_prior.unsqueeze(-1) + log_p, dim=2)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        for block in self.blocks:
            x = block(x, rope)
        return self.logits(x)
