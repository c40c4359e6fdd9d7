"""performer: FAVOR+ features, chunked causal prefix sums, stabilisers, feature redrawing."""

from __future__ import annotations

import math

import torch
from archkit import measured_flops, tiny

from scalelab.accounting import count
from scalelab.architectures.shapes import performer_features as n_features
from scalelab.models import build_model
from scalelab.models.performer import FavorAttention, orthogonal_gaussian
from scalelab.models.transformer import Attention


def test_orthogonal_random_features():
    w = orthogonal_gaussian(20, 8, torch.Generator().manual_seed(0))
    assert w.shape == (20, 8)
    block = w[:8] / w[:8].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(8), atol=1e-5, rtol=0)
    lengths = w.norm(dim=1)  # chi(8) lengths, so each row is marginally N(0, I)
    assert lengths.std() > 0.1 and 1.5 < lengths.mean() < 4.5


def favor(head_dim: int, m: int, seed: int = 0) -> FavorAttention:
    cfg = tiny("performer", d_model=head_dim, n_head=1, n_features=m, context=64)
    torch.manual_seed(seed)
    layer = FavorAttention(cfg)
    layer.set_features(orthogonal_gaussian(m, head_dim, torch.Generator().manual_seed(seed)))
    return layer


# The estimator's relative variance grows like exp(|q + k|^2 / sqrt(d)) (Choromanski et al.
# Lemma 2): these checks use inputs of moderate norm, where a few thousand features suffice.


def test_positive_features_estimate_softmax_attention_weights():
    layer = favor(8, 8192)
    g = torch.Generator().manual_seed(1)
    q, k = (0.5 * torch.randn(1, 1, n, 8, generator=g) for n in (6, 10))
    kernel = layer.feature_map(q, True) @ layer.feature_map(k, False).transpose(-1, -2)
    assert (kernel > 0).all()  # positive features: a positive estimate
    weights = kernel / kernel.sum(-1, keepdim=True)
    exact = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, exact, atol=0.03, rtol=0)


def test_chunked_prefix_sums_equal_the_masked_quadratic_form():
    layer = favor(8, 16)
    layer.chunk = 16
    g = torch.Generator().manual_seed(2)
    qf, kf = (torch.rand(2, 3, 37, 16, generator=g) + 0.01 for _ in range(2))
    v = torch.randn(2, 3, 37, 8, generator=g)
    scores = (qf @ kf.transpose(-1, -2)).tril()  # 37 = 2 chunks + 5: a ragged last chunk
    expected = (scores @ v) / scores.sum(-1, keepdim=True)
    torch.testing.assert_close(layer.causal_linear_attention(qf, kf, v), expected)


def test_favor_attention_approximates_softmax_attention():
    layer = favor(8, 4096)
    cfg = tiny("transformer", d_model=8, n_head=1, context=64)
    exact = Attention(cfg)
    shared = ("qkv.weight", "proj.weight")
    exact.load_state_dict({k: v for k, v in layer.state_dict().items() if k in shared})
    with torch.no_grad():
        x = 0.3 * torch.randn(2, 24, 8, generator=torch.Generator().manual_seed(0))
        a, b = layer(x, None), exact(x, None)
    assert ((a - b).norm() / b.norm()).item() < 0.06  # measured 0.017-0.045 over 10 seeds


def test_a_huge_later_key_changes_nothing_before_it():
    """No stabiliser looks ahead: a key of enormous norm at the end (which would move a
    max taken over the sequence) leaves every earlier output bit-identical."""
    layer = favor(8, 64)
    x = torch.randn(1, 40, 8)
    spiked = x.clone()
    spiked[:, -1] *= 100
    with torch.no_grad():
        assert torch.equal(layer(spiked, None)[:, :-1], layer(x, None)[:, :-1])


def test_default_feature_count_is_d_log_d():
    assert n_features(tiny("performer")) == round(8 * math.log(8))
    assert n_features(tiny("performer", d_model=256)) == round(64 * math.log(64))
    assert n_features(tiny("performer", n_features=5)) == 5


def test_flops_are_exact_over_several_chunks():
    cfg = tiny("performer", context=96)  # chunks of 32
    torch.manual_seed(0)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 96))
    assert measured_flops(model, idx) == count(cfg).flops.forward_per_token * idx.numel()


def features(model) -> list[torch.Tensor]:
    return [b.attn.features.clone() for b in model.blocks]


def test_features_are_redrawn_every_n_training_forwards_reproducibly():
    cfg = tiny("performer", feature_redraw=2)
    idx = torch.randint(0, cfg.vocab_size, (1, cfg.context))
    torch.manual_seed(0)
    model = build_model(cfg)
    first = features(model)
    model.eval()
    model(idx)
    assert all(torch.equal(a, b) for a, b in zip(first, features(model), strict=True))
    model.train()
    model(idx)
    model(idx)  # two training forwards on the first draw
    assert all(torch.equal(a, b) for a, b in zip(first, features(model), strict=True))
    model(idx)  # the third draws anew
    assert not torch.equal(first[0], features(model)[0])
    assert not torch.equal(features(model)[0], features(model)[1])  # layers differ
    # the same seed gives the same draws; a checkpoint carries seed, count and features
    torch.manual_seed(0)
    again = build_model(cfg).train()
    for _ in range(3):
        again(idx)
    assert all(torch.equal(a, b) for a, b in zip(features(model), features(again), strict=True))
    torch.manual_seed(1)
    resumed = build_model(cfg).train()
    resumed.load_state_dict(model.state_dict())
    torch.testing.assert_close(resumed(idx), model(idx), atol=0, rtol=0)
    assert all(torch.equal(a, b) for a, b in zip(features(model), features(resumed), strict=True))


def test_feature_redraw_zero_keeps_the_first_draw():
    cfg = tiny("performer", feature_redraw=0)
    model = build_model(cfg).train()
    first = features(model)
    for _ in range(3):
        model(torch.randint(0, cfg.vocab_size, (1, cfg.context)))
    assert all(torch.equal(a, b) for a, b in zip(first, features(model), strict=True))
