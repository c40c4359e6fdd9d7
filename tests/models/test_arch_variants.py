"""Every new architecture, across the config switches it accepts: the parameter count and the
forward FLOPs equal the accounting hook's, every position is causal, a prefix gives the same
logits as the whole sequence, and size_for can shape it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from archkit import NEW_ARCHS, max_leak, measured_flops, n_params, tiny

from scalelab.accounting import count, size_for
from scalelab.architectures import ARCHS
from scalelab.errors import ConfigError
from scalelab.models import build_model

VARIANTS = {
    "plain": {},
    "bias": dict(bias=True),
    "rotary": dict(pos="rotary"),
    "untied-rmsnorm": dict(tie_embeddings=False, norm="rmsnorm"),
    "gqa": dict(n_kv_head=2),
    "no-positions": dict(pos="none"),
    "deeper-wider": dict(n_layer=5, d_model=48),
    "swiglu": dict(mlp="swiglu"),
}
# switches an architecture rejects on purpose, with the field its message must name
REJECTED = {
    ("lconv", "rotary"): "model.pos",
    ("dconv", "rotary"): "model.pos",
    ("mixer", "rotary"): "model.pos",
    ("evolved", "swiglu"): "model.mlp",
}


def config(arch: str, variant: str, **extra):
    fields = {**VARIANTS[variant], **extra}
    if arch == "switch":  # no token over capacity: every token pays exactly one expert
        fields.setdefault("capacity_factor", float(fields.get("n_experts", 8)))
    return tiny(arch, **fields)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_counted_exactly_and_causal(arch, variant):
    if (arch, variant) in REJECTED:
        with pytest.raises(ConfigError, match=REJECTED[arch, variant]):
            config(arch, variant)
        return
    cfg = config(arch, variant)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context))
    c = count(cfg)
    assert n_params(model) == c.params.total
    assert measured_flops(model, idx) == c.flops.forward_per_token * idx.numel()
    # switch: experts see different numbers of rows when later tokens change, and a matmul's
    # rounding depends on its shape; every other architecture is bit-exact
    assert max_leak(model, idx) <= (1e-5 if arch == "switch" else 0.0)


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_a_prefix_gives_the_same_logits(arch):
    """Generation reads logits off prefixes: a prefix must not be a different computation
    (pooling groups, chunks, expert capacity and token-mixing matrices all depend on T)."""
    cfg = tiny(arch, context=24)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (2, 24))
    with torch.no_grad():
        full = model(idx)
        for t in (1, 5, 16, 17, 23):
            torch.testing.assert_close(model(idx[:, :t]), full[:, :t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_initial_loss_and_determinism(arch):
    cfg = tiny(arch)
    torch.manual_seed(3)
    a = build_model(cfg)
    torch.manual_seed(3)
    b = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (4, cfg.context))
    torch.testing.assert_close(a(idx), b(idx), atol=0, rtol=0)
    targets = torch.randint(0, cfg.vocab_size, idx.shape)  # independent of the inputs
    loss = F.cross_entropy(a(idx).flatten(0, 1), targets.flatten())
    assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.1


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_bf16_autocast_runs(arch):
    cfg = tiny(arch)
    torch.manual_seed(0)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, cfg.context))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(idx)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), idx.flatten())
        if getattr(model, "aux_loss", None) is not None:
            loss = loss + model.aux_loss
    loss.backward()
    assert torch.isfinite(logits).all() and torch.isfinite(loss)


@pytest.mark.parametrize("arch", [a for a in NEW_ARCHS if ARCHS[a].bidirectional])
def test_bidirectional_variant_sees_the_future(arch):
    cfg = tiny(arch, causal=False)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (1, cfg.context))
    changed = idx.clone()
    changed[0, -1] = (changed[0, -1] + 1) % cfg.vocab_size
    assert not torch.allclose(model(idx)[:, 0], model(changed)[:, 0])


@pytest.mark.parametrize("arch", [a for a in NEW_ARCHS if not ARCHS[a].bidirectional])
def test_causal_only_architectures_refuse_causal_false(arch):
    with pytest.raises(ConfigError, match="causal only"):
        tiny(arch, causal=False)


@pytest.mark.parametrize("arch", NEW_ARCHS)
def test_size_for_shapes_every_architecture(arch):
    fixed = {"mlp": "swiglu"} if arch == "glu" else {}
    for target in (1e5, 1e6):
        cfg = size_for(target, arch=arch, **fixed)
        assert cfg.arch == arch
        got = count(cfg).params.non_embedding
        assert abs(math.log(got / target)) < math.log(1.15), (target, got)
        build_model(cfg)  # a valid config of the architecture


def test_size_for_applies_glus_own_default_and_names_a_wrong_mlp():
    assert size_for(1e5, arch="glu").mlp == "swiglu"
    with pytest.raises(ConfigError, match=r"model\.mlp"):
        size_for(1e5, arch="glu", mlp="gelu")


@pytest.mark.parametrize(
    ("arch", "field", "value"),
    [
        ("transformer", "d_embed", 16),
        ("transformer", "n_experts", 4),
        ("albert", "pool", 4),
        ("performer", "kernel_size", 7),
        ("mixer", "n_softmax", 2),
        ("glu", "n_features", 8),
    ],
)
def test_architecture_only_fields_are_rejected_elsewhere(arch, field, value):
    with pytest.raises(ConfigError, match=f"model.{field} is used only by arch"):
        tiny(arch, **{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_experts", 0),
        ("capacity_factor", 0.0),
        ("aux_loss_coef", -1.0),
        ("pool", 0),
        ("kernel_size", 0),
        ("n_softmax", 0),
        ("d_embed", 0),
        ("n_features", 0),
        ("feature_redraw", -1),
    ],
)
def test_field_ranges_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"model.{field}"):
        tiny("transformer", **{field: value})
