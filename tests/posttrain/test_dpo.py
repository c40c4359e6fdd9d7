"""DPO's loss against its formula, and a short DPO stage."""

from __future__ import annotations

import math

import pytest
import torch

from scalelab.posttrain.dpo import dpo_loss

PI_C = [-1.0, -2.5, -0.3]
PI_R = [-3.0, -0.5, -4.0]
REF_C = [-1.5, -1.0, -0.9]
REF_R = [-2.0, -1.0, -2.2]


def _t(x: list[float]) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


def _margins() -> list[float]:
    return [(a - c) - (b - d) for a, b, c, d in zip(PI_C, PI_R, REF_C, REF_R, strict=True)]


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_loss_is_rafailov_eq_7(beta: float) -> None:
    want = sum(-math.log(1 / (1 + math.exp(-beta * h))) for h in _margins()) / 3
    got = dpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R), beta)
    assert float(got) == pytest.approx(want, rel=1e-12)


def test_conservative_and_ipo_losses() -> None:
    beta, eps = 0.3, 0.1

    def logsig(x: float) -> float:
        return -math.log(1 + math.exp(-x))

    want_c = sum(-(1 - eps) * logsig(beta * h) - eps * logsig(-beta * h) for h in _margins()) / 3
    got_c = dpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R), beta, "conservative", eps)
    assert float(got_c) == pytest.approx(want_c, rel=1e-12)
    want_i = sum((h - 1 / (2 * beta)) ** 2 for h in _margins()) / 3
    got_i = dpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R), beta, "ipo")
    assert float(got_i) == pytest.approx(want_i, rel=1e-12)


def test_dpo_loss_is_log_2_at_the_reference() -> None:
    same_c, same_r = _t(PI_C), _t(PI_R)
    for beta in (0.01, 0.1, 1.0):
        assert float(dpo_loss(same_c, same_r, same_c, same_r, beta)) == pytest.approx(
            math.log(2), abs=1e-12
        )


def test_dpo_loss_falls_as_the_chosen_completion_gains() -> None:
    base = dpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R))
    better = dpo_loss(_t(PI_C) + 1.0, _t(PI_R), _t(REF_C), _t(REF_R))
    assert float(better) < float(base)


def test_rpo_loss_is_dpo_plus_the_chosen_nll_per_token() -> None:
    from scalelab.posttrain.dpo import rpo_loss

    tokens = [2.0, 5.0, 1.0]
    for alpha in (0.0, 1.0, 0.3):
        nll = -sum(c / n for c, n in zip(PI_C, tokens, strict=True)) / 3
        want = float(dpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R), 0.1)) + alpha * nll
        got = rpo_loss(_t(PI_C), _t(PI_R), _t(REF_C), _t(REF_R), _t(tokens), 0.1, alpha)
        assert float(got) == pytest.approx(want, rel=1e-12)


def test_chosen_right_keeps_the_right_against_wrong_pairs() -> None:
    from scalelab.errors import DataError
    from scalelab.posttrain.dpo import right_against_wrong
    from scalelab.posttrain.pairs import Pair

    pairs = [
        Pair("sort:31=", "13", "31", 1.0, 0.0),
        Pair("sort:31=", "11", "31", 0.5, 0.0),
        Pair("sort:22=", "22", "2", 1.0, 0.5),
    ]
    assert [p.chosen for p in right_against_wrong(pairs)] == ["13", "22"]
    with pytest.raises(DataError, match="chosen_right"):
        right_against_wrong(pairs[1:2])
