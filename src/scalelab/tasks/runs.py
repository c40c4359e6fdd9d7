"""What a scorer asks of a run beyond opening it (:mod:`scalelab.runs` opens it)."""

from __future__ import annotations

from scalelab.config import RunConfig
from scalelab.errors import ConfigError


def check_causal(cfg: RunConfig, what: str) -> None:
    if not cfg.model.causal:
        raise ConfigError(
            f"{what} scores a causal language model's next-token likelihoods, and this run is "
            "bidirectional (model.causal = false); use a causal run"
        )
