"""Knowledge distillation as a plug-in: the ``[distill]`` section and the run's hooks.

Torch-free (``import scalelab`` registers it): the teacher, the KD term and the teacher
initialisation are in :mod:`scalelab.techniques.distill`, imported only by a run that
distils. The training loss is ``(1 - alpha) CE + alpha KD``; ``alpha = 0`` is plain
training.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError, did_you_mean
from scalelab.plugin import Plugin, RunContext, TrainHook
from scalelab.ranges import check_rate

if TYPE_CHECKING:
    from scalelab.config import RunConfig

DISTILL_LOSSES = ("forward_kl", "reverse_kl", "mse_logits")


@dataclass(frozen=True)
class DistillConfig:
    """Knowledge distillation (see :mod:`scalelab.techniques.distill`).

    The training loss is ``(1 - alpha) CE + alpha KD``; ``alpha = 0`` is plain training.
    ``teacher`` is a finished run directory, or a run-config TOML whose run is trained
    first (into the same runs directory) when it is not there yet.
    """

    teacher: str | None = None
    alpha: float = 0.0  # weight of the distillation term
    temperature: float = 1.0
    loss: str = "forward_kl"  # forward_kl (Hinton 2015), reverse_kl (MiniLLM), mse_logits
    top_k: int | None = None  # keep only the teacher's top-k logits
    init_every: int | None = None  # initialise student block i from teacher block i * k

    def __post_init__(self) -> None:
        if self.loss not in DISTILL_LOSSES:
            raise ConfigError(
                f"distill.loss = {self.loss!r} is not one of {', '.join(DISTILL_LOSSES)}"
                f"{did_you_mean(self.loss, DISTILL_LOSSES)}"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(
                f"distill.alpha must be in [0, 1] (0: no distillation), got {self.alpha}"
            )
        check_rate("distill.temperature", self.temperature)
        if self.teacher is not None and not self.teacher.strip():
            raise ConfigError("distill.teacher is empty: name a finished run directory or a TOML")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"distill.top_k must be a positive integer, got {self.top_k}")
        if self.init_every is not None and self.init_every < 1:
            raise ConfigError(
                f"distill.init_every must be a positive integer, got {self.init_every}"
            )
        if self.teacher is None and (self.alpha > 0 or self.init_every is not None):
            raise ConfigError(
                "distillation needs a teacher: set distill.teacher to a finished run directory "
                "(or a run-config TOML)"
            )

    @property
    def active(self) -> bool:
        """True when the teacher changes the run (alpha > 0 or a teacher initialisation).

        With alpha = 0 and no initialisation the run *is* the plain run: same directory,
        same losses bit for bit, no teacher loaded.
        """
        return self.teacher is not None and (self.alpha > 0 or self.init_every is not None)


class DistillPlugin(Plugin):
    """``[distill]``: a student trained against a teacher's logits."""

    name = "distill"
    section = "distill"
    config = DistillConfig
    default_section = True  # config.json has a [distill] table of defaults on every run
    summary_key = "distill"
    point_kinds = ("distilled",)
    plane_kinds = ("distilled",)
    report = "scalelab.reporting.sections:small_vs_large"

    def active(self, cfg: RunConfig) -> bool:
        return bool(self.value(cfg).active)

    def needs(self, cfg: RunConfig) -> list[RunConfig]:
        """The teacher, when ``distill.teacher`` is a run-config TOML (a run directory is
        finished already, or the student fails to start naming it)."""
        if not self.active(cfg):
            return []
        path = Path(self.value(cfg).teacher).expanduser()
        if path.suffix == ".toml" and path.is_file():
            from scalelab.config import load_run_config

            return [load_run_config(path)]
        return []

    def train_hook(self, run: RunContext) -> TrainHook:
        from scalelab.techniques.distill import Distiller

        return Distiller(run)

    def point_fields(
        self, summary: Mapping[str, Any], config: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        distill = summary.get("distill")
        if not isinstance(distill, Mapping):
            return None
        return {
            "kind": "distilled",
            "technique": "distill",
            "parent_run_id": distill.get("teacher_run_id"),
            "extra_json": json.dumps(dict(distill), sort_keys=True, default=str),
        }
