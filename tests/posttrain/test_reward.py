"""The reward model: Bradley-Terry recovers a known preference; the reward stage."""

from __future__ import annotations

import random

import torch

from scalelab.config import example_config
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.models import build_model
from scalelab.posttrain.pairs import Pair
from scalelab.posttrain.reward import bradley_terry_loss, pair_accuracy, pair_tensors
from scalelab.posttrain.rewardmodel import RewardModel, rewards
from scalelab.posttrain.tasks import prompts


def true_scalar(completion: str) -> float:
    """The hidden reward: 1.5 per '7' in the completion."""
    return 1.5 * completion.count("7")


def synthetic_pairs(n: int, seed: int) -> list[Pair]:
    """Pairs of random 5-digit completions of sort prompts, labelled by a Bradley-Terry draw
    from the known scalar: P(a preferred) = sigmoid(s(a) - s(b))."""
    rng = random.Random(seed)
    ps = [p for p, _ in prompts("sort", "train", n, seed)]
    out = []
    for p in ps:
        a, b = ("".join(rng.choice("0177") for _ in range(5)) for _ in range(2))
        if a == b:
            continue
        p_a = 1 / (1 + torch.exp(torch.tensor(true_scalar(b) - true_scalar(a))).item())
        out.append(Pair(p, a, b) if rng.random() < p_a else Pair(p, b, a))
    return out


def test_bradley_terry_recovers_the_true_preference() -> None:
    torch.manual_seed(0)
    tok = ByteTokenizer()
    lm = build_model(
        example_config("transformer", n_layer=1, d_model=32, n_head=2, vocab_size=258, context=32)
    )
    rm = RewardModel(lm)
    train = synthetic_pairs(3000, seed=1)
    opt = torch.optim.AdamW(rm.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        picks = torch.randint(len(train), (64,), generator=g).tolist()
        p, c, cm, r, rmask = pair_tensors(tok, "sort", [train[i] for i in picks])
        loss = bradley_terry_loss(rewards(rm, p, c, cm), rewards(rm, p, r, rmask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    # held-out pairs ranked by the true scalar itself (ties left out): the preference
    rng = random.Random(5)
    held = []
    for p, _ in prompts("sort", "val", 400, seed=2):
        a, b = ("".join(rng.choice("0177") for _ in range(5)) for _ in range(2))
        if true_scalar(a) != true_scalar(b):
            held.append(Pair(p, a, b) if true_scalar(a) > true_scalar(b) else Pair(p, b, a))
    rm.eval()
    assert pair_accuracy(rm, pair_tensors(tok, "sort", held)) > 0.95
    # and the learnt reward is on the scalar's scale: Bradley-Terry identifies differences
    with torch.no_grad():
        p_ids, c_ids, c_mask, _, _ = pair_tensors(
            tok, "sort", [Pair(held[0].prompt, "00000", "x"), Pair(held[0].prompt, "77000", "x")]
        )
        r0, r2 = rewards(rm, p_ids, c_ids, c_mask).tolist()
    assert 1.5 < r2 - r0 < 4.5  # the true difference is 3.0


def test_bradley_terry_loss_is_log_2_for_equal_rewards() -> None:
    r = torch.tensor([0.3, -1.0])
    assert abs(float(bradley_terry_loss(r, r)) - 0.693147) < 1e-6
    assert float(bradley_terry_loss(r + 5, r)) < 0.01
