"""Learning-rate schedules that end exactly with the run.

A schedule is a function of the update index ``step`` (0-based) and the run's own number
of updates ``total``. The last update (``step = total - 1``) always runs at the final rate
``lr * min_lr_ratio`` (cosine, WSD): a scaling law fitted on runs whose schedule was cut
short, or stretched for a longer run, mis-estimates the loss of every run but the longest
(Hoffmann et al. 2022, sec. 3 and fig. A1).

* ``cosine``: linear warmup, then half a cosine from ``lr`` to ``lr * min_lr_ratio``
  (Loshchilov & Hutter 2017, as used by GPT-3 and Chinchilla).
* ``wsd``: warmup, stable at ``lr``, then a decay (the *cooldown*) over the last
  ``decay_fraction`` of the updates (Hu et al. 2024, "MiniCPM"; Hägele et al. 2024), of
  shape ``train.cooldown``: ``linear``, or ``1-sqrt`` (``1 - sqrt(x)`` of the cooldown's
  progress ``x``, which Hägele et al. 2024, sec. 3 and fig. 5, find better than linear).
  Because the stable phase does not depend on the run's length, a run of any shorter
  length can branch off a longer run's stable state and run only its own cooldown
  (:mod:`scalelab.train.branch`).
* ``constant``: warmup, then ``lr``.

The warmup is ``train.warmup`` of the run's updates, or, when ``train.warmup_tokens`` is
set, that many tokens whatever the run's length (rounded to whole updates of
``tokens_per_step``). Hägele et al. 2024 fix the warmup in steps: then every run of a ladder
warms up alike, and a WSD branch off a longer run is the run trained from scratch to its
budget (a warmup that is a fraction of the run gives the parent a longer one).
"""

from __future__ import annotations

import math

from scalelab.config import TrainConfig


def warmup_steps(cfg: TrainConfig, total: int, tokens_per_step: int | None = None) -> int:
    """The updates of the warmup: ``train.warmup_tokens`` in whole updates of
    ``tokens_per_step`` tokens (needed then), else ``train.warmup`` of ``total``."""
    if total <= 1:
        return 0
    if cfg.warmup_tokens is None:
        return min(total - 1, round(cfg.warmup * total))
    if not tokens_per_step:
        raise ValueError("train.warmup_tokens needs the run's tokens_per_step")
    return min(total - 1, round(cfg.warmup_tokens / tokens_per_step))


def cooldown_start(cfg: TrainConfig, total: int, tokens_per_step: int | None = None) -> int:
    """The first update of a WSD run's cooldown: updates before it run at the peak rate
    (after warmup), whatever the run's length."""
    n_decay = max(1, round(cfg.decay_fraction * total))
    return max(warmup_steps(cfg, total, tokens_per_step), total - n_decay)


def lr_at(step: int, total: int, cfg: TrainConfig, tokens_per_step: int | None = None) -> float:
    """Learning rate of update ``step`` (0-based) in a run of ``total`` updates of
    ``tokens_per_step`` tokens (needed with ``train.warmup_tokens`` only)."""
    if not 0 <= step < total:
        raise ValueError(f"step {step} outside a run of {total} updates")
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    warm = warmup_steps(cfg, total, tokens_per_step)
    if step < warm:
        return peak * (step + 1) / warm
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "wsd":
        start = cooldown_start(cfg, total, tokens_per_step)
        if step < start:
            return peak
        span = total - 1 - start
        frac = 1.0 if span <= 0 else (step - start) / span
        if cfg.cooldown == "1-sqrt":
            return floor + (peak - floor) * (1.0 - math.sqrt(frac))
        return peak + (floor - peak) * frac
    span = total - 1 - warm
    frac = 1.0 if span <= 0 else (step - warm) / span
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))
