"""Export a trained run as a Hugging Face checkpoint (``config.json`` + ``model.safetensors``).

Two layouts of :mod:`scalelab.models.transformer` have an exact ``transformers`` class:

* GPT-2 (``GPT2LMHeadModel``): ``norm = "layernorm"``, ``pos = "learned"``, a plain MLP
  (``gelu``, exported as the exact ``"gelu"`` activation, or ``relu``), plain multi-head
  attention. GPT-2 always has biases; a model trained with ``bias = false`` is exported with
  zero biases, which leaves its logits unchanged.
* Llama (``LlamaForCausalLM``): ``norm = "rmsnorm"``, ``pos = "rotary"`` (our tables use
  Hugging Face's half-split layout, so no permutation of q and k is needed), a gated MLP
  (``swiglu`` -> ``hidden_act = "silu"``; ``geglu`` -> ``"gelu"``, ``reglu`` -> ``"relu"``),
  grouped-query attention allowed; ``bias = true`` maps to ``attention_bias`` and ``mlp_bias``.

Both need a causal model; tied or untied embeddings map to ``tie_word_embeddings``. Any
other combination raises a ``ConfigError`` that names the fields to change.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalelab import atomic, rundir
from scalelab.config import ModelConfig, run_config_from_dict
from scalelab.errors import ConfigError, StoreError, TrainingError
from scalelab.models import build_model
from scalelab.train.checkpoint import latest_checkpoint

FORMATS = ("hf",)
_GPT2_ACT = {"gelu": "gelu", "relu": "relu"}
_LLAMA_ACT = {"swiglu": "silu", "geglu": "gelu", "reglu": "relu"}


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
        if cfg.mlp not in _GPT2_ACT:
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
        if cfg.mlp not in _LLAMA_ACT:
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


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise TrainingError(
            "export needs the transformers package: pip install 'scalelab[hf]'"
        ) from None
    return transformers


def hf_config(cfg: ModelConfig, eos_id: int | None = None) -> Any:
    """The ``transformers`` config object of the HF class that holds ``cfg``."""
    tf = _transformers()
    layout = hf_layout(cfg)
    if layout == "gpt2":
        return tf.GPT2Config(
            vocab_size=cfg.vocab_size,
            n_positions=cfg.context,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layer,
            n_head=cfg.n_head,
            n_inner=cfg.d_ff,
            activation_function=_GPT2_ACT[cfg.mlp],
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            layer_norm_epsilon=cfg.norm_eps,
            initializer_range=cfg.init_std,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            tie_word_embeddings=cfg.tie_embeddings,
        )
    return tf.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_ff,
        num_hidden_layers=cfg.n_layer,
        num_attention_heads=cfg.n_head,
        num_key_value_heads=cfg.n_kv_head,
        head_dim=cfg.head_dim,
        hidden_act=_LLAMA_ACT[cfg.mlp],
        max_position_embeddings=cfg.context,
        initializer_range=cfg.init_std,
        rms_norm_eps=cfg.norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
        attention_bias=cfg.bias,
        mlp_bias=cfg.bias,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=cfg.tie_embeddings,
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


def export_meta(path: str | Path) -> dict[str, Any]:
    """An export's ``scalelab.json``: the run's config, its id and the checkpoint's step."""
    meta = rundir.read_json(Path(path) / rundir.EXPORT_META)
    if not (
        isinstance(meta, dict)
        and isinstance(meta.get("config"), dict)
        and isinstance(meta.get("step"), int)
    ):
        raise StoreError(
            f"{Path(path) / rundir.EXPORT_META} is not an export's record (config, run_id, "
            "step): export the run again"
        )
    return meta


def load_export(path: str | Path) -> tuple[Any, nn.Module, dict[str, Any]]:
    """(the run's RunConfig, our model with the export's weights, the export's metadata):
    so that tasks, fine-tuning and the intrinsic dimension run on an export as on its run.
    The weights are read from ``model.safetensors`` (no ``transformers`` needed)."""
    from safetensors.torch import load_file

    export_dir = Path(path)
    meta = export_meta(export_dir)
    cfg = run_config_from_dict(meta["config"])
    weights = export_dir / "model.safetensors"
    if not weights.is_file():
        raise StoreError(f"{export_dir} has no model.safetensors: export the run again")
    model = build_model(cfg.model)
    state = from_hf_state_dict(load_file(str(weights)), cfg.model)
    ours = model.state_dict()
    state = {k: v for k, v in state.items() if k in ours}  # the zero biases of bias = false
    missing = [k for k in ours if k not in state]
    if missing:  # pragma: no cover - a mapping bug, not a user error
        raise RuntimeError(f"HF import mapping: missing {missing}")
    model.load_state_dict(state, strict=False)
    return cfg, model, meta


def to_hf(model: nn.Module, cfg: ModelConfig, eos_id: int | None = None) -> Any:
    """A ``GPT2LMHeadModel`` or ``LlamaForCausalLM`` (fp32, eval mode) with our weights."""
    tf = _transformers()
    config = hf_config(cfg, eos_id)
    cls = tf.GPT2LMHeadModel if hf_layout(cfg) == "gpt2" else tf.LlamaForCausalLM
    hf = cls(config)
    state = hf_state_dict(model, cfg)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if cfg.tie_embeddings else set()
    # transformers registers non-persistent buffers (rotary inv_freq) that no checkpoint holds
    missing = [k for k in missing if k not in tied and "rotary_emb" not in k]
    if missing or unexpected:  # pragma: no cover - a mapping bug, not a user error
        raise RuntimeError(f"HF export mapping: missing {missing}, unexpected {unexpected}")
    return hf.eval()


def export(
    run: str | Path,
    out: str | Path | None = None,
    *,
    format: str = "hf",
    strict: bool = False,
    note: Callable[[str], None] | None = None,
) -> Path:
    """Write the newest checkpoint of run directory ``run`` as a Hugging Face checkpoint.

    ``out`` defaults to ``RUN/hf``. The directory is written under a temporary name and
    renamed into place; an existing ``out`` is replaced. Returns ``out``.

    Where the newest checkpoint is damaged, the newest intact one is exported and
    ``note`` (default: a warning) is told in one line which step and why; with ``strict``
    that is an error instead.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format {format!r} is not one of {', '.join(FORMATS)}")
    run_dir = Path(run)
    if not (run_dir / rundir.CONFIG).is_file():
        raise StoreError(f"{run_dir} is not a run directory (no {rundir.CONFIG})")
    target = Path(out) if out is not None else run_dir / "hf"
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {str(target)!r} is a file: give a folder for the export")
    cfg = run_config_from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    hf_layout(cfg.model)  # fail on the layout before loading anything
    skipped: list[str] = []
    ckpt = latest_checkpoint(
        run_dir / rundir.CHECKPOINTS, lambda p, why: skipped.append(f"{p.name} ({why})")
    )
    if ckpt is None:
        damaged = f" (damaged: {', '.join(skipped)})" if skipped else ""
        raise StoreError(
            f"{run_dir} has no intact checkpoint to export{damaged}: train (or resume) it first"
        )
    if skipped:
        what = f"{run_dir}: the newest checkpoint is damaged: {'; '.join(skipped)}"
        if strict:
            raise StoreError(
                f"{what}; not exported (strict); the newest intact one is step {ckpt.step}"
            )
        (note or (lambda m: warnings.warn(m, stacklevel=3)))(
            f"{what}; exported step {ckpt.step}, the newest intact one"
        )
    model = build_model(cfg.model)
    ckpt.restore(model)
    eos_id = None
    if (run_dir / rundir.SUMMARY).exists():
        eos_id = rundir.read_json(run_dir / rundir.SUMMARY).get("eos_id")
    hf = to_hf(model, cfg.model, eos_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tf = _transformers()
    tf.utils.logging.disable_progress_bar()  # no shard-writing bar for a one-file checkpoint
    try:
        hf.save_pretrained(tmp)
        # what scalelab needs to read the export back as its run (tasks, fine-tuning, d90)
        meta = {"config": cfg.to_dict(), "run_id": run_dir.name, "step": ckpt.step}
        atomic.write_text(tmp / rundir.EXPORT_META, json.dumps(meta, indent=1) + "\n")
        atomic.share_like_open(tmp)
    finally:
        tf.utils.logging.enable_progress_bar()
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target
