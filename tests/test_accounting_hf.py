"""Hugging Face configs: our count against the transformers classes themselves (the ground truth).

Every preset is instantiated on the meta device (no memory, no download) and compared to the
parameter; tiny configs of every supported family and variant are also run on the CPU under
FlopCounterMode and compared to the FLOP count.
"""

import json
import os

import pytest

from scalelab.accounting import SUPPORTED_MODEL_TYPES, count
from scalelab.errors import ConfigError
from scalelab.presets import CONFIG_DIR, list_presets, preset_config

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def hf_model(cfg: dict, device: str = "meta"):
    """The transformers model of a config dict; Orion (no class) as Llama, see orion-14b.json."""
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    model_type = cfg["model_type"]
    if model_type == "orion":
        cfg["model_type"] = "llama"
    hf_cfg = transformers.AutoConfig.for_model(
        **cfg, attn_implementation="eager", experts_implementation="eager"
    )
    if model_type == "bert":
        pretraining = "BertForPreTraining" in cfg.get("architectures", [])
        auto = (
            transformers.AutoModelForPreTraining
            if pretraining
            else transformers.AutoModelForMaskedLM
        )
    else:
        auto = transformers.AutoModelForCausalLM
    with torch.device(device):
        return auto.from_config(hf_cfg), hf_cfg


def numel(model, cfg: dict) -> int:
    n = sum(p.numel() for p in model.parameters())
    if cfg["model_type"] == "orion":
        # Orion's norms are LayerNorms: the Llama class lacks their biases, 2 per layer + final
        n += (2 * cfg["num_hidden_layers"] + 1) * cfg["hidden_size"]
    return n


@pytest.mark.parametrize("name", [p.name for p in list_presets()])
def test_every_preset_equals_transformers_on_the_meta_device(name):
    cfg = preset_config(name)
    model, _ = hf_model(cfg)
    c = count(name)
    assert c.params.total == numel(model, cfg)
    names = dict(model.named_parameters())
    experts = sum(p.numel() for n, p in names.items() if ".experts." in n)
    router = sum(p.numel() for n, p in names.items() if n.endswith("mlp.gate.weight"))
    assert c.params.breakdown["experts"] == experts
    assert c.params.breakdown["router"] == router
    if cfg["model_type"] != "orion":
        assert c.params.hf_non_embedding == model.num_parameters(exclude_embeddings=True)


def test_known_totals_of_the_moe_presets():
    # published headline sizes: Mixtral 8x7B 46.7B total, 12.9B active (rounded); the
    # Qwen3-30B-A3B model card: 30.5B total, 29.9B non-embedding, 3.3B activated (3.35B cut)
    mixtral, qwen = count("mixtral-8x7b").params, count("qwen3-30b-a3b").params
    assert round(mixtral.total / 1e9, 1) == 46.7 and round(mixtral.active / 1e9, 1) == 12.9
    assert round(qwen.total / 1e9, 1) == 30.5 and round(qwen.non_embedding / 1e9, 1) == 29.9
    assert 3.3e9 <= qwen.active < 3.4e9


_TINY = dict(
    hidden_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=96,
    vocab_size=100,
    max_position_embeddings=32,
)
_MOE = dict(moe_intermediate_size=24, num_experts=6, num_experts_per_tok=2)
FAMILIES = [
    ("gpt2", dict(n_embd=64, n_layer=3, n_head=4, n_positions=32, vocab_size=100)),
    ("gpt2", dict(n_embd=64, n_layer=2, n_head=2, n_positions=16, vocab_size=100, n_inner=80,
                  tie_word_embeddings=False)),
    ("bert", {**_TINY, "num_key_value_heads": None, "type_vocab_size": 3}),
    ("bert", {**_TINY, "num_key_value_heads": None, "architectures": ["BertForPreTraining"]}),
    ("gpt_neox", {**_TINY, "num_key_value_heads": None}),
    ("gpt_neox", {**_TINY, "num_key_value_heads": None, "attention_bias": False,
                  "tie_word_embeddings": True}),
    ("llama", _TINY),
    ("llama", {**_TINY, "attention_bias": True, "mlp_bias": True, "head_dim": 32,
               "tie_word_embeddings": True}),
    ("mistral", {**_TINY, "head_dim": 8}),
    ("mixtral", _TINY),
    ("mixtral", {**_TINY, "num_local_experts": 4, "num_experts_per_tok": 1}),
    ("qwen2", _TINY),
    ("qwen2", {**_TINY, "tie_word_embeddings": True, "num_key_value_heads": 1}),
    ("qwen3", _TINY),  # head_dim defaults to 128 here, not hidden / heads
    ("qwen3", {**_TINY, "head_dim": 16, "attention_bias": True}),
    ("qwen2_moe", {**_TINY, **_MOE, "shared_expert_intermediate_size": 40}),
    ("qwen2_moe", {**_TINY, **_MOE, "shared_expert_intermediate_size": 40, "qkv_bias": False,
                   "decoder_sparse_step": 2}),
    ("qwen3_moe", {**_TINY, **_MOE, "mlp_only_layers": [1]}),
    ("qwen3_moe", {**_TINY, **_MOE, "decoder_sparse_step": 2, "attention_bias": True}),
    ("orion", _TINY),
]  # fmt: skip


def family_id(case):
    model_type, kw = case
    flags = [k for k in ("attention_bias", "tie_word_embeddings", "head_dim", "mlp_only_layers",
                         "decoder_sparse_step", "architectures", "n_inner") if k in kw]  # fmt: skip
    return "-".join([model_type, *flags])


@pytest.mark.parametrize("case", FAMILIES, ids=family_id)
def test_tiny_configs_of_every_family_match_params_and_flops(case):
    model_type, kw = case
    cfg = {"model_type": model_type, **{k: v for k, v in kw.items() if v is not None}}
    if "architectures" not in cfg and model_type == "orion":
        cfg["architectures"] = ["OrionForCausalLM"]
    torch.manual_seed(0)
    model, hf_cfg = hf_model(cfg, device="cpu")
    seq_len = 12
    c = count(cfg, seq_len=seq_len)
    assert c.params.total == numel(model, cfg)
    if model_type == "orion" or "BertForPreTraining" in cfg.get("architectures", []):
        return  # Orion's class is emulated; BERT's pooler runs once per sequence, not per token
    idx = torch.randint(0, cfg["vocab_size"], (2, seq_len))
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(idx)
    assert c.flops.forward_per_token * idx.numel() == counter.get_total_flops()
    # KV cache: 2 x layers x kv heads x head size
    head_dim = getattr(hf_cfg, "head_dim", None) or hf_cfg.hidden_size // hf_cfg.num_attention_heads
    kv_heads = getattr(hf_cfg, "num_key_value_heads", None) or hf_cfg.num_attention_heads
    assert (
        c.memory.kv_cache_bytes_per_token == 2 * hf_cfg.num_hidden_layers * kv_heads * head_dim * 2
    )


def test_every_supported_family_is_tested():
    assert {t for t, _ in FAMILIES} == set(SUPPORTED_MODEL_TYPES)


@pytest.mark.parametrize("name", ["llama-2-7b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"])
def test_meta_params_json_counts_like_the_hf_config(name):
    native = count(CONFIG_DIR / f"{name}.params.json", seq_len=2048)
    hf = count(name, seq_len=2048)
    assert native.params == hf.params
    assert native.flops == hf.flops


def test_params_json_without_context_asks_for_seq_len():
    with pytest.raises(ConfigError, match="pass seq_len"):
        count(CONFIG_DIR / "llama-3.1-8b.params.json")


def write(tmp_path, cfg: dict, name: str = "config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_unknown_model_type_names_the_supported_ones(tmp_path):
    path = write(tmp_path, {"model_type": "t5", "d_model": 512})
    with pytest.raises(ConfigError, match="model_type 't5' is not supported") as e:
        count(path)
    for t in SUPPORTED_MODEL_TYPES:
        assert t in str(e.value)


def test_missing_field_is_named(tmp_path):
    cfg = preset_config("llama-3.1-8b")
    del cfg["num_hidden_layers"]
    with pytest.raises(ConfigError, match="missing field 'num_hidden_layers'"):
        count(write(tmp_path, cfg))
    with pytest.raises(ConfigError, match="missing field 'model_type'"):
        count(write(tmp_path, {"hidden_size": 64}))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hidden_size": "4096"}, "'hidden_size' must be a positive integer"),
        ({"num_key_value_heads": 5}, "must be a multiple of num_key_value_heads"),
        ({"tie_word_embeddings": "no"}, "'tie_word_embeddings' must be true or false"),
        ({"num_attention_heads": 0}, "must be a positive integer"),
    ],
)
def test_bad_values_are_named(tmp_path, change, match):
    cfg = {**preset_config("llama-3.1-8b"), **change}
    with pytest.raises(ConfigError, match=match):
        count(write(tmp_path, cfg))


def test_not_a_json_object(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        count(bad)
    bad.write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        count(bad)


def test_counting_a_config_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, scalelab.accounting as a; a.count('llama-3.1-405b'); "
        "a.count(a.size_for(1e6)); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "False"
