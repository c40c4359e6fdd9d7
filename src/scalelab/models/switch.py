"""Switch Transformer: a top-1 mixture of experts in place of every feed-forward (Fedus et al. 2021,
"Switch Transformers: Scaling to Trillion Parameter Models with Simple and Efficient Sparsity").

The inductive bias is conditional computation: ``n_experts`` feed-forward networks per layer,
and a router that sends each token to one of them, so parameters grow with the number of
experts while the compute per token stays that of one. ``count(cfg).params.active`` is
attention + router + one expert per layer; FLOPs are counted on active parameters (tokens over
capacity skip their expert, so a forward with drops computes that much less than counted).

Routing (sec. 2.1-2.2), token choice only: expert-choice routing (each expert picks its
tokens) lets a token's fate depend on later tokens, which a causal LM cannot allow.

* Router logits ``h(x) = W_r x`` and probabilities ``p(x) = softmax(h(x))`` in fp32 even under
  bf16 autocast ("selective precision", sec. 2.4: the softmax's exponent is unstable in bf16).
* Each token goes to ``i = argmax p(x)``; the expert's output is scaled by the gate ``p_i(x)``
  (eq. 2), which is how the router gets a gradient.
* **Capacity** (eq. 3): an expert takes at most ``ceil(capacity_factor x tokens / n_experts)``
  tokens of a group; the others skip the layer (its output is zero, so the residual stream
  carries them through unchanged). Which tokens overflow depends on the order of the group,
  and a group spanning the whole batch would let a sequence's later tokens (or other
  sequences) push an earlier token out: a leak of the future. Here **a group is one sequence,
  taken in position order**, with the capacity set by ``model.context``: a token is dropped
  only because earlier tokens of its own sequence filled its expert, so the logits at
  position t depend on tokens <= t only, do not depend on the rest of the batch, and are the
  same whether the sequence is cut at t or not. The price: when an expert is overloaded, late
  positions are the ones dropped.
* **Load balancing** (eq. 4-6): ``aux = n_experts * sum_i f_i P_i`` per layer, with f_i the
  fraction of the batch's tokens whose argmax is expert i (before capacity) and P_i the mean
  router probability of expert i; 1.0 when routing is uniform. ``model.aux_loss`` is
  ``aux_loss_coef`` (alpha = 1e-2 in the paper) times the sum over layers; the trainer adds it
  to the loss.

Every layer's feed-forward is a Switch layer (the paper's Switch-C; its other configurations
alternate with dense layers). Experts are ``transformer.MLP`` (``model.mlp`` and ``d_ff`` pick
their activation and width).

Parameter layout: ``tok_emb``, ``pos_emb``, per block ``norm1``, ``attn``, ``norm2``,
``moe.router`` [d_model -> n_experts] (no bias), ``moe.experts.{i}`` (MLPs), then ``norm_f``,
``head``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.architectures.shapes import switch_capacity
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM, Rope
from scalelab.models.transformer import MLP, Attention, make_norm


class SwitchFFN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_experts, self.capacity = cfg.n_experts, switch_capacity(cfg)
        self.router = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(MLP(cfg) for _ in range(cfg.n_experts))
        self.aux_loss: torch.Tensor | None = None
        self.dropped: torch.Tensor | None = None  # fraction of tokens over capacity (a metric)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Router probabilities [B, T, E] (fp32), chosen expert [B, T], kept mask [B, T]."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            probs = F.linear(x.float(), self.router.weight.float()).softmax(dim=-1)
        expert = probs.argmax(dim=-1)
        onehot = F.one_hot(expert, self.n_experts)
        # 0-based place of each token in its expert's queue, counting along the sequence only
        place = (onehot.cumsum(dim=1) * onehot).sum(dim=-1) - 1
        kept = place < self.capacity
        # load balancing, Fedus et al. eq. 4-6, over every token of the batch
        f = onehot.float().mean(dim=(0, 1))
        p = probs.mean(dim=(0, 1))
        self.aux_loss = self.n_experts * (f * p).sum()
        self.dropped = 1.0 - kept.float().mean()
        return probs, expert, kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        probs, expert, kept = self.route(x)
        gate = probs.gather(-1, expert.unsqueeze(-1)).reshape(B * T)
        flat_x, flat_expert = x.reshape(B * T, d), expert.reshape(B * T)
        # kept tokens sorted by expert (stable: position order within an expert is kept)
        idx = kept.reshape(B * T).nonzero().squeeze(1)
        idx = idx[flat_expert[idx].argsort(stable=True)]
        counts = torch.bincount(flat_expert[idx], minlength=self.n_experts).tolist()
        outputs = [
            mlp(chunk)
            for mlp, chunk in zip(self.experts, flat_x[idx].split(counts), strict=True)
            if chunk.shape[0]
        ]
        if not outputs:  # every token over capacity: the layer is the identity on the residual
            return torch.zeros_like(x)
        y = torch.cat(outputs) * gate[idx].unsqueeze(-1).to(outputs[0].dtype)
        return y.new_zeros(B * T, d).index_copy(0, idx, y).reshape(B, T, d)


class SwitchBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), Attention(cfg, cfg.causal)
        self.norm2, self.moe = make_norm(cfg), SwitchFFN(cfg)

    def forward(self, x: torch.Tensor, rope: Rope) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.moe(self.norm2(x))


class SwitchTransformer(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(SwitchBlock(cfg) for _ in range(cfg.n_layer))
        self.init_weights(residual_writes=2 * cfg.n_layer)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x, rope = self.embed(idx)
        for block in self.blocks:
            x = block(x, rope)
        aux = [b.moe.aux_loss for b in self.blocks if b.moe.aux_loss is not None]
        self.aux_loss = self.cfg.aux_loss_coef * torch.stack(aux).sum() if aux else None
        return self.logits(x)

    def dropped_fraction(self) -> float:
        """Mean fraction of tokens over capacity in the last forward, over the layers."""
        fractions = [float(b.moe.dropped) for b in self.blocks if b.moe.dropped is not None]
        return sum(fractions) / len(fractions) if fractions else 0.0
