"""Prompts in, completions out: sampling, the completions' log-probabilities, and their cost.

A prompt is encoded as ``[eos] + its characters``: pretraining documents are joined with an
eos after each one, so a demonstration always follows an eos and the model meets a prompt
in the place it learnt it. A completion is the sampled tokens up to and including the first
eos (``mask`` marks them); the text the grader reads stops before that eos.

Sampling is :func:`scalelab.models.generate.generate` (batched, key-value cache). FLOPs are
counted from the accounting's forward FLOPs per token (``scalelab count``) times the tokens
each forward reads: a sampled token costs one forward of one token, a log-probability pass
one forward of the whole sequence, a backward twice its forward (Kaplan et al. 2020, sec.
2.1: training = 3 x forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer


@dataclass
class Rollout:
    """A batch of sampled completions (prompt ids [B, P], new ids [B, M], mask [B, M])."""

    prompts: list[str]
    prompt_ids: torch.Tensor
    new_ids: torch.Tensor
    mask: torch.Tensor  # 1.0 for the completion's tokens (its eos included), 0.0 after
    completions: list[str]  # the text before the eos
    flops: float  # of sampling

    @property
    def tokens(self) -> int:
        return int(self.mask.sum())


def forward_flops_per_token(model: nn.Module) -> float:
    """Forward FLOPs per token of ``model`` at its context (accounting, not a measurement)."""
    from scalelab.accounting import count

    return float(count(model.cfg, causal=True).flops.forward_per_token)


def encode_prompts(tokenizer: Tokenizer, prompts: list[str]) -> torch.Tensor:
    import torch

    ids = [[tokenizer.eos_id, *tokenizer.encode(p)] for p in prompts]
    if len({len(i) for i in ids}) != 1:
        raise ValueError("the prompts of one batch must have one length (a task's prompts do)")
    return torch.tensor(ids, dtype=torch.long)


def completion_mask(new_ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1.0 up to and including each row's first eos (every token when there is none)."""
    is_eos = (new_ids == eos_id).long()
    before = is_eos.cumsum(1) - is_eos  # eos tokens strictly before each position
    return (before == 0).float()


def encode_completions(
    tokenizer: Tokenizer, completions: list[str], width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Completions as new tokens [B, width] (each closed by eos, padded with eos) and mask."""
    import torch

    eos = tokenizer.eos_id
    ids = torch.full((len(completions), width), eos, dtype=torch.long)
    for i, c in enumerate(completions):
        toks = tokenizer.encode(c)[: width - 1]
        ids[i, : len(toks)] = torch.tensor(toks, dtype=torch.long)
    return ids, completion_mask(ids, eos)


def decode_completions(tokenizer: Tokenizer, new_ids: torch.Tensor, eos_id: int) -> list[str]:
    out = []
    for row in new_ids.tolist():
        cut = row.index(eos_id) if eos_id in row else len(row)
        out.append(tokenizer.decode(row[:cut]))
    return out


def sample(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample one completion per prompt (``temperature = 0``: greedy)."""
    import torch

    from scalelab.models.generate import generate

    prompt_ids = encode_prompts(tokenizer, prompts)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = generate(
            model,
            prompt_ids,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            generator=generator,
            eos=tokenizer.eos_id,  # a row stops at its eos; the slots after it hold eos
        )
    model.train(was_training)
    new_ids = out.completion
    eos = tokenizer.eos_id
    return Rollout(
        prompts=list(prompts),
        prompt_ids=prompt_ids,
        new_ids=new_ids,
        mask=completion_mask(new_ids, eos),
        completions=decode_completions(tokenizer, new_ids, eos),
        flops=float(out.flops),
    )


def token_logprobs(model: Any, prompt_ids: torch.Tensor, new_ids: torch.Tensor) -> torch.Tensor:
    """log pi(new token t | prompt, earlier new tokens) for each new token, [B, M] (with the
    graph, when grad is on): one forward of the whole sequence."""
    import torch

    seq = torch.cat([prompt_ids, new_ids], dim=1)
    logits = model(seq[:, :-1]).float()
    logits = logits[:, prompt_ids.shape[1] - 1 :]
    return torch.log_softmax(logits, dim=-1).gather(-1, new_ids[..., None]).squeeze(-1)


def sequence_flops(model: nn.Module, prompt_ids: torch.Tensor, new_ids: torch.Tensor) -> float:
    """Forward FLOPs of one :func:`token_logprobs` pass."""
    rows, width = prompt_ids.shape[0], prompt_ids.shape[1] + new_ids.shape[1] - 1
    return forward_flops_per_token(model) * rows * width
