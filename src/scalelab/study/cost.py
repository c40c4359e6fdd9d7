"""What a planned run will cost, before it runs: its parameter/FLOP counts (from
``scalelab.accounting``, never our own formulas) and the tokens its budget resolves to.
The sweep uses these for the pending rows of the store and for its ETA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scalelab.accounting import count
from scalelab.config import RunConfig, planned_steps, run_config_from_dict


def _as_config(cfg: RunConfig | Mapping[str, Any]) -> RunConfig:
    return cfg if isinstance(cfg, RunConfig) else run_config_from_dict(cfg)


def config_counts(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any] | None:
    """``count(...).to_dict()`` for a run's config, counted as the trainer counts it
    (causal attention FLOPs for a causal model), ``None`` for an empty config."""
    if not cfg:
        return None
    rc = _as_config(cfg)
    return dict(count(rc.model, causal=rc.model.causal).to_dict())


def planned_tokens(
    cfg: RunConfig, counts: Mapping[str, Any] | None, unique_tokens: int | None
) -> int | None:
    """The training tokens a run will see, by the trainer's own budget rule (whole steps of
    ``batch_size x context`` tokens), or ``None`` where it cannot be known yet (a budget
    in epochs before the corpus is tokenized, or a budget per parameter without counts)."""
    n = (counts or {}).get("params", {}).get("non_embedding")
    needs_n = cfg.train.tokens is None and cfg.train.epochs is None
    if (cfg.train.epochs is not None and unique_tokens is None) or (needs_n and n is None):
        return None
    steps, _ = planned_steps(cfg, int(n or 0), int(unique_tokens or 0))
    return steps * cfg.train.batch_size * cfg.model.context


def planned_flops(
    cfg: RunConfig,
    counts: Mapping[str, Any] | None,
    unique_tokens: int | None,
    *,
    own: bool = False,
) -> float | None:
    """Exact training FLOPs of the run: train FLOPs per token x planned tokens. With
    ``own``, the FLOPs it spends itself: a WSD branch trains only the tokens after its
    branch point (its point's compute is that of its whole budget)."""
    tokens = planned_tokens(cfg, counts, unique_tokens)
    if own and tokens is not None and cfg.train.branch_at is not None:
        tokens -= cfg.train.branch_at
    per_token = (counts or {}).get("flops", {}).get("train_per_token")
    if tokens is None or per_token is None:
        return None
    return float(per_token) * tokens


__all__ = ["config_counts", "planned_flops", "planned_tokens"]
