"""Greedy k-extractable memorization (Carlini et al. 2022, "Quantifying Memorization Across
Neural Language Models", sec. 2): a sequence is extractable with a k-token prompt when,
given its k tokens before, greedy decoding emits its next L tokens exactly.

Measured for three kinds of sequence:

* ``canary``: the planted random sequences (``data.canaries``), per repeat count; the
  prompt is the last k tokens of the canary's prefix, the target its secret;
* ``train``: a fixed sample of windows of the training split (``samples`` of them, seeded);
* ``val``: the same on the validation split, the control: what the model emits for text
  it never saw (continuations a language model predicts without memorising).

Greedy decoding reproduces the target exactly if and only if at every one of the L steps
the most likely next token, given the prompt and the target's tokens so far, is the
target's next token (a greedy path that never leaves the target sees exactly those
prefixes). So one teacher-forced forward pass per sequence decides it, which is what
:func:`extractable` computes: the same answer as step-by-step decoding, L times cheaper.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalelab.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

PREFIXES = (8, 16, 32)
DEFAULT_LENGTH = 32
DEFAULT_SAMPLES = 256


def extractable(
    model: nn.Module, prompts: np.ndarray, targets: np.ndarray, *, batch_size: int = 128
) -> np.ndarray:
    """Boolean per row: does greedy decoding from ``prompts[i]`` emit ``targets[i]``?"""
    import torch

    k, n_target = prompts.shape[1], targets.shape[1]
    seq = np.concatenate([prompts, targets[:, :-1]], axis=1).astype(np.int64)
    out = np.zeros(len(prompts), dtype=bool)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(seq), batch_size):
            x = torch.from_numpy(seq[lo : lo + batch_size])
            pred = model(x)[:, k - 1 :, :].argmax(dim=-1).numpy()
            out[lo : lo + batch_size] = (pred == targets[lo : lo + batch_size]).all(axis=1)
    assert pred.shape[1] == n_target
    return out


def sample_windows(
    tokens: np.ndarray, count: int, prompt: int, length: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` seeded (prompt, target) windows of ``tokens``: prompts [count, prompt],
    targets [count, length], starting anywhere the window fits."""
    high = len(tokens) - prompt - length
    if high < 1:
        raise ConfigError(
            f"a split of {len(tokens)} tokens holds no window of {prompt} + {length} tokens"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE7A0]))
    starts = np.sort(rng.integers(0, high, size=count))
    idx = starts[:, None] + np.arange(prompt + length)
    win = np.asarray(tokens)[idx].astype(np.int64)
    return win[:, :prompt], win[:, prompt:]


@dataclass
class MemorizationResult:
    """``scalelab memorization RUN``: ``rows`` is one entry per (source, repeats, k)."""

    run_id: str
    corpus: str
    params: int
    non_embedding_params: int
    epochs: float
    length: int
    prefixes: tuple[int, ...]
    rows: list[dict[str, Any]]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_extraction(
    model: nn.Module,
    train: np.ndarray,
    val: np.ndarray,
    *,
    canaries: Any = None,
    prefixes: tuple[int, ...] = PREFIXES,
    length: int = DEFAULT_LENGTH,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    epochs: float = 1.0,
) -> list[dict[str, Any]]:
    """The extractable share of canaries (by repeat count), training and validation
    windows at every prompt length in ``prefixes``."""
    rows: list[dict[str, Any]] = []
    longest = max(prefixes)
    for source, split in (("train", train), ("val", val)):
        prompts, targets = sample_windows(split, samples, longest, length, seed)
        for k in prefixes:
            hit = extractable(model, prompts[:, longest - k :], targets)
            rows.append(_row(source, None, k, hit, epochs))
    if canaries is not None:
        if max(prefixes) > canaries.prefix:
            raise ConfigError(
                f"prompts of {max(prefixes)} tokens need data.canaries.prefix >= {max(prefixes)}"
            )
        for r in np.unique(canaries.repeats):
            sel = canaries.repeats == r
            toks = canaries.tokens[sel]
            for k in prefixes:
                prompt = toks[:, canaries.prefix - k : canaries.prefix]
                hit = extractable(model, prompt, toks[:, canaries.prefix :])
                rows.append(_row("canary", int(r), k, hit, epochs))
    return rows


def _row(source: str, repeats: int | None, k: int, hit: np.ndarray, epochs: float) -> dict:
    return {
        "source": source,
        "repeats": repeats,
        "exposures": None if repeats is None else repeats * epochs,
        "k": k,
        "n": len(hit),
        "extracted": int(hit.sum()),
        "share": float(hit.mean()) if len(hit) else 0.0,
    }


def memorization(
    run_dir: str | Path,
    *,
    prefixes: tuple[int, ...] = PREFIXES,
    length: int | None = None,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    db: str | Path | None = None,
    write: bool = True,
) -> MemorizationResult:
    """Measure the extractable share of a finished run's canaries and windows; write
    ``RUN/memorization.json`` and, with ``db``, a point of kind ``memorization``."""
    from scalelab.data import load_tokens
    from scalelab.memorization.canaries import canaries_for
    from scalelab.runs import open_run

    t0 = time.perf_counter()
    if not prefixes or min(prefixes) < 1:
        raise ConfigError(f"prefix lengths must be positive integers, got {prefixes}")
    run = open_run(run_dir)
    cfg, summary = run.cfg, run.summary
    data = load_tokens(cfg.data, cfg.model.vocab_size)
    if cfg.data.fraction < 1.0:
        data = data.fraction_of_train(cfg.data.fraction)
    spec = cfg.section("data.canaries")
    can = canaries_for(data, spec) if spec is not None else None
    length = length or (can.length if can is not None else DEFAULT_LENGTH)
    if max(prefixes) + length > cfg.model.context + 1:
        raise ConfigError(
            f"a {max(prefixes)}-token prompt and a {length}-token target do not fit the "
            f"model's context of {cfg.model.context}: use shorter prefixes (--prefix)"
        )
    model = run.load_model(fork_rng=False)
    epochs = float(summary.get("epochs") or 0.0)
    rows = measure_extraction(
        model,
        np.asarray(data.train),
        np.asarray(data.val),
        canaries=can,
        prefixes=tuple(prefixes),
        length=length,
        samples=samples,
        seed=seed,
        epochs=epochs,
    )
    params = summary.get("params") or {}
    result = MemorizationResult(
        run_id=str(summary.get("run_id") or Path(run_dir).name),
        corpus=cfg.data.corpus,
        params=int(params.get("total", 0)),
        non_embedding_params=int(params.get("non_embedding", 0)),
        epochs=epochs,
        length=length,
        prefixes=tuple(prefixes),
        rows=rows,
        seconds=time.perf_counter() - t0,
    )
    if write:
        from scalelab.memorization.points import put_technique_point
        from scalelab.rundir import write_json

        write_json(Path(run_dir) / "memorization.json", result.to_dict())
        if db is not None:
            put_technique_point(
                db, run_dir, kind="memorization", technique="greedy", extra=result.to_dict()
            )
    return result


__all__ = [
    "PREFIXES",
    "MemorizationResult",
    "extractable",
    "measure_extraction",
    "memorization",
    "sample_windows",
]
