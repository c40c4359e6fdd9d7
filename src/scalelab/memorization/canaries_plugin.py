"""Canaries as a plug-in: the ``data.canaries`` table and its data hook.

Torch- and numpy-free (``import scalelab`` registers it); the canaries themselves are drawn
and planted by :mod:`scalelab.memorization.canaries`, imported only by a run that has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError
from scalelab.plugin import Plugin

if TYPE_CHECKING:
    from scalelab.config import RunConfig


MAX_CANARY_TOKENS = 10**8  # 0.75 GiB as int64: canaries are a small share of a corpus


@dataclass(frozen=True)
class CanaryConfig:
    """``data.canaries``: random token sequences inserted into the training stream at known
    repetition counts (scalelab.memorization.canaries): ``count`` canaries per entry of
    ``repeats``, each ``prefix + length`` tokens, each inserted ``r`` times per pass."""

    count: int = 16
    length: int = 32  # the secret a model may emit: the tokens after the prefix
    repeats: tuple[int, ...] = (1, 4, 16, 64)
    seed: int = 0
    prefix: int = 32  # tokens before the secret (extraction prompts are its last k)

    def __post_init__(self) -> None:
        for name in ("count", "length", "prefix"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"data.canaries.{name} must be a positive integer, got {getattr(self, name)}"
                )
        if not self.repeats or any(r < 1 for r in self.repeats):
            raise ConfigError(
                f"data.canaries.repeats must be a list of positive integers, got {self.repeats}"
            )
        # the canaries are drawn as one array of count x len(repeats) x (prefix + length)
        # tokens and inserted sum(repeats) times each: bound both before anything is drawn
        drawn = self.count * len(self.repeats) * (self.prefix + self.length)
        inserted = self.count * sum(self.repeats) * (self.prefix + self.length)
        if max(drawn, inserted) > MAX_CANARY_TOKENS:
            raise ConfigError(
                f"data.canaries would draw {drawn:,} and insert {inserted:,} tokens (about "
                f"{8 * max(drawn, inserted) / 2**30:.3g} GiB): keep count x (prefix + length) "
                f"x sum(repeats) under {MAX_CANARY_TOKENS:,}"
            )


class CanaryPlugin(Plugin):
    """Memorization: the ``data.canaries`` planted in a run's tokens, the points its
    measurements write (extraction, capacity), its report section and commands."""

    name = "memorization"
    section = "data.canaries"
    point_kinds = ("memorization", "capacity")  # scalelab.memorization.points
    config = CanaryConfig
    report = "scalelab.reporting.memorization:memorization_section"
    cli = "scalelab.cli.memorization"

    def data(self, cfg: RunConfig, data: Any) -> Any:
        """Plant the canaries (after ``data.fraction``: each copy is seen as planned)."""
        from scalelab.memorization.canaries import insert_canaries

        return insert_canaries(data, self.value(cfg))[0]
