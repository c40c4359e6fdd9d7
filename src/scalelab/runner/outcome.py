"""What a sweep did: one :class:`RunOutcome` per run of the grid, and the
:class:`SweepResult` that :func:`scalelab.runner.sweeper.sweep` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.results.records import FINISHED


@dataclass
class RunOutcome:
    """What the sweep did with one run of the grid."""

    run_id: str
    axes: Mapping[str, Any]
    action: str  # "skipped", "trained", "resumed", "planned" (dry run)
    status: str  # "finished", "stopped_early", "failed", "busy" (trained elsewhere), or
    # for a dry run the run directory's state: None (not started), "interrupted", ...
    reason: str | None = None
    loss: float | None = None
    seconds: float = 0.0
    flops: float | None = None  # planned (or, once ended, exact) training FLOPs


@dataclass
class SweepResult:
    """The outcome of :func:`sweep`; :meth:`points` reads the study's points back."""

    study: str
    db: Path
    out: Path
    runs: list[RunOutcome] = field(default_factory=list)
    wall_seconds: float = 0.0
    # a dry run's plan: the pending row each run would get in the store (nothing is written)
    plan: list[dict[str, Any]] = field(default_factory=list)
    # (seconds since the sweep started, runs ended, the ETA shown then) at each run's end:
    # how well the FLOPs-based ETA predicted the time the sweep really took
    eta_history: list[tuple[float, int, float | None]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def trained(self) -> int:
        """Runs this sweep trained to the end (finished or stopped early): outcomes, not
        the plan, so runs that failed or that another process held are not counted."""
        return sum(r.action in ("trained", "resumed") and r.status in FINISHED for r in self.runs)

    @property
    def skipped(self) -> int:
        return sum(r.action == "skipped" for r in self.runs)

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def busy(self) -> int:
        """Runs left alone because another process was training them."""
        return self.count("busy")

    def points(self, **kwargs: Any) -> Any:
        from scalelab.results.points import load_points  # pandas: not needed in the workers

        return load_points(self.db, study=self.study, **kwargs)


__all__ = ["RunOutcome", "SweepResult"]
