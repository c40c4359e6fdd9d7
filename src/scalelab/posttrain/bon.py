"""Best-of-n against a reward model: sample n completions, keep the one it scores highest.

No training: the policy is the parent's, re-weighted by selection. Its KL to the parent is
known in closed form, KL_bon = log n - (n - 1) / n (Stiennon et al. 2020, appendix G.3;
exact when the proxy never ties, an upper bound otherwise: Beirami et al. 2024). Gao et al.
(2022, sec. 3) measure the gold reward of the kept completion against d = sqrt(KL_bon).

One sample serves every n: each validation prompt gets max(n) completions, and for each n
they are cut into max(n) / n disjoint groups of n, each group keeping its proxy-best; the
proxy and gold rewards are averaged over groups and prompts (so small n are measured on
many draws, n = max(n) on one per prompt). The gold reward is the task's grader, or a gold
reward-model run (:mod:`.gold`; Gao et al.'s protocol), with the grader's mean beside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError
from scalelab.posttrain.gold import Gold
from scalelab.posttrain.grade import mean_interval
from scalelab.posttrain.rollout import sample
from scalelab.posttrain.stage import Stage, build_lm, finish, n_params, tokenizer_of
from scalelab.posttrain.tasks import get_verifiable, prompts

if TYPE_CHECKING:
    import torch


def bon_kl(n: int) -> float:
    """KL(best-of-n || base) = log n - (n - 1) / n, in nats."""
    return math.log(n) - (n - 1) / n


def check_ns(ns: list[int]) -> list[int]:
    if not ns:
        raise ConfigError("--best-of names at least one n, e.g. --best-of 1,4,16,64,256,1024")
    bad = [n for n in ns if n < 1]
    if bad:
        raise ConfigError(f"--best-of must be >= 1 (n samples, keep the best), got {bad[0]}")
    top = max(ns)
    odd = [n for n in ns if top % n]
    if odd:
        raise ConfigError(
            f"--best-of {odd[0]} does not divide the largest n ({top}): the samples are cut into "
            "groups of n, so give divisors of it (powers of 2 or 4, e.g. 1,4,16,64)"
        )
    return sorted(set(ns))


def select_best(proxy: torch.Tensor, n: int) -> torch.Tensor:
    """For proxy rewards [P, K] (K a multiple of n): the index of the proxy-best of each
    group of n consecutive samples, [P, K / n]."""
    import torch

    P, K = proxy.shape
    groups = proxy.view(P, K // n, n)
    offset = torch.arange(K // n)[None] * n
    return groups.argmax(-1) + offset


def run_bon(
    stage: Stage, rm_parent: Any, ns: list[int], log: Any = None, gold_parent: Any = None
) -> dict[str, Any]:
    import torch

    from scalelab.posttrain.rewardmodel import rewards

    cfg = stage.cfg
    top = max(ns)
    task = get_verifiable(stage.task)
    tokenizer = tokenizer_of(stage.parent)
    policy = build_lm(stage.parent).eval()
    rm = build_lm(rm_parent).eval()
    gold_of = Gold(stage.task, gold_parent)
    val = [p for p, _ in prompts(stage.task, "val", cfg.kl_prompts, cfg.seed + 1)]
    g = torch.Generator().manual_seed(cfg.seed)
    proxy_rows, gold_rows, grader_rows = [], [], []
    flops, tokens = 0.0, 0
    per_batch = max(1, 4096 // top)  # prompts sampled together
    for b in range(0, len(val), per_batch):
        chunk = [p for p in val[b : b + per_batch] for _ in range(top)]
        r = sample(policy, tokenizer, chunk, task.max_answer + 1, generator=g)
        with torch.no_grad():
            proxy = rewards(rm, r.prompt_ids, r.new_ids, r.mask)
        from scalelab.posttrain.rollout import sequence_flops

        gold, graded, gold_flops = gold_of(r)
        flops += r.flops + sequence_flops(rm, r.prompt_ids, r.new_ids) + gold_flops
        tokens += r.tokens
        proxy_rows.append(proxy.view(-1, top))
        gold_rows.append(torch.tensor(gold).view(-1, top))
        grader_rows.append(torch.tensor(graded).view(-1, top))
        if log:
            log(f"sampled {min(b + per_batch, len(val))} of {len(val)} prompts x {top}")
    proxy_all, gold_all = torch.cat(proxy_rows), torch.cat(gold_rows)
    grader_all = torch.cat(grader_rows)
    common = {
        "method": "bon",
        "task": stage.task,
        "reward": stage.reward,
        "reward_run_id": rm_parent.run_id,
        "reward_N": n_params(rm),
        "policy_N": n_params(policy),
        **(gold_of.keys() if gold_of.is_model else {}),
    }
    curve = []
    for n in ns:
        pick = select_best(proxy_all, n)
        gold = gold_all.gather(1, pick)
        graded = grader_all.gather(1, pick)
        prox = proxy_all.gather(1, pick)
        # one value per prompt (its groups averaged): prompts are the independent draws
        g_mean, g_lo, g_hi = mean_interval(gold.mean(1).tolist())
        p_mean, _, _ = mean_interval(prox.mean(1).tolist())
        # the share of kept completions that are right, per prompt, then over prompts
        a_mean, a_lo, a_hi = mean_interval((graded == 1.0).float().mean(1).tolist())
        curve.append(
            {
                **common,
                "run_id": f"{stage.run_id}-n{n}",
                "n": n,
                "kl": bon_kl(n),
                "gold_reward": g_mean,
                "gold_reward_lo": g_lo,
                "gold_reward_hi": g_hi,
                "proxy_reward": p_mean,
                **({"grader_reward": float(graded.mean())} if gold_of.is_model else {}),
                "accuracy": a_mean,
                "accuracy_lo": max(a_lo, 0.0),
                "accuracy_hi": min(a_hi, 1.0),
                "tokens": tokens * n // top,
                "flops": flops * n / top,
            }
        )
    best = max(curve, key=lambda c: c["gold_reward"])
    return finish(
        stage,
        {
            **common,
            "step": 0,
            "n_values": ns,
            "prompts": len(val),
            "best_n": best["n"],
            "kl": best["kl"],
            "gold_reward": best["gold_reward"],
            "proxy_reward": best["proxy_reward"],
            "accuracy": best["accuracy"],
            "accuracy_lo": best["accuracy_lo"],
            "accuracy_hi": best["accuracy_hi"],
            "tokens": tokens,
            "flops": flops,
            "seconds": 0.0,
            "curve": curve,
        },
    )
