"""Scoring: log-likelihood of choices under a causal LM, and the binomial (Wilson) interval.

Each (context, choice) pair is tokenized apart and joined, as evaluation harnesses do (so
every choice follows the same context tokens), prefixed with ``eos`` (a document starts
after one in the training stream), and cut from the left to the model's context. The score
of a choice is the sum of its tokens' log-probabilities, or that sum per UTF-8 byte of the
choice (``normalize="bytes"``), so a longer choice is not penalised for its length alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from scalelab.data import Tokenizer
    from scalelab.tasks.zeroshot import Item


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (Wilson 1927), 95% by default.

    Unlike the normal approximation p +- z sqrt(p(1-p)/n), it stays inside [0, 1] and is
    not empty at p = 0 or 1, where small models and short tests often are.
    """
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def choice_logprobs(
    model: nn.Module,
    pairs: Sequence[tuple[list[int], list[int]]],
    *,
    context: int,
    batch_size: int = 64,
) -> list[float]:
    """Sum of log p(choice tokens | context tokens) for each ``(context_ids, choice_ids)``;
    the context is cut from the left so that context + choice fits ``context`` inputs."""
    import torch

    scores: list[float] = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for b in range(0, len(pairs), batch_size):
            chunk = pairs[b : b + batch_size]
            seqs, n_choice = [], []
            for ctx, ch in chunk:
                seq = (ctx + ch)[-(context + 1) :]
                seqs.append(seq)
                n_choice.append(min(len(ch), len(seq) - 1))
            width = max(len(s) for s in seqs) - 1
            inp = torch.zeros(len(seqs), width, dtype=torch.long)
            tgt = torch.zeros(len(seqs), width, dtype=torch.long)
            mask = torch.zeros(len(seqs), width, dtype=torch.bool)
            for i, (s, k) in enumerate(zip(seqs, n_choice, strict=True)):
                t = torch.tensor(s, dtype=torch.long)
                inp[i, : len(s) - 1] = t[:-1]
                tgt[i, : len(s) - 1] = t[1:]
                mask[i, len(s) - 1 - k : len(s) - 1] = True
            logits = model(inp.to(device)).float()
            logp = logits.log_softmax(-1).gather(-1, tgt.to(device).unsqueeze(-1)).squeeze(-1)
            scores.extend((logp * mask.to(device)).sum(-1).tolist())
    return scores


def score_items(
    model: nn.Module,
    tokenizer: Tokenizer,
    items: Sequence[Item],
    *,
    context: int,
    normalize: str | None = None,
    batch_size: int = 64,
) -> list[int]:
    """The index of the highest-scoring choice of each item."""
    eos = [tokenizer.eos_id]
    pairs, spans = [], []
    for item in items:
        ctx = eos + tokenizer.encode(item.context)
        spans.append((len(pairs), len(item.choices)))
        for ch in item.choices:
            ids = tokenizer.encode(ch)
            pairs.append((ctx[-context:], ids[: context // 2]))
    logps = choice_logprobs(model, pairs, context=context, batch_size=batch_size)
    picks = []
    for item, (start, k) in zip(items, spans, strict=True):
        s = logps[start : start + k]
        if normalize == "bytes":
            s = [v / max(1, len(c.encode("utf-8"))) for v, c in zip(s, item.choices, strict=True)]
        picks.append(max(range(k), key=s.__getitem__))
    return picks
