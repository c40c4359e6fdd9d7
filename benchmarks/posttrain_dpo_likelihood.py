"""How DPO moves the likelihood of the chosen and the rejected completions: the mean change
of log pi(chosen) and log pi(rejected) (sums over the completion's tokens) from the reference
to each DPO stage, on the first 500 pairs of a pair file (docs/posttrain.md, "Why DPO and RL
did not beat SFT"). Pal et al. (2024) show DPO can raise the margin while lowering both.

    PYTHONPATH=src python benchmarks/posttrain_dpo_likelihood.py PAIRS.jsonl TASK REFERENCE DPO...
"""

from __future__ import annotations

import sys

import torch

from scalelab.posttrain.pairs import read_pairs
from scalelab.posttrain.reward import pair_tensors
from scalelab.posttrain.rollout import token_logprobs
from scalelab.posttrain.stage import build_lm, open_policy, stage_record, tokenizer_of


def main() -> None:
    pairs_file, task, reference, *stages = sys.argv[1:]
    torch.set_num_threads(1)
    ref = open_policy(reference)
    prompt_ids, c_ids, c_mask, r_ids, r_mask = pair_tensors(
        tokenizer_of(ref), task, read_pairs(pairs_file, task)[:500]
    )

    def logps(run: str) -> tuple[torch.Tensor, torch.Tensor]:
        model = build_lm(open_policy(run)).eval()
        with torch.no_grad():
            chosen = (token_logprobs(model, prompt_ids, c_ids) * c_mask).sum(1)
            rejected = (token_logprobs(model, prompt_ids, r_ids) * r_mask).sum(1)
        return chosen, rejected

    c0, r0 = logps(reference)
    print(f"reference {reference}: log p(chosen) {c0.mean():.3f}, log p(rejected) {r0.mean():.3f}")
    for run in stages:
        c, r = logps(run)
        lr = stage_record(open_policy(run))["posttrain"]["lr"]
        print(
            f"{run} (lr {lr}): d log p(chosen) {(c - c0).mean():+.3f}, d log p(rejected) "
            f"{(r - r0).mean():+.3f}, margin {((c - r) - (c0 - r0)).mean():+.3f}, share of "
            f"chosen that fell {(c < c0).float().mean():.3f}"
        )


if __name__ == "__main__":
    main()
