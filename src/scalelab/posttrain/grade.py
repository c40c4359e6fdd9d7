"""A policy's score on a task's validation prompts: accuracy and mean grader reward.

``accuracy`` is the share of validation prompts whose **greedy** completion the grader
scores 1.0 (with its 95% Wilson interval); ``reward`` is the grader's mean score of
completions **sampled** at temperature 1, the quantity RL and best-of-n optimise (its
interval is the normal one of a mean).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from scalelab.posttrain.rollout import sample
from scalelab.posttrain.tasks import get_verifiable, prompts

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer

EVAL_PROMPTS = 500


@dataclass
class Score:
    task: str
    n: int
    accuracy: float
    accuracy_lo: float
    accuracy_hi: float
    reward: float  # the grader's mean on sampled completions
    reward_lo: float
    reward_hi: float
    flops: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grade(task: str, prompt_list: list[str], completions: list[str]) -> list[float]:
    t = get_verifiable(task)
    return [t.score(p, c) for p, c in zip(prompt_list, completions, strict=True)]


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% normal interval."""
    n = len(values)
    m = sum(values) / n
    var = sum((v - m) ** 2 for v in values) / max(n - 1, 1)
    half = 1.96 * math.sqrt(var / n)
    return m, m - half, m + half


def score_policy(
    model: nn.Module,
    tokenizer: Tokenizer,
    task: str,
    *,
    n: int = EVAL_PROMPTS,
    seed: int = 0,
    batch_size: int = 250,
    generator: torch.Generator | None = None,
) -> Score:
    """Greedy accuracy and sampled reward on ``n`` validation prompts (see the module)."""
    import torch

    from scalelab.tasks.scoring import wilson

    t = get_verifiable(task)
    pairs = prompts(task, "val", n, seed)
    gen = generator or torch.Generator().manual_seed(seed)
    exact = 0
    rewards: list[float] = []
    flops = 0.0
    for b in range(0, n, batch_size):
        chunk = [p for p, _ in pairs[b : b + batch_size]]
        greedy = sample(model, tokenizer, chunk, t.max_answer + 1, temperature=0.0)
        exact += sum(s == 1.0 for s in grade(task, chunk, greedy.completions))
        drawn = sample(model, tokenizer, chunk, t.max_answer + 1, generator=gen)
        rewards += grade(task, chunk, drawn.completions)
        flops += greedy.flops + drawn.flops
    lo, hi = wilson(exact, n)
    r, r_lo, r_hi = mean_interval(rewards)
    return Score(task, n, exact / n, lo, hi, r, r_lo, r_hi, flops)


def run_eval(stage: Any) -> dict[str, Any]:
    """``--method eval``: the parent policy's score as a stage of no steps (a point)."""
    from scalelab.posttrain.stage import build_lm, finish, n_params, tokenizer_of

    model = build_lm(stage.parent)
    model.eval()
    s = score_policy(
        model, tokenizer_of(stage.parent), stage.task, n=stage.cfg.eval_prompts, seed=stage.cfg.seed
    )
    return finish(
        stage,
        {
            "step": 0,
            "policy_N": n_params(model),
            "accuracy": s.accuracy,
            "accuracy_lo": s.accuracy_lo,
            "accuracy_hi": s.accuracy_hi,
            "gold_reward": s.reward,
            "gold_reward_lo": s.reward_lo,
            "gold_reward_hi": s.reward_hi,
            "kl": 0.0,
            "tokens": 0,
            "flops": s.flops,
            "seconds": 0.0,
        },
    )
