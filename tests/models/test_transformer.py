import math

import pytest
import torch

from scalelab.config import ModelConfig
from scalelab.errors import ConfigError
from scalelab.models import build_model

VARIANTS = {
    "gpt2": dict(),
    "gpt2-bias": dict(bias=True),
    "llama": dict(norm="rmsnorm", pos="rotary", mlp="swiglu", tie_embeddings=False),
    "gqa": dict(n_head=4, n_kv_head=2, pos="rotary"),
}


def tiny(**kw) -> ModelConfig:
    base = dict(n_layer=2, d_model=32, n_head=4, vocab_size=64, context=16)
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize("variant", VARIANTS)
def test_causal_and_initial_loss(variant):
    torch.manual_seed(0)
    cfg = tiny(**VARIANTS[variant])
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.context))
    logits = model(idx)
    assert logits.shape == (3, cfg.context, cfg.vocab_size)
    changed = idx.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % cfg.vocab_size
    assert torch.allclose(model(changed)[:, :10], logits[:, :10], atol=1e-6)
    targets = torch.randint(0, cfg.vocab_size, idx.shape)  # independent of the inputs
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.1


def test_bidirectional_variant_sees_the_future():
    torch.manual_seed(0)
    model = build_model(tiny(causal=False))
    idx = torch.randint(0, 64, (1, 16))
    changed = idx.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 64
    assert not torch.allclose(model(idx)[:, 0], model(changed)[:, 0])


def test_rotary_needs_even_head():
    with pytest.raises(ConfigError, match="even head size"):
        ModelConfig(d_model=36, n_head=4, pos="rotary")
