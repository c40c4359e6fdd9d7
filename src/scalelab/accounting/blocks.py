"""Generic building blocks of parameter and FLOP accounting, and the hook every architecture fills.

A block is a :class:`Piece`: the parameters it stores (by component), the parameters a token
passes through, the multiply-accumulates (MACs) a token costs in weight matmuls, the MACs of
token mixing (attention scores and values) per attended position, and the elements it caches
per token for generation. Pieces add up; ``piece * n`` is n copies with their own weights and
``piece.reused(n)`` is the same weights applied n times (a universal transformer, ALBERT).

An architecture's accounting function (``scalelab.models.Arch.accounting``) maps its
``ModelConfig`` to a :class:`Tally` built from these pieces; ``scalelab.accounting.count``
turns a tally into parameters, FLOPs and memory. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# The components of a breakdown, in display order. An architecture may add its own keys.
COMPONENTS = ("embeddings", "attention", "mlp", "experts", "router", "norms", "head")


def _merge(a: Mapping[str, int], b: Mapping[str, int], scale: int = 1) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + scale * value
    return out


@dataclass(frozen=True)
class Piece:
    """Accounting of one block, per token, forward pass.

    * ``params``: parameters stored, by component (tied tensors counted once)
    * ``active``: parameters a token passes through (MoE: router, shared parts, top-k experts)
    * ``macs``: multiply-accumulates in weight matmuls (a [d_in, d_out] matrix costs d_in d_out)
    * ``mix_macs_per_position``: token-mixing MACs per attended position (dense attention:
      q.k and p.v, ``2 n_head head_dim`` per layer), multiplied by the sequence length later
    * ``mix_macs``: token-mixing MACs independent of the sequence length (convolutions,
      linear attention)
    * ``kv``: elements cached per token for generation (keys and values)
    """

    params: Mapping[str, int] = field(default_factory=dict)
    active: int = 0
    macs: int = 0
    mix_macs_per_position: int = 0
    mix_macs: int = 0
    kv: int = 0

    @property
    def total(self) -> int:
        return sum(self.params.values())

    def __add__(self, other: Piece) -> Piece:
        return Piece(
            _merge(self.params, other.params),
            self.active + other.active,
            self.macs + other.macs,
            self.mix_macs_per_position + other.mix_macs_per_position,
            self.mix_macs + other.mix_macs,
            self.kv + other.kv,
        )

    def __mul__(self, n: int) -> Piece:
        """``n`` copies of the block, each with its own weights (the layers of a stack)."""
        if n < 0:
            raise ValueError(f"cannot repeat a block {n} times")
        return Piece(
            {k: v * n for k, v in self.params.items()},
            self.active * n,
            self.macs * n,
            self.mix_macs_per_position * n,
            self.mix_macs * n,
            self.kv * n,
        )

    __rmul__ = __mul__

    def reused(self, n: int) -> Piece:
        """The same weights applied ``n`` times: compute and cache scale, parameters do not."""
        return Piece(
            dict(self.params),
            self.active,
            self.macs * n,
            self.mix_macs_per_position * n,
            self.mix_macs * n,
            self.kv * n,
        )


def total(pieces: Iterable[Piece]) -> Piece:
    out = Piece()
    for p in pieces:
        out = out + p
    return out


@dataclass(frozen=True)
class Tally:
    """What an architecture's accounting function returns for one config.

    ``embedding`` is the size of the input embedding tables (token, position, token type) and
    ``untied_head`` that of an output projection not shared with them: Kaplan et al. (2020)
    exclude both from N. ``n_layer``, ``d_model`` and ``n_head`` feed the activation-memory
    formula of Korthikanti et al. (2022); ``context`` is the default sequence length.
    """

    body: Piece
    embedding: int
    untied_head: int
    n_layer: int
    d_model: int
    n_head: int
    context: int | None
    causal: bool = True

    def __post_init__(self) -> None:
        if self.embedding + self.untied_head > self.body.total:
            raise ValueError("embedding and head cannot exceed the total parameters")


# --- blocks ---------------------------------------------------------------------------------


def linear(d_in: int, d_out: int, *, bias: bool = False, component: str = "mlp") -> Piece:
    """A dense [d_in, d_out] projection (a bias adds d_out parameters and no MACs: the
    FLOP counts of Kaplan et al. 2020 and of torch's FlopCounterMode both leave biases out)."""
    n = d_in * d_out + (d_out if bias else 0)
    return Piece({component: n}, n, d_in * d_out)


def norm(d: int, *, bias: bool = False, component: str = "norms") -> Piece:
    """LayerNorm (weight, and bias if ``bias``) or RMSNorm (weight only) over ``d`` features."""
    n = d * (2 if bias else 1)
    return Piece({component: n}, n)


def embeddings(vocab: int, d: int, *, positions: int = 0, token_types: int = 0) -> Piece:
    """Token, learned position and token-type tables: stored, looked up, never multiplied."""
    n = (vocab + positions + token_types) * d
    return Piece({"embeddings": n}, n)


def attention(
    d_model: int,
    n_head: int,
    n_kv_head: int | None = None,
    head_dim: int | None = None,
    *,
    qkv_bias: bool = False,
    out_bias: bool = False,
    qk_norm: bool = False,
) -> Piece:
    """Multi-head self-attention with grouped-query heads (Ainslie et al. 2023).

    Projections: q [d, n_head hd], k and v [d, n_kv_head hd], out [n_head hd, d]. Mixing: per
    attended position, q.k and p.v cost ``n_head hd`` MACs each. The KV cache keeps
    ``2 n_kv_head hd`` elements per token. ``qk_norm`` adds per-head RMSNorm weights on q and
    k (Qwen3), counted as norms.
    """
    n_kv_head = n_head if n_kv_head is None else n_kv_head
    hd = d_model // n_head if head_dim is None else head_dim
    q, kv = n_head * hd, n_kv_head * hd
    proj = (
        linear(d_model, q, bias=qkv_bias, component="attention")
        + linear(d_model, kv, bias=qkv_bias, component="attention") * 2
        + linear(q, d_model, bias=out_bias, component="attention")
    )
    mixing = Piece(mix_macs_per_position=2 * q, kv=2 * kv)
    return proj + mixing + (norm(hd) * 2 if qk_norm else Piece())


def mlp(d_model: int, d_ff: int, *, gated: bool = False, bias: bool = False) -> Piece:
    """Position-wise MLP: up [d, d_ff] and down [d_ff, d]; a gated MLP (GLU, Shazeer 2020) has a
    second up projection."""
    up = linear(d_model, d_ff, bias=bias, component="mlp")
    return up * (2 if gated else 1) + linear(d_ff, d_model, bias=bias, component="mlp")


def moe(
    d_model: int,
    n_experts: int,
    top_k: int,
    d_ff: int,
    *,
    gated: bool = True,
    bias: bool = False,
    router_bias: bool = False,
    shared_d_ff: int = 0,
    shared_gate: bool = False,
) -> Piece:
    """A routed mixture of experts (Shazeer et al. 2017; Fedus et al. 2021 with top_k = 1).

    Stores ``n_experts`` expert MLPs and a router [d, n_experts]; a token passes through the
    router and ``top_k`` experts. Optional always-on shared expert (``shared_d_ff``) with a
    scalar sigmoid gate [d, 1] (Qwen2-MoE): counted under ``mlp`` and ``router``.
    """
    if not 1 <= top_k <= n_experts:
        raise ValueError(f"top_k ({top_k}) must be in [1, n_experts = {n_experts}]")
    expert = mlp(d_model, d_ff, gated=gated, bias=bias)
    stored = expert.total * n_experts
    routed = Piece({"experts": stored}, expert.active * top_k, expert.macs * top_k)
    router = linear(d_model, n_experts, bias=router_bias, component="router")
    out = routed + router
    if shared_d_ff:
        out = out + mlp(d_model, shared_d_ff, gated=gated, bias=bias)
    if shared_gate:
        out = out + linear(d_model, 1, component="router")
    return out


def lm_head(d_model: int, vocab: int, *, tied: bool, bias: bool = False) -> Piece:
    """Output projection to the vocabulary. Tied to the token embedding it stores nothing new
    (and its weights are already active as the embedding), but every token still pays its
    ``d_model vocab`` MACs."""
    stored = (0 if tied else d_model * vocab) + (vocab if bias else 0)
    return Piece({"head": stored}, stored, d_model * vocab)
