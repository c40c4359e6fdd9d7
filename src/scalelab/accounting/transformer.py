"""Accounting of the transformer family: one shape description for scalelab's own transformer
and for the Hugging Face families (GPT-2, BERT, GPT-NeoX, Llama, Mistral, Mixtral, Qwen2/3, MoE).

A :class:`TransformerShape` is everything that decides the parameter count and the per-token FLOPs of a
decoder or encoder stack; :func:`tally_shape` assembles it from the generic blocks. scalelab's
own ``transformer`` gets its shape from :func:`scalelab.accounting.tallies.shape_from_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scalelab.accounting.blocks import (
    Piece,
    Tally,
    attention,
    embeddings,
    linear,
    lm_head,
    mlp,
    moe,
    norm,
)


@dataclass(frozen=True)
class TransformerShape:
    """Shape of a transformer, as far as parameters, FLOPs and memory are concerned."""

    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    head_dim: int
    d_ff: int
    vocab_size: int
    context: int | None  # longest sequence (learned positions) or default length; None: unknown
    gated: bool = False  # GLU MLP: two up projections (SwiGLU, GeGLU)
    qkv_bias: bool = False
    out_bias: bool = False  # attention output projection
    mlp_bias: bool = False
    norm_bias: bool = False  # LayerNorm with a bias; False: RMSNorm or bias-free LayerNorm
    qk_norm: bool = False  # per-head norms of q and k (Qwen3)
    learned_positions: int = 0  # rows of a learned position table (0: rotary or none)
    token_types: int = 0  # BERT's segment embeddings
    embed_norm: bool = False  # a norm right after the embeddings (BERT)
    final_norm: bool = True  # a norm before the head (pre-norm stacks)
    tie_embeddings: bool = True
    head_bias: bool = False  # a bias on the vocabulary logits (BERT)
    head_transform: bool = False  # BERT's MLM head: dense [d, d] + bias, LayerNorm, then decoder
    pooler: bool = (
        False  # BERT pre-training: pooler [d, d] + bias and next-sentence head [d, 2] + bias
    )
    causal: bool = True
    # mixture of experts; layers listed in ``moe_layers`` replace the dense MLP
    n_experts: int = 0
    top_k: int = 0
    d_ff_expert: int = 0
    moe_layers: int = 0
    router_bias: bool = False
    shared_d_ff: int = 0  # always-on shared expert (Qwen2-MoE)
    shared_gate: bool = False

    def __post_init__(self) -> None:
        if self.moe_layers and not (self.n_experts and self.top_k and self.d_ff_expert):
            raise ValueError("an MoE layer needs n_experts, top_k and d_ff_expert")


def tally_shape(s: TransformerShape) -> Tally:
    """Parameters, MACs and cache of a :class:`TransformerShape`, assembled block by block."""
    emb = embeddings(
        s.vocab_size, s.d_model, positions=s.learned_positions, token_types=s.token_types
    )
    if s.embed_norm:
        emb = emb + norm(s.d_model, bias=s.norm_bias)
    attn = attention(
        s.d_model,
        s.n_head,
        s.n_kv_head,
        s.head_dim,
        qkv_bias=s.qkv_bias,
        out_bias=s.out_bias,
        qk_norm=s.qk_norm,
    )
    mixer = attn + norm(s.d_model, bias=s.norm_bias) * 2  # one norm before (or after) each sublayer
    dense = mixer + mlp(s.d_model, s.d_ff, gated=s.gated, bias=s.mlp_bias)
    body = emb + dense * (s.n_layer - s.moe_layers)
    if s.moe_layers:
        sparse = mixer + moe(
            s.d_model,
            s.n_experts,
            s.top_k,
            s.d_ff_expert,
            gated=s.gated,
            bias=s.mlp_bias,
            router_bias=s.router_bias,
            shared_d_ff=s.shared_d_ff,
            shared_gate=s.shared_gate,
        )
        body = body + sparse * s.moe_layers
    if s.final_norm:
        body = body + norm(s.d_model, bias=s.norm_bias)
    if s.head_transform:
        body = body + linear(s.d_model, s.d_model, bias=True, component="head")
        body = body + norm(s.d_model, bias=True, component="head")
    if s.pooler:
        # the pooler and next-sentence head see one token per sequence, so they cost no
        # per-token FLOPs: count their parameters only
        n = (s.d_model * s.d_model + s.d_model) + (2 * s.d_model + 2)
        body = body + Piece({"head": n}, n)
    body = body + lm_head(s.d_model, s.vocab_size, tied=s.tie_embeddings, bias=s.head_bias)
    return Tally(
        body=body,
        embedding=(s.vocab_size + s.learned_positions + s.token_types) * s.d_model,
        untied_head=0 if s.tie_embeddings else s.vocab_size * s.d_model,
        n_layer=s.n_layer,
        d_model=s.d_model,
        n_head=s.n_head,
        context=s.context,
        causal=s.causal,
    )
