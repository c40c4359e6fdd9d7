"""Score documents with a finished run's model (:mod:`scalelab.runs` opens it), one per row.

The capacity and extraction measures both need a trained model and the log-probability
it gives every token of a document *from the document's start*: the training stream cuts
windows anywhere, but a fact is only attributable to a model if the model sees the name
before the attribute, so every document is scored in a row of its own that starts at the
``eos`` before it (what the model saw in training whenever the document was not cut).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from scalelab.errors import StoreError

if TYPE_CHECKING:
    import torch
    from torch import nn


def doc_logprobs(
    model: nn.Module,
    tokens: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    *,
    bos: int,
    context: int,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """log2 p(token t | the document's tokens before t) for every token of the documents
    ``tokens[start : start + length]``, conditioned on ``bos`` (the ``eos`` that precedes
    each document in the stream). Returns an array shaped like ``tokens`` (NaN where no
    document covers a position). Every document must fit in ``context`` tokens.
    """
    import torch

    longest = int(lengths.max()) if len(lengths) else 0
    if longest > context:
        raise StoreError(
            f"documents of {longest} tokens do not fit the model's context of {context}: "
            "train with a longer model.context or shorter documents"
        )
    out = np.full(len(tokens), np.nan)
    dev = torch.device(device)
    model = model.to(dev)
    with torch.no_grad():
        for lo in range(0, len(starts), batch_size):
            s, n = starts[lo : lo + batch_size], lengths[lo : lo + batch_size]
            width = int(n.max())
            rows = np.full((len(s), width + 1), bos, dtype=np.int64)
            for i, (a, k) in enumerate(zip(s, n, strict=True)):
                rows[i, 1 : k + 1] = tokens[a : a + k]
            x = torch.from_numpy(rows[:, :-1]).to(dev)
            y = torch.from_numpy(rows[:, 1:]).to(dev)
            logp = torch.log_softmax(model(x).float(), dim=-1)
            got = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).cpu().numpy() / np.log(2)
            for i, (a, k) in enumerate(zip(s, n, strict=True)):
                out[a : a + k] = got[i, :k]
    return out


__all__ = ["doc_logprobs"]
