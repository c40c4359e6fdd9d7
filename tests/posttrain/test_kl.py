"""The KL estimates: zero at the reference, positive away from it."""

from __future__ import annotations

import copy

import torch

from scalelab.config import example_config
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.models import build_model
from scalelab.posttrain.kl import estimate_kl, k1, k3
from scalelab.posttrain.tasks import prompts


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(
        example_config("transformer", n_layer=1, d_model=32, n_head=2, vocab_size=258, context=32)
    ).eval()


def test_kl_estimate_is_zero_at_the_reference() -> None:
    policy = _model()
    ps = [p for p, _ in prompts("sort", "val", 16)]
    est = estimate_kl(
        policy,
        copy.deepcopy(policy),
        ByteTokenizer(),
        ps,
        6,
        generator=torch.Generator().manual_seed(0),
    )
    assert est.kl == 0.0 and est.stderr == 0.0
    moved = copy.deepcopy(policy)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.05 * torch.randn_like(p))
    away = estimate_kl(
        moved, policy, ByteTokenizer(), ps, 6, generator=torch.Generator().manual_seed(0)
    )
    assert away.kl > 0.01


def test_k1_and_k3() -> None:
    lp = torch.tensor([[-1.0, -2.0, -0.5]])
    ref = torch.tensor([[-1.5, -1.0, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert float(k1(lp, ref, mask)) == (-1.0 + 1.5) + (-2.0 + 1.0)  # the masked token is out
    assert float(k1(lp, lp, mask)) == 0.0
    assert torch.all(k3(lp, ref) >= 0) and torch.all(k3(lp, lp) == 0)
