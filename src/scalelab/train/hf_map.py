"""Our transformer's weights under the names (and shapes) of the Hugging Face class that holds
it exactly, and back: the mapping both the export (:mod:`scalelab.train.export`) and the
reader of an export (:mod:`scalelab.runs`) use. See :mod:`scalelab.train.export` for the two
layouts (GPT-2, Llama). Torch only; no ``transformers`` needed.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.config import ModelConfig
from scalelab.errors import ConfigError

GPT2_ACT = {"gelu": "gelu", "relu": "relu"}
LLAMA_ACT = {"swiglu": "silu", "geglu": "gelu", "reglu": "relu"}


def hf_layout(cfg: ModelConfig) -> str:
    """``"gpt2"`` or ``"llama"``: the ``transformers`` class that holds ``cfg`` exactly."""
    if cfg.arch != "transformer":
        raise ConfigError(
            f"Hugging Face export covers model.arch = 'transformer' only, not {cfg.arch!r}"
        )
    if cfg.parametrization != "sp":
        raise ConfigError(
            "a muP model scales its logits and attention in ways GPT2LMHeadModel and "
            "LlamaForCausalLM cannot hold: export covers model.parametrization = 'sp' only"
        )
    if not cfg.causal:
        raise ConfigError(
            "GPT2LMHeadModel and LlamaForCausalLM are causal: export needs model.causal = true"
        )
    if cfg.norm == "layernorm" and cfg.pos == "learned":
        problems = []
        if cfg.mlp not in GPT2_ACT:
            problems.append(f"model.mlp = {cfg.mlp!r} (GPT-2 needs 'gelu' or 'relu')")
        if cfg.n_kv_head != cfg.n_head:
            problems.append(
                f"model.n_kv_head = {cfg.n_kv_head} (GPT-2 has no grouped-query attention: "
                f"set it to model.n_head = {cfg.n_head})"
            )
        if problems:
            raise ConfigError("cannot export as GPT2LMHeadModel: change " + "; ".join(problems))
        return "gpt2"
    if cfg.norm == "rmsnorm" and cfg.pos == "rotary":
        if cfg.mlp not in LLAMA_ACT:
            raise ConfigError(
                f"cannot export as LlamaForCausalLM: model.mlp = {cfg.mlp!r}; Llama needs a "
                "gated MLP: set model.mlp = 'swiglu' (or 'geglu', 'reglu')"
            )
        return "llama"
    raise ConfigError(
        f"no Hugging Face class holds model.norm = {cfg.norm!r} with model.pos = {cfg.pos!r}: "
        "use model.norm = 'layernorm' and model.pos = 'learned' (GPT2LMHeadModel) or "
        "model.norm = 'rmsnorm' and model.pos = 'rotary' with a gated model.mlp (LlamaForCausalLM)"
    )


def hf_state_dict(model: nn.Module, cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """Our weights renamed (and, for GPT-2's Conv1D, transposed) to the HF class's names."""
    layout = hf_layout(cfg)
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    d, hd = cfg.d_model, cfg.head_dim
    assert cfg.n_kv_head is not None and cfg.d_ff is not None

    def bias_or_zeros(name: str, n: int) -> torch.Tensor:
        return sd[name] if name in sd else torch.zeros(n)

    if layout == "gpt2":
        out["transformer.wte.weight"] = sd["tok_emb.weight"]
        out["transformer.wpe.weight"] = sd["pos_emb.weight"]
        for i in range(cfg.n_layer):
            ours, hf = f"blocks.{i}.", f"transformer.h.{i}."
            for a, b in (("norm1", "ln_1"), ("norm2", "ln_2")):
                out[hf + b + ".weight"] = sd[ours + a + ".weight"]
                out[hf + b + ".bias"] = bias_or_zeros(ours + a + ".bias", d)
            for a, b, n_out in (
                ("attn.qkv", "attn.c_attn", 3 * d),
                ("attn.proj", "attn.c_proj", d),
                ("mlp.fc", "mlp.c_fc", cfg.d_ff),
                ("mlp.proj", "mlp.c_proj", d),
            ):
                out[hf + b + ".weight"] = (
                    sd[ours + a + ".weight"].t().contiguous()
                )  # Conv1D: [in, out]
                out[hf + b + ".bias"] = bias_or_zeros(ours + a + ".bias", n_out)
        out["transformer.ln_f.weight"] = sd["norm_f.weight"]
        out["transformer.ln_f.bias"] = bias_or_zeros("norm_f.bias", d)
        out["lm_head.weight"] = sd["head.weight"]
        return out

    q, kv = cfg.n_head * hd, cfg.n_kv_head * hd
    out["model.embed_tokens.weight"] = sd["tok_emb.weight"]
    for i in range(cfg.n_layer):
        ours, hf = f"blocks.{i}.", f"model.layers.{i}."
        out[hf + "input_layernorm.weight"] = sd[ours + "norm1.weight"]
        out[hf + "post_attention_layernorm.weight"] = sd[ours + "norm2.weight"]
        for kind in ("weight", "bias"):
            if kind == "bias" and not cfg.bias:
                continue
            qkv = sd[f"{ours}attn.qkv.{kind}"]
            out[f"{hf}self_attn.q_proj.{kind}"] = qkv[:q]
            out[f"{hf}self_attn.k_proj.{kind}"] = qkv[q : q + kv]
            out[f"{hf}self_attn.v_proj.{kind}"] = qkv[q + kv :]
            out[f"{hf}self_attn.o_proj.{kind}"] = sd[f"{ours}attn.proj.{kind}"]
            fc = sd[f"{ours}mlp.fc.{kind}"]  # gate rows, then up rows
            out[f"{hf}mlp.gate_proj.{kind}"] = fc[: cfg.d_ff]
            out[f"{hf}mlp.up_proj.{kind}"] = fc[cfg.d_ff :]
            out[f"{hf}mlp.down_proj.{kind}"] = sd[f"{ours}mlp.proj.{kind}"]
    out["model.norm.weight"] = sd["norm_f.weight"]
    out["lm_head.weight"] = sd["head.weight"]
    return out


def from_hf_state_dict(hf: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """The inverse of :func:`hf_state_dict`: an export's weights under our names (GPT-2's
    Conv1D transposed back, Llama's q/k/v and gate/up concatenated back). The zero biases a
    bias-free model was exported with are dropped."""
    layout = hf_layout(cfg)
    out: dict[str, torch.Tensor] = {"tok_emb.weight": hf[_first(hf, "wte", "embed_tokens")]}
    head = hf.get("lm_head.weight")
    out["head.weight"] = head if head is not None else out["tok_emb.weight"]  # tied: not saved
    if layout == "gpt2":
        out["pos_emb.weight"] = hf["transformer.wpe.weight"]
        pairs = [("norm_f", "transformer.ln_f")]
        for i in range(cfg.n_layer):
            ours, theirs = f"blocks.{i}.", f"transformer.h.{i}."
            pairs += [(ours + a, theirs + b) for a, b in (("norm1", "ln_1"), ("norm2", "ln_2"))]
            for a, b in (("attn.qkv", "attn.c_attn"), ("attn.proj", "attn.c_proj"),
                         ("mlp.fc", "mlp.c_fc"), ("mlp.proj", "mlp.c_proj")):  # fmt: skip
                out[ours + a + ".weight"] = hf[theirs + b + ".weight"].t().contiguous()
                out[ours + a + ".bias"] = hf[theirs + b + ".bias"]
        for a, b in pairs:
            out[a + ".weight"] = hf[b + ".weight"]
            out[a + ".bias"] = hf[b + ".bias"]
        return out
    out["norm_f.weight"] = hf["model.norm.weight"]
    for i in range(cfg.n_layer):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        out[ours + "norm1.weight"] = hf[theirs + "input_layernorm.weight"]
        out[ours + "norm2.weight"] = hf[theirs + "post_attention_layernorm.weight"]
        for kind in ("weight", "bias") if cfg.bias else ("weight",):
            attn, mlp = theirs + "self_attn.", theirs + "mlp."
            out[f"{ours}attn.qkv.{kind}"] = torch.cat(
                [hf[f"{attn}{x}_proj.{kind}"] for x in ("q", "k", "v")]
            )
            out[f"{ours}attn.proj.{kind}"] = hf[f"{attn}o_proj.{kind}"]
            out[f"{ours}mlp.fc.{kind}"] = torch.cat(
                [hf[f"{mlp}gate_proj.{kind}"], hf[f"{mlp}up_proj.{kind}"]]
            )
            out[f"{ours}mlp.proj.{kind}"] = hf[f"{mlp}down_proj.{kind}"]
    return out


def _first(sd: dict[str, torch.Tensor], *names: str) -> str:
    return next(k for k in sd if any(f".{n}." in f".{k}" for n in names))
