"""Direct preference optimisation against a frozen reference (the parent, usually SFT).

With h = [log pi(y_w) - log ref(y_w)] - [log pi(y_l) - log ref(y_l)] (sums over the
completion's tokens, its eos included) for a chosen y_w and a rejected y_l:

* ``sigmoid`` (Rafailov et al. 2023, eq. 7): -log sigmoid(beta h);
* ``conservative`` (label smoothing eps, Mitchell 2023's cDPO): -(1 - eps) log sigmoid(beta h)
  - eps log sigmoid(-beta h), for pairs whose labels are wrong with probability eps;
* ``ipo`` (Azar et al. 2023, eq. 17 with tau = beta): (h - 1 / (2 beta))^2, which keeps a
  finite margin where DPO's loss keeps pushing h up on deterministic preferences;
* ``rpo`` (Pang et al. 2024, "Iterative reasoning preference optimization", eq. 1): the
  sigmoid loss plus ``rpo_alpha`` times the chosen completion's negative log-likelihood per
  token. DPO raises the margin h by lowering the chosen completion's likelihood as well as
  the rejected one's (Pal et al. 2024; measured here in docs/posttrain.md), so the mass goes
  to completions in neither set; the NLL term holds the chosen one up. Meant for pairs whose
  chosen completion is right (``posttrain.chosen_right``).

At the reference h = 0, so the DPO loss is log 2 whatever the pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalelab.posttrain.grade import score_policy
from scalelab.posttrain.kl import estimate_kl
from scalelab.posttrain.reward import pair_tensors, stage_pairs
from scalelab.posttrain.rollout import forward_flops_per_token, token_logprobs
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


def dpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
    loss: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The mean loss of a batch of pairs, from sequence log-probabilities [B] (see module)."""
    import torch.nn.functional as F

    h = (pi_chosen - ref_chosen) - (pi_rejected - ref_rejected)
    if loss == "ipo":
        return ((h - 1 / (2 * beta)) ** 2).mean()
    eps = label_smoothing if loss == "conservative" else 0.0
    return (-(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)).mean()


def rpo_loss(
    pi_chosen: torch.Tensor,
    pi_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    chosen_tokens: torch.Tensor,
    beta: float = 0.1,
    alpha: float = 1.0,
) -> torch.Tensor:
    """DPO's sigmoid loss + alpha * mean(-log pi(y_w) / |y_w|) (Pang et al. 2024, eq. 1)."""
    nll = -(pi_chosen / chosen_tokens.clamp(min=1)).mean()
    return dpo_loss(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta) + alpha * nll


def right_against_wrong(pairs: list[Any]) -> list[Any]:
    """The pairs whose chosen completion the gold scored 1.0 (``posttrain.chosen_right``)."""
    from scalelab.errors import DataError

    kept = [p for p in pairs if p.gold_chosen == 1.0]
    if not kept:
        raise DataError(
            f"posttrain.chosen_right: none of the {len(pairs)} pairs has a chosen completion "
            "the gold scores 1.0 (or the pair file has no gold_chosen): draw more pairs, or "
            "set posttrain.chosen_right=false"
        )
    return kept


def run_dpo(stage: Stage, gold_rm: Any, log: Any = None) -> dict[str, Any]:
    import torch

    cfg = stage.cfg
    tokenizer = tokenizer_of(stage.parent)
    pairs, pair_flops, pair_tokens = stage_pairs(stage, gold_rm, log)
    if cfg.chosen_right:
        pairs = right_against_wrong(pairs)
    reference = build_lm(stage.parent).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    policy = build_lm(stage.parent)
    torch.manual_seed(cfg.seed)
    opt = adamw(policy, cfg)
    per_token = forward_flops_per_token(policy)

    def step_fn(step: int) -> dict[str, float]:
        g = step_generator(cfg.seed, step)
        picks = torch.randint(len(pairs), (cfg.batch_size,), generator=g).tolist()
        prompt_ids, c_ids, c_mask, r_ids, r_mask = pair_tensors(
            tokenizer, stage.task, [pairs[i] for i in picks]
        )
        with torch.no_grad():
            ref_c = (token_logprobs(reference, prompt_ids, c_ids) * c_mask).sum(1)
            ref_r = (token_logprobs(reference, prompt_ids, r_ids) * r_mask).sum(1)
        pi_c = (token_logprobs(policy, prompt_ids, c_ids) * c_mask).sum(1)
        pi_r = (token_logprobs(policy, prompt_ids, r_ids) * r_mask).sum(1)
        if cfg.loss == "rpo":
            loss = rpo_loss(pi_c, pi_r, ref_c, ref_r, c_mask.sum(1), cfg.beta, cfg.rpo_alpha)
        else:
            loss = dpo_loss(pi_c, pi_r, ref_c, ref_r, cfg.beta, cfg.loss, cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens = 2 * (prompt_ids.numel() + c_ids.numel())
        # the policy forward and backward (3x) and the reference forward (1x)
        return {"loss": loss.item(), "tokens": tokens, "flops": 4 * per_token * tokens}

    state = run_loop(stage, policy, opt, step_fn, log=log)
    policy.eval()
    score = score_policy(policy, tokenizer, stage.task, n=cfg.eval_prompts, seed=cfg.seed)
    kl_prompts = [p for p, _ in prompts(stage.task, "val", cfg.kl_prompts, cfg.seed + 1)]
    kl = estimate_kl(
        policy,
        reference,
        tokenizer,
        kl_prompts,
        get_verifiable(stage.task).max_answer + 1,
        generator=step_generator(cfg.seed, cfg.steps, salt=1),
    )
    return finish(
        stage,
        {
            "step": state["step"],
            "loss": state["last"].get("loss"),
            "policy_N": n_params(policy),
            "pairs": len(pairs),
            "accuracy": score.accuracy,
            "accuracy_lo": score.accuracy_lo,
            "accuracy_hi": score.accuracy_hi,
            "gold_reward": score.reward,
            "gold_reward_lo": score.reward_lo,
            "gold_reward_hi": score.reward_hi,
            "kl": kl.kl,
            "kl_stderr": kl.stderr,
            "tokens": state["tokens"] + pair_tokens,
            "flops": state["flops"] + pair_flops + score.flops + kl.flops,
            "seconds": state["seconds"],
        },
    )
