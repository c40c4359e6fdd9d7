"""The reward-model stage: the language model with a scalar head
(:mod:`.rewardmodel`), trained on preference pairs.

Training is Bradley-Terry (Bradley & Terry 1952; Ouyang et al. 2022, eq. 1):
P(chosen > rejected) = sigmoid(r(chosen) - r(rejected)), loss = -log of it. The stage holds
out ``posttrain.holdout`` of the pairs (by index from the seed) and reports the share of
held-out pairs it ranks as the gold reward does (``pair_accuracy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalelab.posttrain.pairs import (
    PAIRS_FILE,
    Pair,
    draw_pairs,
    grader_gold,
    model_gold,
    read_pairs,
    write_pairs,
)
from scalelab.posttrain.rewardmodel import RewardModel, rewards
from scalelab.posttrain.rollout import encode_completions, encode_prompts, forward_flops_per_token
from scalelab.posttrain.stage import (
    Stage,
    adamw,
    build_lm,
    finish,
    n_params,
    run_loop,
    step_generator,
    tokenizer_of,
)
from scalelab.posttrain.tasks import get_verifiable

if TYPE_CHECKING:
    import torch

    from scalelab.data import Tokenizer


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r_chosen - r_rejected), averaged."""
    import torch.nn.functional as F

    return -F.logsigmoid(chosen - rejected).mean()


def pair_tensors(
    tokenizer: Tokenizer, task: str, pairs: list[Pair]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """prompt ids, chosen ids and mask, rejected ids and mask."""
    width = get_verifiable(task).max_answer + 1
    prompt_ids = encode_prompts(tokenizer, [p.prompt for p in pairs])
    c_ids, c_mask = encode_completions(tokenizer, [p.chosen for p in pairs], width)
    r_ids, r_mask = encode_completions(tokenizer, [p.rejected for p in pairs], width)
    return prompt_ids, c_ids, c_mask, r_ids, r_mask


def split_pairs(pairs: list[Pair], holdout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out): a seeded shuffle, the held-out share at the end."""
    import random

    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(holdout * len(pairs)))
    return [pairs[i] for i in order[n_val:]], [pairs[i] for i in order[:n_val]]


def stage_pairs(stage: Stage, rm: Any, log: Any = None) -> tuple[list[Pair], float, int]:
    """The stage's pairs: its pair file, else drawn from its parent (and saved beside it)."""
    cfg = stage.cfg
    if cfg.pairs_file:
        return read_pairs(cfg.pairs_file, stage.task)[: cfg.pairs], 0.0, 0
    saved = stage.run_dir / PAIRS_FILE
    if saved.is_file():  # a resumed stage reads the pairs it drew before
        return read_pairs(saved, stage.task), 0.0, 0
    tokenizer = tokenizer_of(stage.parent)
    policy = build_lm(stage.parent)
    gold = (
        grader_gold(stage.task) if rm is None else model_gold(build_lm(rm), tokenizer, stage.task)
    )
    pairs, flops, tokens = draw_pairs(policy, tokenizer, stage.task, cfg.pairs, gold, seed=cfg.seed)
    write_pairs(saved, pairs)
    if log:
        log(f"drew {len(pairs)} pairs from the parent's samples")
    return pairs, flops, tokens


def pair_accuracy(rm: RewardModel, tensors: tuple[torch.Tensor, ...]) -> float:
    import torch

    prompt_ids, c_ids, c_mask, r_ids, r_mask = tensors
    with torch.no_grad():
        rc = rewards(rm, prompt_ids, c_ids, c_mask)
        rr = rewards(rm, prompt_ids, r_ids, r_mask)
    return float((rc > rr).float().mean())


def run_reward(stage: Stage, gold_rm: Any, log: Any = None) -> dict[str, Any]:
    import torch

    cfg = stage.cfg
    tokenizer = tokenizer_of(stage.parent)
    pairs, pair_flops, pair_tokens = stage_pairs(stage, gold_rm, log)
    train, held = split_pairs(pairs, cfg.holdout, cfg.seed)
    held_t = pair_tensors(tokenizer, stage.task, held)
    torch.manual_seed(cfg.seed)
    rm = RewardModel(build_lm(stage.parent))
    opt = adamw(rm, cfg)
    per_token = forward_flops_per_token(rm)

    def step_fn(step: int) -> dict[str, float]:
        g = step_generator(cfg.seed, step)
        picks = torch.randint(len(train), (cfg.batch_size,), generator=g).tolist()
        prompt_ids, c_ids, c_mask, r_ids, r_mask = pair_tensors(
            tokenizer, stage.task, [train[i] for i in picks]
        )
        loss = bradley_terry_loss(
            rewards(rm, prompt_ids, c_ids, c_mask), rewards(rm, prompt_ids, r_ids, r_mask)
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens = 2 * (prompt_ids.numel() + c_ids.numel())
        return {"loss": loss.item(), "tokens": tokens, "flops": 3 * per_token * tokens}

    def evaluate(step: int) -> dict[str, Any]:
        return {"pair_accuracy": pair_accuracy(rm, held_t)}

    state = run_loop(stage, rm, opt, step_fn, evaluate=evaluate, log=log)
    acc = state["evals"][-1]["pair_accuracy"]
    from scalelab.tasks.scoring import wilson

    lo, hi = wilson(round(acc * len(held)), len(held))
    return finish(
        stage,
        {
            "step": state["step"],
            "loss": state["last"].get("loss"),
            "reward_N": n_params(rm),
            "policy_N": n_params(rm),
            "pairs": len(pairs),
            "train_pairs": len(train),
            "held_out_pairs": len(held),
            "pair_accuracy": acc,
            "pair_accuracy_lo": lo,
            "pair_accuracy_hi": hi,
            "tokens": state["tokens"] + pair_tokens,
            "flops": state["flops"] + pair_flops,
            "seconds": state["seconds"],
        },
    )
