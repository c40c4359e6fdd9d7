"""A run's summary: the ``summary.json`` of a run directory, as :class:`RunSummary`.

Written by the loop when a run ends (finished, stopped early or failed) and read by every
command that opens a run; the keys are a contract (docs/internals.md, "Training").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab import rundir
from scalelab.errors import StoreError
from scalelab.plugin import plugins


@dataclass
class RunSummary:
    """The content of ``summary.json`` (keys as in docs/internals.md, "Training")."""

    run_id: str
    status: str  # "finished", "stopped_early", "failed"
    step: int
    tokens: int
    val_loss: float | None
    val_bpb: float | None
    # mean training loss over the last logged window of steps (the last metrics row's
    # train_loss), not one step's loss
    train_loss: float | None
    best_val_loss: float | None
    tokens_per_second: float | None
    wall_seconds: float
    params: dict[str, Any]
    flops: dict[str, Any]
    flops_total: float
    six_nd: float
    unique_tokens: int
    epochs: float
    entropy_rate: float | None
    reason: str | None = None
    # beyond the contract's keys
    steps: int = 0  # the run's planned number of updates
    budget_tokens: int = 0  # planned tokens (steps x tokens per step)
    budget: str = ""  # how the budget was set
    val_ppl: float | None = None
    best_val_bpb: float | None = None
    bytes_per_token: float | None = None
    eos_id: int | None = None
    six_nd_non_embedding: float = 0.0
    train_seconds: float = 0.0  # training steps only
    first_step_seconds: float = 0.0  # first step of each session (allocation, compilation)
    eval_seconds: float = 0.0
    device: str = ""
    precision: str = ""  # what the run used: fp32 or bf16 (train.precision may say auto)
    precision_reason: str = ""
    # seconds per forward-backward step in fp32 and bf16, where "auto" timed this model
    precision_timings: dict[str, float] | None = None
    compile: bool = False
    threads: int | None = None  # CPU threads (see device.ThreadPolicy)
    micro_batch_size: int = 0  # sequences per forward/backward
    torch_version: str = ""
    started: str = ""
    finished: str = ""
    path: str = ""
    # data.select: method, label, keep, kept_fraction, unit, corpus_hash, reference
    selection: dict[str, Any] | None = None
    # a WSD branch: its parent, branch point and the tokens it trained itself
    branch: dict[str, Any] | None = None
    # the plug-ins' pieces (scalelab.plugin.TrainHook.summary), each a top-level key of
    # summary.json: "distill" holds the teacher and C_student / C_teacher / C_total
    pieces: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        """A plug-in's piece by its key (``summary.distill``); None if the run has none."""
        if name.startswith("_") or name == "pieces":
            raise AttributeError(name)
        if name in self.pieces or name in {p.summary_key for p in plugins()}:
            return self.pieces.get(name)
        raise AttributeError(f"RunSummary has no field {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """summary.json: the fields, then every registered plug-in's key (its piece, or
        None where it did nothing in this run)."""
        d = dataclasses.asdict(self)
        pieces = d.pop("pieces")
        d.update({p.summary_key: None for p in plugins() if p.summary_key})
        d.update(pieces)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSummary:
        names = {f.name for f in dataclasses.fields(cls)} - {"pieces"}
        pieces = {k: v for k, v in d.items() if k not in names and isinstance(v, dict)}
        return cls(**{k: v for k, v in d.items() if k in names}, pieces=pieces)

    @classmethod
    def load(cls, run_dir: str | Path) -> RunSummary:
        """Read ``summary.json`` of a run directory; one that is valid JSON of another shape
        (``[]``, ``{"status": "finished"}``) is a StoreError naming what it lacks."""
        path = Path(run_dir) / rundir.SUMMARY
        d = rundir.read_json(path)
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        lacks = sorted(required - set(d)) if isinstance(d, dict) else []
        if not isinstance(d, dict) or lacks:
            what = f"lacks {', '.join(lacks[:4])}" if lacks else f"holds a {type(d).__name__}"
            raise StoreError(
                f"{path} is not a run summary ({what}): delete it to train the run again"
            )
        return cls.from_dict(d)


def now() -> str:
    """The time as a run's ``started`` and ``finished`` say it: UTC, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def bpb(loss: float | None, bytes_per_token: float) -> float | None:
    """Bits per byte: nats per token / ln 2 / (UTF-8 bytes per token)."""
    if loss is None or not bytes_per_token:
        return None
    return loss / math.log(2) / bytes_per_token
