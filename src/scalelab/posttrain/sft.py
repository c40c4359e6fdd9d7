"""Supervised fine-tuning on a task's demonstrations, the loss on completion tokens only.

Each step draws ``batch_size`` training prompts (from the step's own seed) and their right
answers; the sequence is ``[eos] prompt answer [eos]`` and the cross-entropy counts only the
positions that predict the answer and its closing eos, so the model is not trained to write
prompts (Ouyang et al. 2022 train their SFT models the same way). The stage ends with the
policy's greedy accuracy and sampled grader reward on validation prompts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalelab.posttrain.grade import score_policy
from scalelab.posttrain.rollout import forward_flops_per_token
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
from scalelab.posttrain.tasks import prompts

if TYPE_CHECKING:
    import torch

    from scalelab.data import Tokenizer

DEMOS = 20_000  # distinct training demonstrations the steps draw from


def demo_batch(
    tokenizer: Tokenizer, pairs: list[tuple[str, str]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs [B, T] and targets [B, T] (-100 outside the completion) of demonstrations."""
    import torch

    eos = tokenizer.eos_id
    seqs = [[eos, *tokenizer.encode(p), *tokenizer.encode(a), eos] for p, a in pairs]
    width = max(len(s) for s in seqs) - 1
    idx = torch.full((len(seqs), width), eos, dtype=torch.long)
    targets = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, ((p, _), s) in enumerate(zip(pairs, seqs, strict=True)):
        idx[i, : len(s) - 1] = torch.tensor(s[:-1])
        start = len(tokenizer.encode(p))  # input position of the prompt's last character
        targets[i, start : len(s) - 1] = torch.tensor(s[start + 1 :])
    return idx, targets


def run_sft(stage: Stage, log: Any = None) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    cfg = stage.cfg
    tokenizer = tokenizer_of(stage.parent)
    model = build_lm(stage.parent)
    torch.manual_seed(cfg.seed)
    opt = adamw(model, cfg)
    demos = prompts(stage.task, "train", DEMOS, cfg.seed)
    per_token = forward_flops_per_token(model)

    def step_fn(step: int) -> dict[str, float]:
        g = step_generator(cfg.seed, step)
        picks = torch.randint(len(demos), (cfg.batch_size,), generator=g).tolist()
        idx, targets = demo_batch(tokenizer, [demos[i] for i in picks])
        logits = model(idx).float()
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {
            "loss": loss.item(),
            "tokens": int(idx.numel()),
            "flops": 3 * per_token * idx.numel(),
        }

    state = run_loop(stage, model, opt, step_fn, log=log)
    model.eval()
    score = score_policy(model, tokenizer, stage.task, n=cfg.eval_prompts, seed=cfg.seed)
    return finish(
        stage,
        {
            "step": state["step"],
            "loss": state["last"].get("loss"),
            "policy_N": n_params(model),
            "accuracy": score.accuracy,
            "accuracy_lo": score.accuracy_lo,
            "accuracy_hi": score.accuracy_hi,
            "gold_reward": score.reward,
            "gold_reward_lo": score.reward_lo,
            "gold_reward_hi": score.reward_hi,
            "kl": None,
            "tokens": state["tokens"],
            "flops": state["flops"] + score.flops,
            "seconds": state["seconds"],
        },
    )
