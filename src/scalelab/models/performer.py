"""Performer: softmax attention approximated by positive random features, FAVOR+ (Choromanski et al.
2021, "Rethinking Attention with Performers").

The inductive bias is low-rank, linear-time attention: ``exp(q.k / sqrt(d))`` is replaced by
``phi(q).phi(k)`` with m random features, so a causal layer costs O(T m d) instead of
O(T^2 d) and the whole past is summarised in a fixed-size state.

* **Positive random features** (Lemma 1, eq. 7): ``phi(x) = exp(W x - |x|^2 / 2) / sqrt(m)``
  with rows w_r ~ N(0, I_d), applied to ``q d^-1/4`` and ``k d^-1/4`` (the 1/sqrt(d) of
  softmax attention split between them). ``E[phi(q).phi(k)] = exp(q.k / sqrt(d))``; positive
  features keep the estimate positive, unlike sin/cos features.
* **Orthogonal random features** (sec. 2.4): W is built from blocks of d orthonormal rows
  (QR of a Gaussian matrix), each row rescaled to the length of a Gaussian vector, so rows
  are marginally N(0, I_d) but orthogonal within a block (lower variance).
* **Causal attention by prefix sums** (sec. 2.3 and App. B.1): output_i =
  ``phi(q_i) S_i / phi(q_i) z_i`` with ``S_i = sum_{j<=i} phi(k_j) v_j^T`` and
  ``z_i = sum_{j<=i} phi(k_j)``. Computed by chunks of C positions, without a loop over
  positions: within a chunk the masked C x C product, across chunks an exclusive prefix sum
  of per-chunk states. z is carried as an extra all-ones column of v.
* **Stabilisers that do not look ahead**: each query's features are divided by the max over
  its own row (a per-query constant, which cancels between numerator and denominator); keys
  by ``exp(c)``, c = max(0, max_r |w_r|^2 / 2 - 40), a constant of the random features alone:
  ``w.k - |k|^2/2 <= |w|^2/2`` for any k, so key features stay below e^40 and sums in fp32
  cannot overflow. A max over the keys of the sequence (as in several public
  implementations) would make position i depend on later keys; it is not used. The whole
  FAVOR+ computation runs in fp32, also under bf16 autocast.
* **Feature redrawing** (sec. 4.2): with ``feature_redraw = N`` > 0 the features of every
  layer are drawn anew every N training forward passes, from a seed fixed at construction
  and the draw count (both saved with the weights), so a run is reproducible and a resumed
  run draws the same features. ``feature_redraw = 0`` keeps the first draw.

``n_features`` (m) defaults to ``round(hd ln hd)`` (m = Theta(d log d), Theorem 4), at least
hd. Parameter layout: as the transformer (``attn.qkv``, ``attn.proj``, ``mlp``, norms); the
random features are buffers (``attn.features``), not parameters.

FLOPs per token and head (counted as T-independent mixing): ``2 m hd`` for the features of q
and k, ``2 m (hd + 1)`` to write and read the prefix state, and ``C (m + hd + 1)`` for the
masked product within a chunk of C = min(32, context) positions: exact at sequence lengths
that are multiples of C (shorter sequences are padded to one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.architectures.shapes import performer_chunk, performer_features
from scalelab.config import ModelConfig
from scalelab.models.base import CausalLM, Rope
from scalelab.models.transformer import MLP, Attention, make_norm

KEY_EXPONENT_CAP = 40.0  # key features are kept below exp(KEY_EXPONENT_CAP)


def orthogonal_gaussian(m: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """[m, d] random features: blocks of d orthonormal rows, rows rescaled to chi(d) lengths
    (Choromanski et al. 2021, sec. 2.4)."""
    blocks = []
    for _ in range(math.ceil(m / d)):
        gaussian = torch.randn(d, d, generator=generator, dtype=torch.float64)
        q, _ = torch.linalg.qr(gaussian)
        blocks.append(q.T)
    rows = torch.cat(blocks)[:m]
    lengths = torch.randn(m, d, generator=generator, dtype=torch.float64).norm(dim=1)
    return (rows * lengths[:, None]).float()


class FavorAttention(Attention):
    """The transformer's projections (same q, k, v, output weights); FAVOR+ mixes the heads."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.m, self.chunk = performer_features(cfg), performer_chunk(cfg)
        self.register_buffer("features", torch.zeros(self.m, self.head_dim))
        self.register_buffer("key_offset", torch.zeros(()))

    def set_features(self, w: torch.Tensor) -> None:
        self.features.copy_(w)
        self.key_offset.fill_(max(0.0, float(w.pow(2).sum(1).max()) / 2 - KEY_EXPONENT_CAP))

    def feature_map(self, x: torch.Tensor, is_query: bool) -> torch.Tensor:
        """phi(x) for x [B, H, T, hd] in fp32 (Lemma 1), stabilised without looking ahead."""
        x = x * self.head_dim**-0.25
        exponent = x @ self.features.T - x.pow(2).sum(-1, keepdim=True) / 2
        if is_query:  # a per-query constant: cancels in phi(q) S / phi(q) z
            exponent = exponent - exponent.amax(-1, keepdim=True).detach()
        else:  # a constant of the features: cancels too, and bounds every key feature
            exponent = exponent - self.key_offset
        return exponent.exp() / math.sqrt(self.m)

    def causal_linear_attention(
        self, qf: torch.Tensor, kf: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """sum_{j<=i} (qf_i.kf_j) v_j / sum_{j<=i} qf_i.kf_j by chunked prefix sums."""
        B, H, T, _ = v.shape
        C = self.chunk
        v1 = torch.cat([v, v.new_ones(B, H, T, 1)], dim=-1)  # last column: the normaliser z
        pad = -T % C
        if pad:  # zero features at the end: padded keys add nothing, padded queries are dropped
            qf, kf, v1 = (F.pad(t, (0, 0, 0, pad)) for t in (qf, kf, v1))
        n = (T + pad) // C
        qc, kc, vc = (t.reshape(B, H, n, C, t.shape[-1]) for t in (qf, kf, v1))
        mask = torch.ones(C, C, dtype=torch.bool, device=v.device).tril()
        within = ((qc @ kc.transpose(-1, -2)) * mask) @ vc
        state = kc.transpose(-1, -2) @ vc  # [B, H, n, m, hd + 1], per chunk
        before = F.pad(state.cumsum(dim=2), (0, 0, 0, 0, 1, 0))[:, :, :n]  # exclusive prefix
        out = (within + qc @ before).reshape(B, H, n * C, -1)[:, :, :T]
        return out[..., :-1] / out[..., -1:].clamp_min(1e-30)

    def forward(self, x: torch.Tensor, rope: Rope) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.heads(x, rope)
        if self.n_kv_head != self.n_head:  # grouped-query heads share keys and values
            k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
            v = v.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            qf = self.feature_map(q.float(), is_query=True)
            kf = self.feature_map(k.float(), is_query=False)
            y = self.causal_linear_attention(qf, kf, v.float())
        return self.proj(y.to(x.dtype).transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class PerformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.norm1, self.attn = make_norm(cfg), FavorAttention(cfg)
        self.norm2, self.mlp = make_norm(cfg), MLP(cfg)

    def forward(self, x: torch.Tensor, rope: Rope) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class Performer(CausalLM):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.blocks = nn.ModuleList(PerformerBlock(cfg) for _ in range(cfg.n_layer))
        self.init_weights(residual_writes=2 * cfg.n_layer)
        # a seed drawn from the global RNG (so torch.manual_seed fixes it), then every draw of
        # features is a function of (seed, layer, draw): saved with the weights, resumable
        self.register_buffer("feature_seed", torch.randint(0, 2**62, (), dtype=torch.int64))
        self.register_buffer("forwards", torch.zeros((), dtype=torch.int64))
        self.redraw_features()

    def redraw_features(self) -> None:
        draw = int(self.forwards) // self.cfg.feature_redraw if self.cfg.feature_redraw else 0
        for layer, block in enumerate(self.blocks):
            seed = int(self.feature_seed) + 1_000_003 * layer + 998_244_353 * draw
            g = torch.Generator().manual_seed(seed % 2**63)
            block.attn.set_features(orthogonal_gaussian(block.attn.m, block.attn.head_dim, g))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.training and self.cfg.feature_redraw:
            if int(self.forwards) and int(self.forwards) % self.cfg.feature_redraw == 0:
                self.redraw_features()
            self.forwards += 1
        x, rope = self.embed(idx)
        for block in self.blocks:
            x = block(x, rope)
        return self.logits(x)
