"""What a finished run trained on: its training stream, the corpus positions in it, and the
windows it was shown.

A run does not always see its whole training split: ``data.select`` keeps some documents or
chunks, ``data.fraction`` keeps the first share of every tile of the stream, and the
plug-ins' data hooks then change what is left (``data.canaries`` plants its copies;
``scalelab.train.stream``, in that order). A measurement of what the run *memorised* must look only at what it saw: the
capacity measure credits only the people (or strings) whose whole document is in the
stream, and the extraction measure samples its training windows from the windows the run
was given (:class:`scalelab.train.batches.TrainSampler`, replayed with the run's seed).

Positions are found by running the same cutting functions the trainer runs
(``apply_selection``'s units, ``TokenData.fraction_of_train``) on an array of corpus
positions instead of tokens, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scalelab.config import RunConfig
    from scalelab.data.cache import TokenData


def seen_positions(cfg: RunConfig, data: TokenData) -> np.ndarray:
    """The positions of ``data.train`` (the whole training split) that the run's training
    stream holds, in stream order, before canaries are planted."""
    pos = np.arange(len(data.train), dtype=np.int64)
    if cfg.data.select is not None:
        from scalelab.data.subset_file import apply_selection, load_selection, units_of

        sel = load_selection(cfg.data.select)
        apply_selection(data, sel)  # the trainer's checks: a selection of other data fails
        units = units_of(data, sel.unit, sel.chunk_tokens)
        kept = np.asarray(sel.kept, dtype=np.int64)
        pos = np.concatenate(
            [pos[s:e] for s, e in zip(units.starts[kept], units.ends[kept], strict=True)]
        )
    if cfg.data.fraction < 1.0:
        pos = np.asarray(
            replace(data, train=pos, unique_tokens=len(pos))
            .fraction_of_train(cfg.data.fraction)
            .train
        )
    return pos


def documents_seen(starts: np.ndarray, lengths: np.ndarray, seen: np.ndarray, n: int) -> np.ndarray:
    """Boolean per document ``[start, start + length)`` of an ``n``-token split: is every one
    of its tokens among the ``seen`` positions? (A document cut by ``data.fraction`` is not
    counted: the model never read its attributes after the cut with its name before them.)"""
    mask = np.zeros(n + 1, dtype=np.int64)
    mask[seen] = 1
    run = np.concatenate([[0], np.cumsum(mask)])  # run[i] = seen positions before i
    return run[starts + lengths] - run[starts] == lengths


def training_stream(cfg: RunConfig, data: TokenData) -> TokenData:
    """``data`` as the trainer cut it: selection, fraction, then the active plug-ins' data
    hooks (canaries), by the trainer's own :func:`scalelab.train.stream.training_stream`."""
    from scalelab.train.stream import training_stream as stream

    return stream(cfg, data)[0]  # type: ignore[return-value]


def samples_trained(cfg: RunConfig, summary: dict[str, Any]) -> int:
    """Training windows the run was given: optimizer steps x batch size (``summary.step``)."""
    return int(summary.get("step") or summary.get("steps") or 0) * cfg.train.batch_size


def seen_window_starts(cfg: RunConfig, summary: dict[str, Any], stream: np.ndarray) -> np.ndarray:
    """Start offsets in ``stream`` of every distinct training window (``context + 1``
    tokens) the run was given, replayed from its seed and step count."""
    from scalelab.train.batches import TrainSampler

    sampler = TrainSampler(np.asarray(stream), cfg.model.context, cfg.train.seed)
    return np.unique(sampler.starts(0, samples_trained(cfg, summary)))


__all__ = [
    "documents_seen",
    "samples_trained",
    "seen_positions",
    "seen_window_starts",
    "training_stream",
]
