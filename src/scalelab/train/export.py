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

from torch import nn

from scalelab import atomic, rundir
from scalelab.config import ModelConfig
from scalelab.errors import ConfigError, StoreError, TrainingError
from scalelab.outputs import check_output
from scalelab.train.hf_map import (
    GPT2_ACT,
    LLAMA_ACT,
    from_hf_state_dict,
    hf_layout,
    hf_state_dict,
)
from scalelab.train.runs import export_meta, file_checksums, open_run, read_config

FORMATS = ("hf",)


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
            activation_function=GPT2_ACT[cfg.mlp],
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
        hidden_act=LLAMA_ACT[cfg.mlp],
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
    renamed into place; an existing ``out`` is replaced only if it is this run's own export
    (anything else there is refused before any work). Returns ``out``.

    Where the newest checkpoint is damaged, the newest intact one is exported and
    ``note`` (default: a warning) is told in one line which step and why; with ``strict``
    that is an error instead.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format {format!r} is not one of {', '.join(FORMATS)}")
    run_dir = Path(run)
    target = Path(out) if out is not None else run_dir / "hf"
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {str(target)!r} is a file: give a folder for the export")
    # a new folder, or this run's own earlier export (replaced); never a run or anything else
    check_output(
        target,
        "--out",
        folder=True,
        own=lambda a: a.kind == "export" and a.meta.get("run_id") == run_dir.name,
    )
    hf_layout(read_config(run_dir).model)  # fail on the layout before reading any weights
    opened = open_run(run_dir, note=False)  # a skipped checkpoint is worded below
    cfg = opened.cfg
    if opened.is_export:
        raise ConfigError(f"{run_dir} is already a Hugging Face export: export its run instead")
    if opened.skipped:
        what = f"{run_dir}: the newest checkpoint is damaged: {'; '.join(opened.skipped)}"
        if strict:
            raise StoreError(
                f"{what}; not exported (strict); the newest intact one is step {opened.step}"
            )
        (note or (lambda m: warnings.warn(m, stacklevel=3)))(
            f"{what}; exported step {opened.step}, the newest intact one"
        )
    model = opened.load_model(fork_rng=False)
    eos_id = opened.summary.get("eos_id")
    hf = to_hf(model, cfg.model, eos_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tf = _transformers()
    tf.utils.logging.disable_progress_bar()  # no shard-writing bar for a one-file checkpoint
    try:
        hf.save_pretrained(tmp)
        # what scalelab needs to read the export back as its run (tasks, fine-tuning, d90)
        # and the checksums of its files, so that damage is found before it is scored
        meta = {
            "config": cfg.to_dict(),
            "run_id": run_dir.name,
            "step": opened.step,
            "files": file_checksums(tmp),
        }
        atomic.write_text(tmp / rundir.EXPORT_META, json.dumps(meta, indent=1) + "\n")
        atomic.share_like_open(tmp)
    finally:
        tf.utils.logging.enable_progress_bar()
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def load_export(path: str | Path, *, verify: bool = True) -> tuple[Any, nn.Module, dict[str, Any]]:
    """(the run's RunConfig, our model with the export's weights, the export's metadata):
    an export read back through :func:`scalelab.runs.open_run` (checksums verified unless
    ``verify=False``), so tasks, fine-tuning and d90 run on it as on its run."""
    opened = open_run(path, verify=verify)
    assert opened.export is not None, f"{path} is a run, not an export"
    return opened.cfg, opened.load_model(fork_rng=False), opened.export


__all__ = [
    "FORMATS",
    "export",
    "export_meta",
    "from_hf_state_dict",
    "hf_config",
    "hf_layout",
    "hf_state_dict",
    "load_export",
    "to_hf",
]
