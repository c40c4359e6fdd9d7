import os
import stat
from pathlib import Path

import pytest
import torch

from scalelab.config import ModelConfig
from scalelab.errors import ConfigError, StoreError
from scalelab.models import build_model
from scalelab.train import train
from scalelab.train.checkpoint import latest_checkpoint
from scalelab.train.export import export, hf_layout, to_hf

transformers = pytest.importorskip("transformers")

LAYOUTS = {
    "gpt2": dict(),
    "gpt2-bias-untied-relu": dict(bias=True, tie_embeddings=False, mlp="relu"),
    "llama": dict(norm="rmsnorm", pos="rotary", mlp="swiglu", tie_embeddings=False),
    "llama-gqa-bias-geglu": dict(norm="rmsnorm", pos="rotary", mlp="geglu", n_kv_head=2, bias=True),
}


def _toml(v):
    return str(v).lower() if isinstance(v, bool) else f'"{v}"' if isinstance(v, str) else str(v)


@pytest.mark.parametrize("name", LAYOUTS)
def test_hf_model_gives_our_logits(name):
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=2, d_model=32, n_head=4, vocab_size=64, context=16, **LAYOUTS[name])
    model = build_model(cfg).eval()
    with torch.no_grad():  # move every weight (biases and norm gains too) off its init value
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hf = to_hf(model, cfg)
    idx = torch.randint(0, 64, (3, 16))
    with torch.no_grad():
        assert (model(idx) - hf(idx).logits).abs().max().item() < 1e-4


@pytest.mark.parametrize("layout", ["gpt2", "llama"])
def test_export_a_trained_run_and_load_it_offline(make_cfg, tmp_path, layout, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    extra = [f"model.{k}={_toml(v)}" for k, v in LAYOUTS[layout].items()]
    cfg = make_cfg(*extra, "model.n_head=4", "train.tokens=2560")
    s = train(cfg, tmp_path, progress=False)
    out = export(s.path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True).eval()
    assert type(hf).__name__ == ("GPT2LMHeadModel" if layout == "gpt2" else "LlamaForCausalLM")
    ours = build_model(cfg.model).eval()
    latest_checkpoint(tmp_path / s.run_id / "checkpoint").restore(ours)
    idx = torch.randint(0, cfg.model.vocab_size, (2, cfg.model.context))
    with torch.no_grad():
        assert (ours(idx) - hf(idx).logits).abs().max().item() < 1e-4


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(norm="rmsnorm"), r"model\.norm = 'rmsnorm' with model\.pos = 'learned'"),
        (dict(mlp="swiglu"), r"model\.mlp = 'swiglu'.*GPT-2 needs 'gelu'"),
        (dict(n_kv_head=2), r"model\.n_kv_head = 2"),
        (dict(norm="rmsnorm", pos="rotary"), r"Llama needs a gated MLP.*model\.mlp = 'swiglu'"),
        (dict(pos="none"), r"model\.pos = 'none'"),
        (dict(causal=False), r"model\.causal = true"),
    ],
)
def test_layouts_without_a_hf_class_name_the_fields(fields, message):
    with pytest.raises(ConfigError, match=message):
        hf_layout(ModelConfig(n_head=4, **fields))


def test_export_needs_a_run_directory(tmp_path):
    with pytest.raises(StoreError, match="not a run directory"):
        export(tmp_path)
    with pytest.raises(ConfigError, match="format"):
        export(tmp_path, format="onnx")


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_checkpoint_and_export_files_respect_the_umask(make_cfg, tmp_path, mask):
    """safetensors writes its files 0o600; a run's checkpoint and its export get the mode a
    plain open() would (the directories are built whole, then renamed into place)."""
    old = os.umask(mask)
    try:
        s = train(make_cfg("train.tokens=512"), tmp_path / "runs", progress=False)
        out = export(s.path, tmp_path / "hf")
    finally:
        os.umask(old)
    files = [*Path(s.path, "checkpoint").rglob("*.safetensors"), Path(out) / "model.safetensors"]
    assert len(files) >= 2
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, f
