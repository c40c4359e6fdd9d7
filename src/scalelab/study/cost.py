"""What a planned run will cost, before it runs: its parameter/FLOP counts (from
``scalelab.accounting``, never our own formulas) and the tokens its budget resolves to.
The sweep uses these for the pending rows of the store and for its ETA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scalelab.config import RunConfig, run_config_from_dict


def _as_config(cfg: RunConfig | Mapping[str, Any]) -> RunConfig:
    return cfg if isinstance(cfg, RunConfig) else run_config_from_dict(cfg)


def config_counts(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any] | None:
    """``count(cfg).to_dict()`` for a run's config (``None`` for an empty config)."""
    if not cfg:
        return None
    from scalelab.accounting import count

    return dict(count(_as_config(cfg)).to_dict())


def planned_tokens(
    cfg: RunConfig, counts: Mapping[str, Any] | None, unique_tokens: int | None
) -> int | None:
    """The training tokens a run's budget asks for, or ``None`` where it cannot be known
    yet (a budget in epochs before the corpus is tokenized)."""
    t = cfg.train
    if t.tokens is not None:
        return int(t.tokens)
    if t.tokens_per_param is not None:
        n = (counts or {}).get("params", {}).get(TOKENS_PER_PARAM_N)
        return None if n is None else int(t.tokens_per_param * n)
    if t.epochs is not None:
        return None if unique_tokens is None else int(t.epochs * unique_tokens)
    return None


def planned_flops(
    cfg: RunConfig, counts: Mapping[str, Any] | None, unique_tokens: int | None
) -> float | None:
    """Exact training FLOPs the run will spend: train FLOPs per token x planned tokens."""
    tokens = planned_tokens(cfg, counts, unique_tokens)
    per_token = (counts or {}).get("flops", {}).get("train_per_token")
    if tokens is None or per_token is None:
        return None
    return float(per_token) * tokens


# which parameter count a ``train.tokens_per_param`` budget multiplies (the trainer's choice)
TOKENS_PER_PARAM_N = "total"

__all__ = ["TOKENS_PER_PARAM_N", "config_counts", "planned_flops", "planned_tokens"]
