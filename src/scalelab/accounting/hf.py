"""Read a Hugging Face ``config.json`` (or Meta's native ``params.json``) into a :class:`TransformerShape`.

Each family's layout follows its ``transformers`` class (checked against
``sum(p.numel())`` of the class instantiated on the meta device, see
``tests/test_accounting_hf.py``). Fields that decide the shape are required; flags fall
back to the defaults of the ``transformers`` config class, as loading the file there would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scalelab.accounting.transformer import TransformerShape
from scalelab.errors import ConfigError, did_you_mean, read_user_text

# Meta's Llama and Llama 2 checkpoints ship ``"vocab_size": -1`` (set from the tokenizer at
# load time); their SentencePiece tokenizer has 32,000 pieces (Touvron et al. 2023, sec. 2.1).
META_DEFAULT_VOCAB = 32000


class _Fields:
    """Typed access to a config mapping; errors name the file, the field and the fix."""

    def __init__(self, cfg: Mapping[str, Any], source: str, kind: str) -> None:
        self.cfg, self.source, self.kind = cfg, source, kind

    def _int(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(
                f"{self.source}: field {name!r} must be a positive integer, got {value!r}"
            )
        if not math.isfinite(value) or value != int(value) or value < 1:
            raise ConfigError(
                f"{self.source}: field {name!r} must be a positive integer, got {value!r}"
            )
        return int(value)

    def req(self, *names: str) -> int:
        """The first of ``names`` present (aliases of one field), as a positive integer."""
        for name in names:
            if self.cfg.get(name) is not None:
                return self._int(name, self.cfg[name])
        raise ConfigError(
            f"{self.source}: missing field {names[0]!r}, which a {self.kind} config needs; "
            "add it (the value is in the model's original config.json)"
        )

    def opt_int(self, name: str, default: int | None) -> int | None:
        value = self.cfg.get(name)
        return default if value is None else self._int(name, value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.cfg.get(name, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.source}: field {name!r} must be true or false, got {value!r}")
        return value


def _heads(f: _Fields, d: int, n_head: int, head_dim: int | None) -> int:
    if head_dim is not None:
        return head_dim
    if d % n_head:
        raise ConfigError(
            f"{f.source}: hidden size {d} is not divisible by {n_head} attention heads; "
            "set 'head_dim' or fix the head count"
        )
    return d // n_head


def _kv_heads(f: _Fields, n_head: int) -> int:
    n_kv = f.opt_int("num_key_value_heads", n_head)
    assert n_kv is not None
    if n_head % n_kv:
        raise ConfigError(
            f"{f.source}: num_attention_heads ({n_head}) must be a multiple of "
            f"num_key_value_heads ({n_kv})"
        )
    return n_kv


def _gpt2(f: _Fields) -> TransformerShape:
    d, n_head = f.req("n_embd", "hidden_size"), f.req("n_head", "num_attention_heads")
    positions = f.req("n_positions", "max_position_embeddings")
    return TransformerShape(
        n_layer=f.req("n_layer", "num_hidden_layers"),
        d_model=d,
        n_head=n_head,
        n_kv_head=n_head,
        head_dim=_heads(f, d, n_head, None),
        d_ff=f.opt_int("n_inner", 4 * d) or 4 * d,
        vocab_size=f.req("vocab_size"),
        context=positions,
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        norm_bias=True,
        learned_positions=positions,
        tie_embeddings=f.flag("tie_word_embeddings", True),
    )


def _bert(f: _Fields) -> TransformerShape:
    kind = f.cfg.get("position_embedding_type", "absolute")
    if kind != "absolute":
        raise ConfigError(
            f"{f.source}: position_embedding_type {kind!r} is not supported; only 'absolute'"
        )
    d, n_head = f.req("hidden_size"), f.req("num_attention_heads")
    positions = f.req("max_position_embeddings")
    archs = f.cfg.get("architectures") or ["BertForMaskedLM"]
    return TransformerShape(
        n_layer=f.req("num_hidden_layers"),
        d_model=d,
        n_head=n_head,
        n_kv_head=n_head,
        head_dim=_heads(f, d, n_head, None),
        d_ff=f.req("intermediate_size"),
        vocab_size=f.req("vocab_size"),
        context=positions,
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
        norm_bias=True,
        learned_positions=positions,
        token_types=f.opt_int("type_vocab_size", 2) or 0,
        embed_norm=True,  # post-norm: LayerNorm after the embeddings and after each sublayer
        final_norm=False,
        tie_embeddings=f.flag("tie_word_embeddings", True),
        head_bias=True,
        head_transform=True,  # BertForMaskedLM / BertForPreTraining: the MLM head
        pooler="BertForPreTraining" in archs,
        causal=False,
    )


def _gpt_neox(f: _Fields) -> TransformerShape:
    d, n_head = f.req("hidden_size"), f.req("num_attention_heads")
    bias = f.flag("attention_bias", True)
    return TransformerShape(
        n_layer=f.req("num_hidden_layers"),
        d_model=d,
        n_head=n_head,
        n_kv_head=n_head,
        head_dim=_heads(f, d, n_head, f.opt_int("head_dim", None)),
        d_ff=f.req("intermediate_size"),
        vocab_size=f.req("vocab_size"),
        context=f.opt_int("max_position_embeddings", None),
        qkv_bias=bias,
        out_bias=bias,
        mlp_bias=True,
        norm_bias=True,
        tie_embeddings=f.flag("tie_word_embeddings", False),
    )


def _moe_layer_count(f: _Fields, n_layer: int, n_experts: int) -> int:
    """Qwen-MoE rule: layer i is sparse unless listed in ``mlp_only_layers``, every
    ``decoder_sparse_step``-th layer (``(i + 1) % step == 0``)."""
    step = f.opt_int("decoder_sparse_step", 1) or 1
    dense_only = set(f.cfg.get("mlp_only_layers") or [])
    return sum(
        1 for i in range(n_layer) if i not in dense_only and n_experts > 0 and (i + 1) % step == 0
    )


def _llama_like(f: _Fields, model_type: str) -> TransformerShape:
    d, n_head = f.req("hidden_size"), f.req("num_attention_heads")
    n_layer = f.req("num_hidden_layers")
    # Qwen3's config class defaults head_dim to 128; the others derive it from d / n_head
    head_dim = f.opt_int("head_dim", 128 if model_type == "qwen3" else None)
    common: dict[str, Any] = dict(
        n_layer=n_layer,
        d_model=d,
        n_head=n_head,
        n_kv_head=_kv_heads(f, n_head),
        head_dim=_heads(f, d, n_head, head_dim),
        d_ff=f.req("intermediate_size"),
        vocab_size=f.req("vocab_size"),
        context=f.opt_int("max_position_embeddings", None),
        gated=True,  # SwiGLU (gate, up, down)
        tie_embeddings=f.flag("tie_word_embeddings", False),
    )
    if model_type in ("llama", "orion", "qwen3", "qwen3_moe"):
        bias = f.flag("attention_bias", False)
        common.update(qkv_bias=bias, out_bias=bias)
    if model_type == "llama":
        common.update(mlp_bias=f.flag("mlp_bias", False))
    if model_type == "orion":
        common.update(norm_bias=True)  # Orion: LayerNorm (weight and bias) where Llama has RMSNorm
    if model_type == "qwen2":
        common.update(qkv_bias=True)
    if model_type == "qwen2_moe":
        common.update(qkv_bias=f.flag("qkv_bias", True))
    if model_type in ("qwen3", "qwen3_moe"):
        common.update(qk_norm=True)
    if model_type == "mixtral":
        n_experts = f.opt_int("num_local_experts", 8) or 8
        common.update(
            n_experts=n_experts,
            top_k=f.opt_int("num_experts_per_tok", 2),
            d_ff_expert=common["d_ff"],
            moe_layers=n_layer,
        )
    if model_type in ("qwen2_moe", "qwen3_moe"):
        default_experts = 60 if model_type == "qwen2_moe" else 128
        n_experts = f.opt_int("num_experts", f.opt_int("num_local_experts", default_experts))
        assert n_experts is not None
        common.update(
            n_experts=n_experts,
            top_k=f.opt_int("num_experts_per_tok", 4 if model_type == "qwen2_moe" else 8),
            d_ff_expert=f.req("moe_intermediate_size"),
            moe_layers=_moe_layer_count(f, n_layer, n_experts),
        )
    if model_type == "qwen2_moe":
        common.update(
            shared_d_ff=f.opt_int("shared_expert_intermediate_size", 0) or 0, shared_gate=True
        )
    if common.get("top_k", 0) > common.get("n_experts", 0):
        raise ConfigError(
            f"{f.source}: num_experts_per_tok ({common['top_k']}) exceeds the number of "
            f"experts ({common['n_experts']})"
        )
    return TransformerShape(**common)


_FAMILIES: dict[str, Callable[[_Fields], TransformerShape]] = {
    "gpt2": _gpt2,
    "bert": _bert,
    "gpt_neox": _gpt_neox,
    **{
        t: (lambda f, t=t: _llama_like(f, t))
        for t in (
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen2_moe",
            "qwen3",
            "qwen3_moe",
            "orion",
        )
    },
}
SUPPORTED_MODEL_TYPES = tuple(_FAMILIES)


def shape_from_hf(cfg: Mapping[str, Any], source: str = "config") -> TransformerShape:
    """The :class:`TransformerShape` of a Hugging Face config (a parsed ``config.json``)."""
    if "model_type" not in cfg:
        raise ConfigError(
            f"{source}: missing field 'model_type'; a Hugging Face config.json names its family "
            f"there (supported: {', '.join(SUPPORTED_MODEL_TYPES)})"
        )
    model_type = cfg["model_type"]
    if model_type not in _FAMILIES:
        raise ConfigError(
            f"{source}: model_type {model_type!r} is not supported"
            f"{did_you_mean(str(model_type), _FAMILIES)}; supported: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return _FAMILIES[model_type](_Fields(cfg, source, model_type))


def is_meta_params(cfg: Mapping[str, Any]) -> bool:
    """Meta's native ``params.json`` (``dim``, ``n_layers``, ``n_heads``, ...)."""
    return "model_type" not in cfg and "dim" in cfg and "n_layers" in cfg


def meta_ffn_dim(dim: int, multiple_of: int, multiplier: float | None) -> int:
    """Hidden size of the SwiGLU MLP in Meta's Llama code: 2/3 of 4 dim, times
    ``ffn_dim_multiplier``, rounded up to a multiple of ``multiple_of``."""
    hidden = int(2 * (4 * dim) / 3)
    if multiplier is not None:
        hidden = int(multiplier * hidden)
    return multiple_of * -(-hidden // multiple_of)


def shape_from_meta(cfg: Mapping[str, Any], source: str = "params.json") -> TransformerShape:
    """The :class:`TransformerShape` of a Meta Llama ``params.json`` (untied output, RMSNorm, SwiGLU)."""
    f = _Fields(cfg, source, "Meta params.json")
    d, n_head = f.req("dim"), f.req("n_heads")
    n_kv = f.opt_int("n_kv_heads", n_head)
    assert n_kv is not None
    if n_head % n_kv:
        raise ConfigError(f"{source}: n_heads ({n_head}) must be a multiple of n_kv_heads ({n_kv})")
    vocab = cfg.get("vocab_size", -1)
    vocab = META_DEFAULT_VOCAB if vocab in (-1, None) else f.req("vocab_size")
    multiplier = cfg.get("ffn_dim_multiplier")
    if multiplier is not None and (
        isinstance(multiplier, bool) or not isinstance(multiplier, (int, float))
    ):
        raise ConfigError(
            f"{source}: field 'ffn_dim_multiplier' must be a number, got {multiplier!r}"
        )
    return TransformerShape(
        n_layer=f.req("n_layers"),
        d_model=d,
        n_head=n_head,
        n_kv_head=n_kv,
        head_dim=_heads(f, d, n_head, None),
        d_ff=meta_ffn_dim(d, f.opt_int("multiple_of", 256) or 256, multiplier),
        vocab_size=vocab,
        context=f.opt_int("max_seq_len", None),
        gated=True,
        tie_embeddings=False,
    )


def read_json(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        data = json.loads(read_user_text(p, "config file"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a JSON object (a config.json), got {type(data).__name__}")
    return data


def shape_from_json(cfg: Mapping[str, Any], source: str) -> TransformerShape:
    """A Hugging Face config or a Meta params.json, told apart by their fields."""
    return shape_from_meta(cfg, source) if is_meta_params(cfg) else shape_from_hf(cfg, source)
