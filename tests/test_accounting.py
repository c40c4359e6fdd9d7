"""count(): parameters, FLOPs and memory, against scalelab's own models and the reference tables."""

import csv
import itertools
import json
from pathlib import Path

import pytest

from scalelab.accounting import COMPONENTS, count
from scalelab.accounting.blocks import Piece, attention, mlp, moe
from scalelab.config import ModelConfig, RunConfig
from scalelab.errors import ConfigError

DATA = Path(__file__).parent / "data"


def rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name) as f:
        return list(csv.DictReader(f))


def tiny(**kw) -> ModelConfig:
    base = dict(n_layer=2, d_model=32, n_head=4, vocab_size=64, context=16)
    return ModelConfig(**{**base, **kw})


# every combination of the transformer's variant switches
VARIANTS = [
    dict(norm=norm, pos=pos, mlp=act, bias=bias, tie_embeddings=tie, n_kv_head=kv)
    for norm, pos, act, bias, tie, kv in itertools.product(
        ("layernorm", "rmsnorm"),
        ("learned", "rotary", "none"),
        ("gelu", "swiglu"),
        (False, True),
        (False, True),
        (4, 2, 1),
    )
] + [dict(mlp="geglu", d_ff=40), dict(mlp="reglu"), dict(mlp="relu", d_ff=24), dict(causal=False)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_total_equals_the_built_models_parameters(variant):
    from scalelab.models import build_model

    cfg = tiny(**variant)
    model = build_model(cfg)
    c = count(cfg)
    assert c.params.total == sum(p.numel() for p in model.parameters())
    assert sum(c.params.breakdown.values()) == c.params.total
    embedding = model.tok_emb.weight.numel() + (
        model.pos_emb.weight.numel() if model.pos_emb is not None else 0
    )
    assert c.params.embedding == embedding
    head = 0 if cfg.tie_embeddings else model.head.weight.numel()
    assert c.params.non_embedding == c.params.total - embedding - head
    assert c.params.active == c.params.total  # dense


@pytest.mark.parametrize(
    "variant",
    [dict(), dict(n_kv_head=2, pos="rotary", mlp="swiglu", tie_embeddings=False, bias=True)],
)
@pytest.mark.parametrize("seq_len", [16, 7])
def test_forward_flops_equal_flop_counter_on_the_built_model(variant, seq_len):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from scalelab.models import build_model

    cfg = tiny(**variant)
    model = build_model(cfg)
    idx = torch.zeros((3, seq_len), dtype=torch.long)
    # the math backend computes attention as explicit matmuls, which FlopCounterMode sees
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
        model(idx)
    c = count(cfg, seq_len=seq_len)
    assert c.flops.forward_per_token * idx.numel() == counter.get_total_flops()


@pytest.mark.parametrize("row", rows("param_counts.csv"), ids=lambda r: r["model"])
def test_param_counts_match_the_reference_to_the_parameter(row):
    p = count(row["model"]).params
    assert p.total == int(row["total_params"])
    assert p.embedding == int(row["tok_embed"]) + int(row["pos_embed"])
    assert p.untied_head == int(row["lm_head_untied"])
    assert p.non_embedding == int(row["non_embedding_params"])
    assert p.hf_non_embedding == int(row["hf_num_parameters_exclude_embeddings"])
    assert p.active == int(row["active_params_per_token"])
    assert p.breakdown["experts"] == int(row["expert_params"])
    assert p.breakdown["router"] == int(row["router_params"])
    assert (p.untied_head == 0) == (row["tied_embeddings"] == "True")


@pytest.mark.parametrize(
    "row", rows("flops_reference.csv"), ids=lambda r: f"{r['model']}-{r['seq_len']}"
)
def test_flops_match_the_flop_counter_measurements(row):
    f = count(row["model"], seq_len=int(row["seq_len"])).flops
    assert f.forward_per_token == int(row["measured_fwd_flops_per_token"])
    assert f.train_per_token == int(row["measured_fwd_bwd_flops_per_token"])
    assert f.kaplan == int(row["kaplan_Cfwd_2Nnonemb_plus_2LSdattn"])
    assert f.palm == int(row["palm_6N_plus_12LHQT_N_total_or_active"])
    assert f.six_n == int(row["six_N_total_or_active"])


@pytest.mark.parametrize("row", rows("memory_reference.csv"), ids=lambda r: r["model"])
def test_memory_matches_the_closed_forms(row):
    c = count(row["model"], seq_len=2048)
    m = c.memory
    assert m.weights_bytes == int(row["weights_bytes_bf16"])
    assert count(row["model"], seq_len=2048, dtype="fp32").memory.weights_bytes == int(
        row["weights_bytes_fp32"]
    )
    assert m.train_bytes == int(row["train_bytes_16B_per_param"])
    assert count(row["model"], grad_dtype="fp32").memory.train_bytes == int(
        row["train_bytes_18B_per_param"]
    )
    assert m.kv_cache_bytes_per_token == int(row["kv_cache_bytes_per_token_bf16"])
    assert m.kv_cache_bytes_per_token * 8192 / 2**30 == pytest.approx(
        float(row["kv_cache_GiB_8192tok_bs1_bf16"]), abs=1e-4
    )
    assert m.activation_bytes_per_token_none * 2048 == int(
        row["korthikanti_act_bytes_s2048_b1_norecompute"]
    )
    assert m.activation_bytes_per_token_full * 2048 == int(
        row["korthikanti_full_recompute_bytes_s2048_b1"]
    )


def test_mixture_of_experts_total_and_active_by_hand():
    # Mixtral 8x7B: 8 SwiGLU experts of 3 x 4096 x 14336, top-2, router 4096 x 8, 32 layers
    c = count("mixtral-8x7b", seq_len=4096)
    d, f, L, V = 4096, 14336, 32, 32000
    attn = d * d * 2 + d * 1024 * 2
    expert = 3 * d * f
    per_layer_stored = attn + 8 * expert + d * 8 + 2 * d
    per_layer_active = attn + 2 * expert + d * 8 + 2 * d
    assert c.params.total == L * per_layer_stored + 2 * V * d + d == 46_702_792_704
    assert c.params.active == L * per_layer_active + 2 * V * d + d == 12_879_925_248
    assert c.params.breakdown["experts"] == L * 8 * expert
    assert c.params.breakdown["router"] == L * d * 8
    matmul = 2 * (L * (attn + 2 * expert + d * 8) + V * d)
    assert c.flops.matmul_per_token == matmul
    assert c.flops.forward_per_token == matmul + 4 * 4096 * d * L
    assert c.flops.six_n == 6 * c.params.active
    assert c.flops.kaplan == 2 * c.params.active_non_embedding + 2 * L * 4096 * d


def test_causal_attention_counts_the_unmasked_half():
    full = count("gpt2", seq_len=1024).flops
    causal = count("gpt2", seq_len=1024, causal=True).flops
    assert full.attention_per_token == 4 * 1024 * 768 * 12
    assert causal.attention_per_token == 2 * (1024 + 1) * 768 * 12
    assert causal.matmul_per_token == full.matmul_per_token
    assert causal.train_per_token == 3 * causal.forward_per_token


def test_blocks_add_repeat_and_reuse():
    a = attention(64, 4, 2)
    assert a.params["attention"] == 64 * 64 * 2 + 64 * 32 * 2 and a.kv == 2 * 32
    layer = a + mlp(64, 256)
    assert (layer * 3).total == 3 * layer.total
    shared = layer.reused(3)  # one set of weights applied three times
    assert shared.total == layer.total and shared.macs == 3 * layer.macs
    m = moe(64, n_experts=4, top_k=1, d_ff=128)
    assert m.params["experts"] == 4 * 3 * 64 * 128 and m.active == 3 * 64 * 128 + 64 * 4
    with pytest.raises(ValueError):
        moe(64, n_experts=2, top_k=3, d_ff=8)
    assert (Piece() + Piece()).total == 0


def test_to_dict_is_the_contract():
    d = count("llama-3.1-8b", device_memory="80GiB", tokens=1e12, devices=8).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert {"total", "non_embedding", "active", "embedding", "breakdown"} <= set(d["params"])
    assert {"forward_per_token", "train_per_token", "six_n", "kaplan"} <= set(d["flops"])
    assert {"weights_bytes", "train_bytes", "kv_cache_bytes_per_token"} <= set(d["memory"])
    assert list(d["params"]["breakdown"]) == list(COMPONENTS)
    assert d["fits"]["device_memory"] == 80 * 2**30
    assert d["training"]["devices"] == 8


def test_model_inputs_run_config_toml_and_config_dict(tmp_path):
    cfg = tiny(mlp="swiglu")
    expected = count(cfg).params.total
    assert count(RunConfig(model=cfg)).params.total == expected
    run_toml = tmp_path / "run.toml"
    run_toml.write_text(
        "[model]\nn_layer = 2\nd_model = 32\nn_head = 4\nvocab_size = 64\ncontext = 16\n"
        'mlp = "swiglu"\n[train]\nlr = 1e-3\n'
    )
    bare = tmp_path / "model.toml"
    bare.write_text(
        'n_layer = 2\nd_model = 32\nn_head = 4\nvocab_size = 64\ncontext = 16\nmlp = "swiglu"\n'
    )
    assert count(run_toml).params.total == count(bare).params.total == expected
    hf = json.loads(
        (Path(__file__).parents[1] / "src/scalelab/reference/configs/gpt2.json").read_text()
    )
    assert count(hf).params.total == 124_439_808
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(hf))
    c = count(folder)
    assert c.model == "my-model" and c.params.total == 124_439_808


def test_params_n_definitions():
    p = count("pythia-70m").params
    assert p.n() == p.non_embedding == 18_915_328
    assert p.n("total") == 70_426_624
    assert p.n("hf_non_embedding") == 44_670_976
    with pytest.raises(ConfigError, match="not one of"):
        p.n("kaplan")


def test_memory_fits_and_training_time():
    c = count("llama-3.1-8b", seq_len=8192, batch=4, device_memory="80GiB", recompute="full")
    m, fit = c.memory, c.fits
    assert m.kv_cache_bytes == m.kv_cache_bytes_per_token * 4 * 8192
    assert m.inference_bytes == m.weights_bytes + m.kv_cache_bytes
    assert fit.max_inference_tokens == (80 * 2**30 - m.weights_bytes) // m.kv_cache_bytes_per_token
    assert fit.max_inference_batch == fit.max_inference_tokens // 8192
    assert fit.inference_fits and not fit.train_fits  # 8B x 16 B = 128 GB of state alone
    # ZeRO-3: the 16 B/param state shared across devices beside each device's activations
    spare = 80 * 2**30 - m.activation_bytes
    assert fit.train_devices_zero3 == -(-m.train_bytes // spare) == 2
    # without recomputation 4 x 8k tokens of activations (1.4 TiB) fit on no device
    assert (
        count("llama-3.1-8b", seq_len=8192, batch=4, device_memory="80GiB").fits.train_devices_zero3
        is None
    )
    assert m.train_bytes_per_param == {
        "weights": 2,
        "gradients": 2,
        "master": 4,
        "adam_m": 4,
        "adam_v": 4,
    }
    # 405B on 16,384 H100s at 40% MFU, 15.6T tokens at 8k context
    t = count("llama-3.1-405b", seq_len=8192, tokens="15.6T", devices=16384).training
    assert t.flops == count("llama-3.1-405b", seq_len=8192).flops.train_per_token * 15.6e12
    assert t.seconds == pytest.approx(t.flops / (16384 * 989e12 * 0.4))
    assert 30 < t.days < 100
    # a model too big for the device leaves no room for a KV cache
    small = count("llama-3.1-405b", device_memory="80GB").fits
    assert small.max_inference_tokens == 0 and not small.inference_fits


def test_recompute_orders_the_activation_memory():
    m = count("gpt2", recompute="selective").memory
    assert m.activation_bytes_per_token == m.activation_bytes_per_token_selective
    assert m.activation_bytes_per_token_full < m.activation_bytes_per_token_selective
    assert m.activation_bytes_per_token_selective < m.activation_bytes_per_token_none
    assert m.train_total_bytes == m.train_bytes + m.activation_bytes


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dtype="fp64"), "dtype 'fp64' is not one of"),
        (dict(seq_len=0), "seq_len must be a positive integer"),
        (dict(batch=1.5), "batch must be a positive integer"),
        (dict(recompute="some"), "recompute 'some' is not one of"),
        (dict(device_memory="80 gigs"), "is not a size"),
        (dict(device_memory=-5), "positive size"),
        (dict(tokens=1e9, mfu=1.5), "mfu is a fraction"),
        (dict(tokens="lots"), "tokens 'lots' is not a number"),
        (dict(grad_dtype="int8"), "grad_dtype"),
    ],
)
def test_bad_options_name_the_field(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        count("gpt2", **kwargs)


def test_unknown_model_suggests_a_preset(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean 'llama-3\.1-8b'"):
        count("llama-3.1-8")
    with pytest.raises(ConfigError, match="does not exist"):
        count(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match=r"unknown key model\.n_layers"):
        bad = tmp_path / "bad.toml"
        bad.write_text("[model]\nn_layers = 2\n")
        count(bad)


def test_sizes_parse():
    from scalelab.accounting import parse_size

    assert parse_size("80GiB") == 80 * 2**30
    assert parse_size("80GB") == 80 * 10**9
    assert parse_size("8e10") == 8 * 10**10
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_size(1024) == 1024


def test_int4_weights_pack_two_per_byte():
    c = count("gpt2", dtype="int4")
    assert c.memory.weights_bytes == 124_439_808 // 2
    assert count("gpt2", dtype="bfloat16").memory.dtype == "bf16"


def test_an_architecture_registers_its_own_accounting():
    """The hook: a toy ALBERT-style stack (one block's weights applied n_layer times)."""
    import torch
    from torch import nn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from scalelab.accounting.blocks import Tally, attention, embeddings, lm_head, norm
    from scalelab.architectures import ARCHS, Arch, register
    from scalelab.models import build_model
    from scalelab.models.transformer import Block, make_norm

    def tally_shared(cfg: ModelConfig) -> Tally:
        block = (
            attention(cfg.d_model, cfg.n_head) + mlp(cfg.d_model, cfg.d_ff) + norm(cfg.d_model) * 2
        )
        body = (
            embeddings(cfg.vocab_size, cfg.d_model, positions=cfg.context)
            + block.reused(cfg.n_layer)
            + norm(cfg.d_model)
            + lm_head(cfg.d_model, cfg.vocab_size, tied=True)
        )
        return Tally(body, (cfg.vocab_size + cfg.context) * cfg.d_model, 0, cfg.n_layer,
                     cfg.d_model, cfg.n_head, cfg.context)  # fmt: skip

    class Shared(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.cfg = cfg
            self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
            self.pos_emb = nn.Embedding(cfg.context, cfg.d_model)
            self.block, self.norm_f = Block(cfg), make_norm(cfg)
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
            self.head.weight = self.tok_emb.weight

        def forward(self, idx):
            x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
            for _ in range(self.cfg.n_layer):
                x = self.block(x, None)
            return self.head(self.norm_f(x))

    register(
        Arch("test-shared", Shared, "one block reused at every depth", accounting=tally_shared)
    )
    try:
        cfg = tiny(arch="test-shared", n_layer=3)
        model = build_model(cfg)
        assert isinstance(model, Shared)
        c = count(cfg)
        assert c.params.total == sum(p.numel() for p in model.parameters())
        assert c.params.total < count(tiny(n_layer=3)).params.total  # weights shared
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(torch.zeros((2, 16), dtype=torch.long))
        assert c.flops.forward_per_token * 32 == counter.get_total_flops()
        assert c.flops.forward_per_token == count(tiny(n_layer=3)).flops.forward_per_token
    finally:
        del ARCHS["test-shared"]


def test_an_architecture_without_accounting_is_named():
    from torch import nn

    from scalelab.architectures import ARCHS, Arch, register

    register(Arch("test-uncounted", nn.Module, "no accounting function"))
    try:
        with pytest.raises(ConfigError, match="has no accounting function"):
            count(tiny(arch="test-uncounted"))
    finally:
        del ARCHS["test-uncounted"]


def test_causal_option_leaves_an_encoder_bidirectional():
    full = count("bert-base-uncased", seq_len=512).flops
    asked = count("bert-base-uncased", seq_len=512, causal=True).flops
    assert asked == full and not asked.causal
