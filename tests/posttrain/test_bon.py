"""Best-of-n: the analytic KL, the selection, and the measured KL against the formula."""

from __future__ import annotations

import math

import pytest
import torch

from scalelab.errors import ConfigError
from scalelab.posttrain.bon import bon_kl, check_ns, select_best


def test_analytic_kl() -> None:
    assert bon_kl(1) == 0.0
    assert bon_kl(4) == pytest.approx(math.log(4) - 0.75)
    assert bon_kl(1024) == pytest.approx(6.9315 - 0.99902, abs=1e-4)


def test_select_best_keeps_each_groups_maximum() -> None:
    proxy = torch.tensor([[0.1, 0.9, 0.3, 0.2, 0.5, 0.4], [3.0, 1.0, 2.0, 0.0, 5.0, 4.0]])
    assert select_best(proxy, 2).tolist() == [[1, 2, 4], [0, 2, 4]]
    assert select_best(proxy, 3).tolist() == [[1, 4], [0, 4]]
    assert select_best(proxy, 1).tolist() == [list(range(6))] * 2


@pytest.mark.parametrize("n", [1, 4, 16, 64])
def test_measured_kl_matches_log_n_minus_one_minus_one_over_n(n: int) -> None:
    """A base policy uniform over K = 200 outcomes with distinct rewards (nearly continuous:
    the exact discrete KL is within 0.005 of the formula at n <= 64); best-of-n picks drawn
    through select_best; the plug-in KL of their frequencies against the base (bias about
    support / 2M < 0.003) must match log n - (n - 1) / n."""
    K, M = 200, 50_000
    g = torch.Generator().manual_seed(n)
    outcomes = torch.randint(K, (M, n), generator=g)
    reward = outcomes.float() * 0.01 - 1.0  # any increasing function of the outcome
    picked = outcomes.flatten()[select_best(reward.view(1, -1), n).flatten()]
    freq = torch.bincount(picked, minlength=K).double() / M
    seen = freq > 0
    measured = float((freq[seen] * torch.log(freq[seen] * K)).sum())
    assert measured == pytest.approx(bon_kl(n), abs=0.02)


def test_bad_n_is_refused() -> None:
    with pytest.raises(ConfigError, match=">= 1"):
        check_ns([0, 4])
    with pytest.raises(ConfigError, match="at least one"):
        check_ns([])
    with pytest.raises(ConfigError, match="divide"):
        check_ns([3, 16])
    assert check_ns([16, 1, 4, 4]) == [1, 4, 16]
