"""KL(policy || reference) of completions, estimated from the policy's own samples.

For a completion y ~ pi(.|x), log pi(y|x) - log ref(y|x) (summed over its tokens) is an
unbiased estimate of the sequence KL (Schulman 2020, "Approximating KL divergence": k1);
the mean over samples is what Gao et al. (2022) put on their x-axis (in nats, d = sqrt(KL)).
Inside the GRPO loss the per-token penalty is the k3 estimate
exp(ref - pi) - (ref - pi) - 1 (Shao et al. 2024, eq. 4), which is never negative and has
lower variance. Both are exactly 0 when the policy is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalelab.posttrain.rollout import Rollout, sample, sequence_flops, token_logprobs

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer


def k1(policy_lp: torch.Tensor, ref_lp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per completion: sum over its tokens of log pi - log ref, [B]."""
    return ((policy_lp - ref_lp) * mask).sum(1)


def k3(policy_lp: torch.Tensor, ref_lp: torch.Tensor) -> torch.Tensor:
    """Per token: exp(ref - pi) - (ref - pi) - 1 (>= 0), [B, M]."""
    import torch

    diff = ref_lp - policy_lp
    return torch.exp(diff) - diff - 1


@dataclass
class KLEstimate:
    kl: float  # mean over completions, nats per completion
    stderr: float
    rollout: Rollout
    flops: float


def estimate_kl(
    policy: nn.Module,
    reference: nn.Module,
    tokenizer: Tokenizer,
    prompt_list: list[str],
    max_new_tokens: int,
    *,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
) -> KLEstimate:
    """Sample one completion of each prompt from ``policy``; their mean k1 and its stderr."""
    import torch

    r = sample(
        policy,
        tokenizer,
        prompt_list,
        max_new_tokens,
        generator=generator,
        temperature=temperature,
    )
    with torch.no_grad():
        lp = token_logprobs(policy, r.prompt_ids, r.new_ids)
        ref = token_logprobs(reference, r.prompt_ids, r.new_ids)
    per = k1(lp, ref, r.mask)
    n = per.numel()
    stderr = float(per.std() / n**0.5) if n > 1 else 0.0
    flops = r.flops + sequence_flops(policy, r.prompt_ids, r.new_ids)
    flops += sequence_flops(reference, r.prompt_ids, r.new_ids)
    return KLEstimate(float(per.mean()), stderr, r, flops)
