"""ALBERT: a factorised embedding and one set of block weights shared by every layer
(Lan et al. 2020, "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations").

Two parameter reductions, each an inductive bias:

* **Factorised embedding** (sec. 3.1): tokens are embedded in E dimensions and projected to
  the hidden width H = d_model, so the vocabulary costs V E + E H parameters instead of V H
  ("O(V x H) to O(V x E + E x H)"). E is ``model.d_embed``; ALBERT uses E = 128 at every size,
  here the default is ``min(128, d_model // 4)`` so that tiny models are factorised too. For
  a causal LM the output side mirrors it (as ALBERT's MLM head decodes from E with the tied
  embedding matrix): the final hidden state is projected H -> E, then to the vocabulary.
* **Cross-layer parameter sharing** (sec. 3.1, "all-shared"): one block's attention and
  feed-forward weights are applied at all n_layer depths. Parameters stop growing with depth;
  compute does not.

Unlike the Universal Transformer (``universal.py``), no per-step signal is added: ALBERT's
shared layers see only the residual stream. ALBERT's third change (sentence-order
prediction) is a pre-training objective, not architecture, and is left out. The block is
the pre-norm ``transformer.Block`` (BERT and ALBERT are post-norm), like every architecture
here, so the comparison isolates the sharing and the factorisation.

Parameter layout: ``tok_emb`` [V, E], ``pos_emb`` [context, E] (learned positions),
``emb_up`` [E -> d_model], ``block``, ``norm_f``, ``head_down`` [d_model -> E], ``head``
[E -> V] (tied to ``tok_emb`` unless ``tie_embeddings = false``).
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.architectures.shapes import albert_d_embed
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM
from scalelab.models.transformer import Block


class Albert(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        e = albert_d_embed(cfg)
        super().__init__(cfg, d_embed=e)
        self.emb_up = nn.Linear(e, cfg.d_model, bias=cfg.bias)
        self.block = Block(cfg, cfg.causal)
        self.head_down = nn.Linear(cfg.d_model, e, bias=cfg.bias)
        self.init_weights(residual_writes=2 * cfg.n_layer)
        # The two factorisation projections get fan-in scale (std 1/sqrt(d_in)), not GPT-2's
        # 0.02: with 0.02 on both sides of E the embedding reaches the blocks at ~0.02 x 0.02
        # sqrt(E) (and the head sees as little), and training stalls (measured: a tiny
        # model memorising one batch reached loss 0.7 instead of 0.002 in 150 steps). At fan-in
        # scale the projected embedding has the embedding's own scale, as in an unfactorised
        # model; logits stay near zero through the tied 0.02-scale head.
        with torch.no_grad():
            self.emb_up.weight.normal_(0.0, e**-0.5)
            self.head_down.weight.normal_(0.0, cfg.d_model**-0.5)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        x = self.emb_up(x)
        for _ in range(self.cfg.n_layer):
            x = self.block(x, rope)
        return self.head(self.head_down(self.norm_f(x)))
