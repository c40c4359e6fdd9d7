"""mixer: token mixing through stored lower triangles only."""

from __future__ import annotations

import torch
from archkit import tiny

from scalelab.accounting import count
from scalelab.models import build_model


def test_only_the_lower_triangle_is_stored_and_counted():
    cfg = tiny("mixer", context=16)
    model = build_model(cfg)
    tokens = model.blocks[0].tokens
    assert tokens.w1.numel() == tokens.w2.numel() == 16 * 17 // 2
    assert count(cfg).params.breakdown["token_mixing"] == cfg.n_layer * 2 * 16 * 17 // 2
    w = tokens.matrix(tokens.w1, 16)
    assert torch.equal(w.triu(1), torch.zeros_like(w))
    assert (w[tokens.rows, tokens.cols] != 0).all()


def test_token_mixing_is_lower_triangular_in_its_gradient_too():
    cfg = tiny("mixer")
    torch.manual_seed(0)
    tokens = build_model(cfg).blocks[0].tokens
    x = torch.randn(1, cfg.context, cfg.d_model, requires_grad=True)
    out = tokens(x)
    (grad,) = torch.autograd.grad(out[0, 5].sum(), x)
    assert (grad[0, 6:] == 0).all() and (grad[0, :6].abs().sum(-1) > 0).all()


def test_bias_rows_are_per_position():
    cfg = tiny("mixer", bias=True)
    model = build_model(cfg)
    assert model.blocks[0].tokens.b1.shape == (cfg.context,)
    assert sum(p.numel() for p in model.parameters()) == count(cfg).params.total
