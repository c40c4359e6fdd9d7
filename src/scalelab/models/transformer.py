"""The transformer: decoder-only, pre-norm, the reference every other architecture is compared to.

One file, readable top to bottom (in the spirit of nanoGPT's ``model.py``). The
variants that separate GPT-2 from Llama are config switches:

=================  =========================  ==========================
field              GPT-2                      Llama
=================  =========================  ==========================
``norm``           ``layernorm``              ``rmsnorm``
``pos``            ``learned``                ``rotary``
``mlp``            ``gelu``                   ``swiglu``
``bias``           ``True``                   ``False``
``tie_embeddings`` ``True``                   ``False``
``n_kv_head``      ``n_head``                 fewer (grouped-query attention)
=================  =========================  ==========================

Parameter layout (what ``scalelab.accounting`` counts, and what export maps):

* ``tok_emb``  [vocab_size, d_model]; ``pos_emb`` [context, d_model] if ``pos = "learned"``
* per block: ``norm1``; ``attn.qkv`` [(n_head + 2 n_kv_head) head_dim, d_model] (q, then k,
  then v), ``attn.proj`` [d_model, n_head head_dim]; ``norm2``; ``mlp.fc`` [d_ff or 2 d_ff,
  d_model] (for gated MLPs: gate rows, then up rows), ``mlp.proj`` [d_model, d_ff];
  every Linear has a bias iff ``bias``; LayerNorm has weight (+ bias iff ``bias``), RMSNorm
  has weight only
* ``norm_f``; ``head`` [vocab_size, d_model] without bias, the same tensor as ``tok_emb``
  when ``tie_embeddings``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.config import GATED_MLPS, ModelConfig
from scalelab.models.mup import attention_scale, decay_scales, init_mup, lr_scales, output_mult


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)


def rotary_tables(head_dim: int, context: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [context, head_dim] of rotary embeddings (Su et al. 2021, eq. 34),
    in the half-split layout Hugging Face's Llama uses, so exported weights need no permutation."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(context, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i + d/2}) of x [B, H, T, D] by position-dependent angles."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, causal: bool = True) -> None:
        super().__init__()
        assert cfg.n_kv_head is not None
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.causal = causal
        self.scale = attention_scale(cfg)  # None: 1/sqrt(head_dim); muP: 1/head_dim
        out = (cfg.n_head + 2 * cfg.n_kv_head) * cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, out, bias=cfg.bias)  # one matmul for q, k and v
        self.proj = nn.Linear(cfg.n_head * cfg.head_dim, cfg.d_model, bias=cfg.bias)

    def heads(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [B, n_head, T, hd] and k, v [B, n_kv_head, T, hd], rotated when rope is given."""
        B, T, _ = x.shape
        q_size, kv_size = self.n_head * self.head_dim, self.n_kv_head * self.head_dim
        q, k, v = self.qkv(x).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope[0][:T], rope[1][:T]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return q, k, v

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.heads(x, rope)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            is_causal=self.causal,
            enable_gqa=self.n_kv_head != self.n_head,
            scale=self.scale,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))

    def forward_cached(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: LayerCache
    ) -> torch.Tensor:
        """Attention of T new positions over the cached ones and themselves; their keys and
        values are written into ``cache`` first. ``rope`` holds per-row tables [B, T, hd] (the
        rows' positions differ when prompts are left-padded); ``cache.mask`` [B, 1, T, S]
        says which of the S filled slots each new position may see."""
        B, T, _ = x.shape
        q, k, v = self.heads(x, None)
        if rope is not None:
            cos, sin = rope[0].unsqueeze(1), rope[1].unsqueeze(1)  # [B, 1, T, hd]: every head
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keys, values = cache.append(k, v)
        y = F.scaled_dot_product_attention(
            q,
            keys,
            values,
            attn_mask=cache.mask,
            enable_gqa=self.n_kv_head != self.n_head,
            scale=self.scale,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class LayerCache:
    """One layer's keys and values [B, n_kv_head, capacity, hd], preallocated so that a step
    writes one slot instead of copying the whole past (a ``torch.cat`` per step is quadratic).
    ``length`` slots are filled; ``mask`` is the attention mask of the positions being added,
    set by :class:`KVCache` for every layer at once."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        self.keys, self.values = keys, values
        self.length = 0
        self.mask: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[2]
        self.keys[:, :, self.length : end] = k
        self.values[:, :, self.length : end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


class KVCache:
    """The key-value cache of a whole :class:`Transformer` for a batch of B rows.

    Rows may be left-padded (prompts of unequal length in one batch): ``valid`` [B, capacity]
    marks the slots that hold a real token, and each row counts its own positions (``next_pos``
    [B]), so a row's tokens get the position ids, and see the keys, they would get alone.
    """

    def __init__(self, model: Transformer, batch: int, capacity: int) -> None:
        cfg = model.cfg
        assert cfg.n_kv_head is not None
        p = next(model.parameters())
        shape = (batch, cfg.n_kv_head, capacity, cfg.head_dim)
        self.layers = [
            LayerCache(p.new_zeros(shape), p.new_zeros(shape)) for _ in range(cfg.n_layer)
        ]
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=p.device)
        self.next_pos = torch.zeros(batch, dtype=torch.long, device=p.device)
        self.length = 0
        self.capacity = capacity

    def advance(self, real: torch.Tensor) -> torch.Tensor:
        """Take T new slots whose real tokens are ``real`` [B, T] (bool); set every layer's
        mask and return the new positions' ids [B, T] (padding gets the row's next id, unused)."""
        T = real.shape[1]
        start, end = self.length, self.length + T
        if end > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions, {end} asked")
        self.valid[:, start:end] = real
        pos = self.next_pos[:, None] + real.long().cumsum(1) - real.long()
        self.next_pos = self.next_pos + real.long().sum(1)
        slot = torch.arange(end, device=real.device)
        query = torch.arange(start, end, device=real.device)[:, None]
        # causal, real keys only; a padding position also sees itself, so that no row of
        # the softmax is empty (an all-masked row is NaN, and NaN times a zero weight
        # would reach the real positions through the next layer's values)
        mask = (slot[None, :] <= query) & (self.valid[:, None, :end] | (slot[None, :] == query))
        for layer in self.layers:
            layer.mask = mask[:, None]  # [B, 1, T, end]: the same for every head
        self.length = end
        return pos


_ACTIVATIONS = {
    # Exact (erf) GELU, as in BERT and nanoGPT. GPT-2 used the tanh approximation ("gelu_new");
    # the two differ by < 1e-3, but the tanh form runs ~4x slower in eager PyTorch on CPUs
    # (measured here: 5 ms vs 1.2 ms forward on 4096 x 512), so export declares "gelu".
    "gelu": F.gelu,
    "relu": F.relu,
    "swiglu": F.silu,  # Shazeer 2020, "GLU Variants Improve Transformer"
    "geglu": F.gelu,
    "reglu": F.relu,
}


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        assert cfg.d_ff is not None
        self.gated = cfg.mlp in GATED_MLPS
        self.act = _ACTIVATIONS[cfg.mlp]
        self.fc = nn.Linear(cfg.d_model, cfg.d_ff * (2 if self.gated else 1), bias=cfg.bias)
        self.proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            return self.proj(self.act(gate) * up)
        return self.proj(self.act(h))


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x)) (GPT-2, Radford et al. 2019)."""

    def __init__(self, cfg: ModelConfig, causal: bool = True) -> None:
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), Attention(cfg, causal)
        self.norm2, self.mlp = make_norm(cfg), MLP(cfg)

    def forward(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))

    def forward_cached(
        self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None, cache: LayerCache
    ) -> torch.Tensor:
        x = x + self.attn.forward_cached(self.norm1(x), rope, cache)
        return x + self.mlp(self.norm2(x))


def init_weights(model: nn.Module, cfg: ModelConfig) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases, and the projections that write
    into the residual stream scaled by 1/sqrt(2 n_layer) (Radford et al. 2019, sec. 2.3), so
    the residual's variance does not grow with depth."""
    for name, p in model.named_parameters():
        if p.dim() < 2:
            if name.endswith("bias"):
                nn.init.zeros_(p)
            continue
        std = cfg.init_std
        if name.endswith("proj.weight"):
            std /= math.sqrt(2 * cfg.n_layer)
        nn.init.normal_(p, mean=0.0, std=std)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.aux_loss: torch.Tensor | None = None
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.context, cfg.d_model) if cfg.pos == "learned" else None
        self.blocks = nn.ModuleList(Block(cfg, cfg.causal) for _ in range(cfg.n_layer))
        self.norm_f = make_norm(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.pos == "rotary":
            cos, sin = rotary_tables(cfg.head_dim, cfg.context, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        init_weights(self, cfg)
        if cfg.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        self.output_mult = output_mult(cfg)  # muP: logits / (d_model / base_width)
        if cfg.parametrization == "mup":
            init_mup(self, cfg)
            self.lr_scale = lr_scales(self, cfg)  # per-parameter Adam lr (make_optimizer)
            self.wd_scale = decay_scales(self, cfg)  # and weight decay, lr x wd kept

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        if self.cfg.context < T:
            raise ValueError(
                f"sequence of {T} tokens is longer than the context {self.cfg.context}"
            )
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(T, device=idx.device))
        rope = (self.rope_cos, self.rope_sin) if self.cfg.pos == "rotary" else None
        for block in self.blocks:
            x = block(x, rope)
        logits = self.head(self.norm_f(x))
        return logits * self.output_mult if self.output_mult != 1.0 else logits

    def forward_cached(
        self, idx: torch.Tensor, cache: KVCache, real: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits [B, T, vocab] of T new tokens per row, attending to ``cache`` (which they
        extend); ``real`` [B, T] marks the tokens that are not left padding (default: all).
        The same function of each row's real tokens as :meth:`forward` on that row alone,
        up to float rounding (the masked attention sums in another order)."""
        if not self.cfg.causal:
            raise ValueError("a key-value cache needs a causal model (this one is bidirectional)")
        if real is None:
            real = torch.ones_like(idx, dtype=torch.bool)
        pos = cache.advance(real)
        if self.cfg.context <= int(pos.max()):
            raise ValueError(f"position {int(pos.max())} is beyond the context {self.cfg.context}")
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)
        rope = (self.rope_cos[pos], self.rope_sin[pos]) if self.cfg.pos == "rotary" else None
        for block, layer in zip(self.blocks, cache.layers, strict=True):
            x = block.forward_cached(x, rope, layer)
        logits = self.head(self.norm_f(x))
        return logits * self.output_mult if self.output_mult != 1.0 else logits
