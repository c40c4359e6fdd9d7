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
