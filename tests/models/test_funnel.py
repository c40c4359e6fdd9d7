"""funnel: the Hourglass shift, pooling groups and upsampling, exactly causal at group edges."""

from __future__ import annotations

import pytest
import torch
from archkit import max_leak, measured_flops, tiny

from scalelab.accounting import count
from scalelab.architectures.shapes import funnel_split as split
from scalelab.errors import ConfigError
from scalelab.models import build_model
from scalelab.models.funnel import shorten, upsample


def test_shorten_shifts_by_k_minus_1_then_averages_groups():
    x = torch.arange(1.0, 8.0).reshape(1, 7, 1)  # x_t = t + 1, T = 7 (not a multiple of 3)
    s = shorten(x, 3)
    # short j averages x_{3j-2} .. x_{3j} (zeros before position 0)
    assert s.flatten().tolist() == pytest.approx([1 / 3, (2 + 3 + 4) / 3, (5 + 6 + 7) / 3])
    assert torch.equal(upsample(s, 3, 7)[0, :, 0], s[0, [0, 0, 0, 1, 1, 1, 2], 0])


@pytest.mark.parametrize("k", [2, 3, 4])
def test_causal_at_every_pooling_boundary(k):
    cfg = tiny("funnel", pool=k, n_layer=4, context=13)  # groups cut the sequence unevenly
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert max_leak(model, torch.randint(0, cfg.vocab_size, (2, 13))) == 0.0


@pytest.mark.parametrize("k", [2, 3])
def test_the_short_path_reaches_exactly_the_last_whole_group(k):
    """With every block shortened (n_layer = 2), position t reads token t through the
    residual and tokens <= (t // k) k through the short path; the tokens in between it
    cannot see yet (they are summarised at position (t // k + 1) k)."""
    cfg = tiny("funnel", pool=k, n_layer=2, context=12)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (1, 12))
    base = model(idx)
    for s in range(12):
        changed = idx.clone()
        changed[0, s] = (changed[0, s] + 1) % cfg.vocab_size
        moved = (model(changed) - base).abs().amax(-1)[0] > 0
        sees = [t for t in range(12) if moved[t]]
        assert sees == [t for t in range(12) if t == s or (t // k) * k >= s], (s, sees)


def test_split_of_the_depth():
    assert [split(tiny("funnel", n_layer=n)) for n in (2, 4, 6, 8)] == [
        (0, 2, 0),
        (1, 2, 1),
        (1, 4, 1),
        (2, 4, 2),
    ]


def test_shortened_blocks_cost_less():
    funnel, dense = count(tiny("funnel", n_layer=4)), count(tiny("transformer", n_layer=4))
    assert funnel.params.total == dense.params.total
    assert funnel.flops.forward_per_token < dense.flops.forward_per_token
    assert funnel.memory.kv_cache_bytes_per_token < dense.memory.kv_cache_bytes_per_token


def test_flops_exact_with_pool_3():
    cfg = tiny("funnel", pool=3, n_layer=4, d_model=36, context=18)
    torch.manual_seed(0)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 18))
    assert measured_flops(model, idx) == count(cfg).flops.forward_per_token * idx.numel()


def test_pool_must_shorten():
    with pytest.raises(ConfigError, match=r"model\.pool"):
        tiny("funnel", pool=1)
