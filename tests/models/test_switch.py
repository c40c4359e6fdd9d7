"""switch: top-1 routing, per-sequence capacity in position order, load balancing, active N."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from archkit import max_leak, n_params, tiny

from scalelab.accounting import count
from scalelab.architectures.shapes import switch_capacity as capacity
from scalelab.models import build_model
from scalelab.models.switch import SwitchFFN


def always_expert_zero(cfg) -> SwitchFFN:
    """A layer whose router sends every positive input to expert 0 (logit sum(x) vs 0)."""
    torch.manual_seed(0)
    layer = SwitchFFN(cfg)
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0] = 1.0
    return layer


def test_active_parameters_are_one_expert_per_layer_and_flops_use_them():
    cfg = tiny("switch", n_experts=4)
    model = build_model(cfg)
    c = count(cfg)
    expert = n_params(model.blocks[0].moe.experts[0])
    assert c.params.total == n_params(model)
    assert c.params.total - c.params.active == cfg.n_layer * (cfg.n_experts - 1) * expert
    assert c.params.breakdown["experts"] == cfg.n_layer * cfg.n_experts * expert
    # per token: the dense transformer's FLOPs plus the router, whatever the expert count
    dense = count(tiny("transformer"))
    router = 2 * cfg.n_layer * cfg.d_model * cfg.n_experts
    assert c.flops.forward_per_token == dense.flops.forward_per_token + router
    assert c.flops.six_n == 6 * c.params.active


def test_tokens_over_capacity_skip_the_layer():
    cfg = tiny("switch", n_experts=4)  # capacity ceil(1.25 x 16 / 4) = 5 tokens per sequence
    layer = always_expert_zero(cfg)
    cap = capacity(cfg)
    assert cap == 5
    y = layer(torch.rand(3, 16, cfg.d_model) + 0.1)
    assert (y[:, cap:] == 0).all()  # the residual stream carries them through unchanged
    assert (y[:, :cap].abs().sum(-1) > 0).all()
    assert float(layer.dropped) == pytest.approx(11 / 16)


def test_capacity_is_per_sequence_and_in_position_order():
    """A sequence's routing is its own: other sequences in the batch change nothing, and a
    token is dropped only for earlier tokens of its sequence."""
    cfg = tiny("switch", n_experts=4)
    layer = always_expert_zero(cfg)
    alone = torch.rand(1, 16, cfg.d_model) + 0.1
    batch = torch.cat([alone, torch.rand(2, 16, cfg.d_model) + 0.1])
    torch.testing.assert_close(layer(batch)[:1], layer(alone))
    later_changed = alone.clone()
    later_changed[:, 10:] = torch.rand(1, 6, cfg.d_model) + 0.1
    torch.testing.assert_close(layer(later_changed)[:, :10], layer(alone)[:, :10])


def test_causal_while_experts_overflow():
    cfg = tiny("switch", n_experts=2, capacity_factor=0.25)  # 2 tokens per expert per sequence
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (3, cfg.context))
    model(idx)
    assert model.dropped_fraction() > 0.5  # most tokens overflow, yet nothing leaks back
    assert max_leak(model, idx) <= 1e-5


def test_load_balancing_loss_is_n_sum_f_p():  # Fedus et al. eq. 4
    cfg = tiny("switch", n_experts=4)
    torch.manual_seed(0)
    layer = SwitchFFN(cfg)
    x = torch.randn(2, 16, cfg.d_model)
    with torch.no_grad():
        layer(x)
    probs = F.softmax(x @ layer.router.weight.detach().T, dim=-1)
    f = F.one_hot(probs.argmax(-1), 4).float().mean((0, 1))
    p = probs.mean((0, 1))
    assert float(layer.aux_loss) == pytest.approx(float(4 * (f * p).sum()), rel=1e-5)


def test_model_aux_loss_is_the_weighted_sum_over_layers_and_trains_the_router():
    cfg = tiny("switch", n_experts=4, aux_loss_coef=0.05)
    torch.manual_seed(0)
    model = build_model(cfg)
    assert model.aux_loss is None
    model(torch.randint(0, cfg.vocab_size, (2, cfg.context)))
    layers = sum(b.moe.aux_loss.item() for b in model.blocks)
    assert model.aux_loss.dim() == 0
    assert model.aux_loss.item() == pytest.approx(0.05 * layers, rel=1e-6)
    model.aux_loss.backward()
    assert model.blocks[0].moe.router.weight.grad.abs().sum() > 0


def test_router_runs_in_fp32_under_bf16_autocast():
    cfg = tiny("switch")
    layer = SwitchFFN(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probs, _, _ = layer.route(torch.randn(2, 16, cfg.d_model))
    assert probs.dtype == torch.float32
