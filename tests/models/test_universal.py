"""universal and albert: weights shared across depth; albert's factorised embedding."""

from __future__ import annotations

import math

import pytest
import torch
from archkit import n_params, tiny

from scalelab.accounting import count
from scalelab.architectures.shapes import albert_d_embed as d_embed
from scalelab.errors import ConfigError
from scalelab.models import build_model


@pytest.mark.parametrize("arch", ["universal", "albert"])
def test_parameters_do_not_grow_with_depth_but_compute_does(arch):
    shallow, deep = count(tiny(arch, n_layer=2)), count(tiny(arch, n_layer=6))
    assert shallow.params.total == deep.params.total
    assert n_params(build_model(tiny(arch, n_layer=6))) == deep.params.total
    body = deep.flops.matmul_per_token - shallow.flops.matmul_per_token
    assert body > 0
    assert deep.memory.kv_cache_bytes_per_token == 3 * shallow.memory.kv_cache_bytes_per_token


def test_universal_costs_what_the_transformer_of_its_shape_costs():
    u, t = count(tiny("universal", n_layer=4)), count(tiny("transformer", n_layer=4))
    assert u.flops.forward_per_token == t.flops.forward_per_token
    assert u.params.total < t.params.total


def test_universal_timestep_signal():
    cfg = tiny("universal", n_layer=3)
    model = build_model(cfg)
    signal = model.timestep / cfg.init_std
    assert signal.shape == (3, cfg.d_model)
    assert signal[0, 0].item() == pytest.approx(math.sin(1.0))
    assert signal[2, 1].item() == pytest.approx(math.cos(3.0))
    assert signal[1, 2].item() == pytest.approx(math.sin(2.0 / 10000 ** (2 / cfg.d_model)))


def test_albert_factorised_embedding():
    cfg = tiny("albert", d_model=64, d_embed=16)
    model = build_model(cfg)
    assert model.tok_emb.weight.shape == (cfg.vocab_size, 16)
    assert model.head.weight is model.tok_emb.weight
    c = count(cfg)
    assert c.params.embedding == (cfg.vocab_size + cfg.context) * 16
    assert c.params.non_embedding == c.params.total - c.params.embedding
    untied = count(tiny("albert", d_model=64, d_embed=16, tie_embeddings=False))
    assert untied.params.total - c.params.total == cfg.vocab_size * 16
    assert untied.params.non_embedding == c.params.non_embedding


def test_albert_default_embedding_width():
    assert d_embed(tiny("albert", d_model=32)) == 8
    assert d_embed(tiny("albert", d_model=1024, n_head=16)) == 128
    with pytest.raises(ConfigError, match=r"model\.d_embed"):
        tiny("albert", d_embed=64)


def test_albert_shares_every_block_parameter():
    model = build_model(tiny("albert", n_layer=3))
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.startswith("blocks.") for n in names)
    assert sum(n.startswith("block.") for n in names) == len(list(model.block.parameters()))
    assert torch.is_tensor(model.block.attn.qkv.weight)
