"""RL on a reward: group-relative policy optimisation (GRPO; Shao et al. 2024, sec. 4.1).

Each step draws ``batch_size`` training prompts and samples ``group`` completions of each
from the current policy. A completion's advantage is its reward relative to its group,
A = (r - mean(group)) / (std(group) + 1e-6), so no value network is needed and a group whose
completions all score alike teaches nothing (A = 0: a constant reward leaves the policy where
it is). The policy then takes ``updates`` gradient steps on PPO's clipped objective (Schulman
et al. 2017, eq. 7) with ratio pi / pi_old clipped to [1 - clip, 1 + clip], plus
``kl_coef`` x the k3 estimate of KL(policy || reference) per token (:mod:`.kl`); each
completion's tokens are averaged, then the completions.

The reward is the task's grader or a reward-model run (the proxy). The gold reward (the
grader, or a gold reward-model run: :mod:`.gold`) is computed either way, and every step
logs the rollout's mean gold and proxy reward and its k1 estimate of KL(policy ||
reference); every ``eval_every`` steps a fresh sample of validation prompts gives the point
of the KL curve (Gao et al. 2022, fig. 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalelab.posttrain.gold import Gold
from scalelab.posttrain.grade import grade, score_policy
from scalelab.posttrain.kl import estimate_kl, k1, k3
from scalelab.posttrain.rollout import forward_flops_per_token, sample, token_logprobs
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
from scalelab.posttrain.tasks import get_verifiable, prompts

if TYPE_CHECKING:
    import torch

    from scalelab.runs import FinishedRun


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(r - group mean) / (group std + eps) for rewards [P, G] (G samples of P prompts)."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip: float = 0.2,
    ref_logp: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> torch.Tensor:
    """The GRPO loss of completions: token log-probs [B, M], advantages [B], mask [B, M]."""
    import torch

    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    per_token = -surrogate
    if ref_logp is not None and kl_coef > 0:
        per_token = per_token + kl_coef * k3(logp, ref_logp)
    per_completion = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)
    return per_completion.mean()


def run_rl(
    stage: Stage,
    rm_parent: FinishedRun | None,
    log: Any = None,
    gold_parent: FinishedRun | None = None,
) -> dict[str, Any]:
    import torch

    from scalelab.posttrain.rewardmodel import rewards as rm_rewards

    cfg = stage.cfg
    task = get_verifiable(stage.task)
    tokenizer = tokenizer_of(stage.parent)
    reference = build_lm(stage.parent).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    rm = build_lm(rm_parent).eval() if rm_parent is not None else None
    gold_of = Gold(stage.task, gold_parent, lambda t, ps, cs: grade(t, ps, cs))
    policy = build_lm(stage.parent)
    torch.manual_seed(cfg.seed)
    opt = adamw(policy, cfg)
    per_token = forward_flops_per_token(policy)
    rm_per_token = forward_flops_per_token(rm) if rm is not None else 0.0
    train_prompts = [p for p, _ in prompts(stage.task, "train", 20_000, cfg.seed)]
    eval_prompts = [p for p, _ in prompts(stage.task, "val", cfg.kl_prompts, cfg.seed + 1)]
    max_new = task.max_answer + 1
    top_k = cfg.top_k or None

    def proxy_of(r: Any, gold: list[float]) -> tuple[torch.Tensor, float]:
        if rm is None:
            return torch.tensor(gold), 0.0
        with torch.no_grad():
            out = rm_rewards(rm, r.prompt_ids, r.new_ids, r.mask)
        return out, rm_per_token * (r.prompt_ids.numel() + r.new_ids.numel())

    def step_fn(step: int) -> dict[str, float]:
        g = step_generator(cfg.seed, step)
        picks = torch.randint(len(train_prompts), (cfg.batch_size,), generator=g).tolist()
        batch = [train_prompts[i] for i in picks for _ in range(cfg.group)]
        r = sample(
            policy,
            tokenizer,
            batch,
            max_new,
            temperature=cfg.temperature,
            top_k=top_k,
            generator=g,
        )
        gold, graded, gold_flops = gold_of(r)
        proxy, rm_flops = proxy_of(r, graded)
        with torch.no_grad():
            old_lp = token_logprobs(policy, r.prompt_ids, r.new_ids)
            ref_lp = token_logprobs(reference, r.prompt_ids, r.new_ids)
        adv = group_advantages(proxy.float().view(cfg.batch_size, cfg.group)).flatten()
        losses = []
        for _ in range(cfg.updates):
            lp = token_logprobs(policy, r.prompt_ids, r.new_ids)
            loss = grpo_loss(
                lp, old_lp, adv, r.mask, clip=cfg.clip, ref_logp=ref_lp, kl_coef=cfg.kl_coef
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        seq_tokens = r.prompt_ids.numel() + r.new_ids.numel()
        flops = r.flops + rm_flops + gold_flops + 2 * per_token * seq_tokens  # old, reference
        flops += cfg.updates * 3 * per_token * seq_tokens
        return {
            "loss": losses[-1],
            "kl": float(k1(old_lp, ref_lp, r.mask).mean()),
            "gold_reward": sum(gold) / len(gold),
            **({"grader_reward": sum(graded) / len(graded)} if gold_of.is_model else {}),
            "proxy_reward": float(proxy.float().mean()),
            "tokens": r.tokens,
            "flops": flops,
        }

    def evaluate(step: int) -> dict[str, Any]:
        est = estimate_kl(
            policy,
            reference,
            tokenizer,
            eval_prompts,
            max_new,
            generator=step_generator(cfg.seed, step, salt=1),
        )
        gold, graded, _ = gold_of(est.rollout)
        proxy, _ = proxy_of(est.rollout, graded)
        return {
            "eval_kl": est.kl,
            "eval_kl_stderr": est.stderr,
            "eval_gold_reward": sum(gold) / len(gold),
            **({"eval_grader_reward": sum(graded) / len(graded)} if gold_of.is_model else {}),
            "eval_proxy_reward": float(proxy.float().mean()),
        }

    state = run_loop(stage, policy, opt, step_fn, evaluate=evaluate, log=log)
    policy.eval()
    score = score_policy(policy, tokenizer, stage.task, n=cfg.eval_prompts, seed=cfg.seed)
    reward_n = n_params(rm) if rm is not None else None
    common = {
        "method": "rl",
        "task": stage.task,
        "reward": stage.reward,
        "reward_run_id": rm_parent.run_id if rm_parent is not None else None,
        "reward_N": reward_n,
        "policy_N": n_params(policy),
        "kl_coef": cfg.kl_coef,
        **(gold_of.keys() if gold_of.is_model else {}),
    }
    curve = [
        {
            **common,
            "run_id": f"{stage.run_id}@{e['step']}",
            "step": e["step"],
            "kl": max(e["eval_kl"], 0.0),
            "kl_stderr": e["eval_kl_stderr"],
            "gold_reward": e["eval_gold_reward"],
            **({"grader_reward": e["eval_grader_reward"]} if gold_of.is_model else {}),
            "proxy_reward": e["eval_proxy_reward"],
            "tokens": None,
            "flops": None,
        }
        for e in state["evals"]
    ]
    last = state["evals"][-1]
    return finish(
        stage,
        {
            **common,
            "step": state["step"],
            "loss": state["last"].get("loss"),
            "accuracy": score.accuracy,
            "accuracy_lo": score.accuracy_lo,
            "accuracy_hi": score.accuracy_hi,
            "gold_reward": score.reward,
            "gold_reward_lo": score.reward_lo,
            "gold_reward_hi": score.reward_hi,
            # the grader's sampled mean and interval; with a gold reward model, its mean at
            # the last evaluation (the grader's stays in grader_reward)
            **(
                {"gold_reward": last["eval_gold_reward"], "grader_reward": score.reward}
                if gold_of.is_model
                else {}
            ),
            "proxy_reward": last["eval_proxy_reward"],
            "kl": max(last["eval_kl"], 0.0),
            "kl_stderr": last["eval_kl_stderr"],
            "tokens": state["tokens"],
            "flops": state["flops"] + score.flops,
            "seconds": state["seconds"],
            "curve": curve,
        },
    )
