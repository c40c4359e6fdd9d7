"""``budgets = "branches"``: one WSD run per size, every shorter budget a branch off it.

A ladder that trains each (size, budget) pair from scratch repeats the early training of a
size once per budget. With the warmup-stable-decay schedule the stable phase does not depend
on the run's length, so one run per size to its longest budget can keep its state where each
shorter run's cooldown would start, and the shorter budgets become branches that train only
their cooldown (Hägele et al. 2024, sec. 4; the trainer's side is
:mod:`scalelab.train.branch`).

:func:`branch_configs` turns a grid's runs into that plan: the runs that differ only in their
budget form a group; the longest is the parent (``train.save_at`` = its branches' points),
the others its branches (``train.branch_of``/``branch_at``), all WSD with the study's
cooldown fraction, and one warmup in tokens for the whole ladder (``train.warmup_tokens``:
the study's own, else ``train.warmup`` of its longest run), so that each branch is the
run trained from scratch to its budget, not one that inherited a warmup its twin lacks.
Their axes are the grid's own (the budget label included), so laws and
reports read a branched study as they read a dedicated one. :func:`branch_needs` tells the
sweep's run graph that a branch needs its parent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from scalelab.accounting import count
from scalelab.config import RunConfig, planned_steps
from scalelab.errors import ConfigError
from scalelab.study.graph import Needs
from scalelab.study.studyfile import Study
from scalelab.train.schedule import cooldown_start, warmup_steps

BUDGET_KEYS = ("tokens", "tokens_per_param", "epochs")


def _wsd(cfg: RunConfig, cooldown: float | None, warmup_tokens: int) -> RunConfig:
    train = dataclasses.replace(
        cfg.train,
        schedule="wsd",
        decay_fraction=cooldown if cooldown is not None else cfg.train.decay_fraction,
        warmup_tokens=warmup_tokens,
    )
    return dataclasses.replace(cfg, train=train)


def ladder_warmup(configs: Sequence[RunConfig], cooldown: float | None = None) -> int:
    """One warmup in tokens for a whole ladder: the runs' own ``train.warmup_tokens`` when
    they set one (the smallest), else ``train.warmup`` of the *longest* run (the parent's own
    warmup: the run that does most of the training warms up as a dedicated run of its length
    would), in whole steps, but never past the step where the shortest run's cooldown starts
    (``cooldown`` of its length), so every branch point stays in the stable phase.

    One number for all: a warmup that is a fraction of each run's length would give a parent
    a longer warmup than its branches' dedicated twins (docs/branches.md: 0.08-0.10 nats at
    4x shorter on python-stdlib); Hägele et al. 2024 fix it in steps. The longest run's, not
    the shortest's: with 5% of the demo's shortest budget (24 steps) the 4x held-out model
    (615k parameters, 1,953 steps at lr 3e-3) ended 0.11 nats worse than with 5% of its own
    (98 steps): 1.4277 against 1.3153 (docs/branches.md, "The demo both ways")."""
    fixed = [c.train.warmup_tokens for c in configs if c.train.warmup_tokens is not None]
    if fixed:
        return min(fixed)

    def tokens(c: RunConfig) -> int:
        return _steps(c) * c.train.batch_size * c.model.context

    longest, shortest = max(configs, key=tokens), min(configs, key=tokens)
    steps = _steps(longest)
    warm = min(steps - 1, round(longest.train.warmup * steps)) if steps > 1 else 0
    per_step = longest.train.batch_size * longest.model.context
    short = _steps(shortest)
    frac = cooldown if cooldown is not None else shortest.train.decay_fraction
    short_cool = short - max(1, round(frac * short)) if short > 1 else 0
    warm_tokens = min(
        warm * per_step, short_cool * shortest.train.batch_size * shortest.model.context
    )
    return (warm_tokens // per_step) * per_step


def _group_key(cfg: RunConfig) -> str:
    d = cfg.to_dict()
    for k in BUDGET_KEYS:
        d["train"].pop(k)
    d["train"].pop("device")
    return json.dumps(d, sort_keys=True, default=str)


def _steps(cfg: RunConfig) -> int:
    n = count(cfg.model, causal=cfg.model.causal).params.non_embedding
    return planned_steps(cfg, int(n), 0)[0]


def branch_configs(
    study: Study, configs: Sequence[RunConfig], labels: Sequence[str]
) -> list[RunConfig]:
    """The grid's run configs (``labels`` name them in errors) as one parent per group and
    its branches, in the grid's order."""
    if not configs:
        return []
    warmup = ladder_warmup(configs, study.cooldown)
    wsd = [_wsd(c, study.cooldown, warmup) for c in configs]
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(wsd):
        groups.setdefault(_group_key(c), []).append(i)
    out: list[RunConfig] = list(wsd)
    for members in groups.values():
        steps = {i: _steps(wsd[i]) for i in members}
        top = max(members, key=lambda i: (steps[i], -i))  # the longest; ties: the first
        parent = wsd[top]
        tokens_per_step = parent.train.batch_size * parent.model.context
        total = steps[top]
        warm = warmup_steps(parent.train, total, tokens_per_step)
        cool = cooldown_start(parent.train, total, tokens_per_step)
        points: dict[int, int] = {}  # member -> branch point (tokens)
        for i in members:
            if i == top:
                continue
            start = cooldown_start(wsd[i].train, steps[i], tokens_per_step)
            if not warm <= start <= cool:
                raise ConfigError(
                    f"budgets = 'branches': the run {labels[i]} starts its cooldown at step "
                    f"{start}, outside the stable phase of the longest run {labels[top]} "
                    f"(steps {warm} to {cool}): drop that budget, lower train.warmup_tokens, or use "
                    "dedicated budgets"
                )
            points[i] = start * tokens_per_step
        saved = tuple(sorted(set(points.values())))
        out[top] = dataclasses.replace(
            parent, train=dataclasses.replace(parent.train, save_at=saved)
        )
        for i, at in points.items():
            train = dataclasses.replace(wsd[i].train, branch_of=out[top].run_id(), branch_at=at)
            out[i] = dataclasses.replace(wsd[i], train=train)
    return out


def branch_needs(configs: Sequence[RunConfig]) -> Needs:
    """A branch needs its parent (when the parent is one of ``configs``; a parent trained
    elsewhere is found, or reported missing, by the trainer)."""
    by_id = {c.run_id(): c for c in configs}

    def needs(cfg: RunConfig) -> list[RunConfig]:
        parent = cfg.train.branch_of
        return [by_id[parent]] if parent is not None and parent in by_id else []

    return needs


__all__ = ["branch_configs", "branch_needs", "ladder_warmup"]
