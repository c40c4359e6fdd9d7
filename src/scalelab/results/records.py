"""Reading run directories (the training contract in docs/internals.md) into points.

A run directory holds ``config.json`` (the resolved RunConfig), ``metrics.jsonl``
(one object per logged step) and, once the run ended, ``summary.json``. The store
is derived from these files alone, so it can always be rebuilt from them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.data.corpus_spec import tokenizer_label
from scalelab.errors import StoreError
from scalelab.plugin import point_fields
from scalelab.rundir import read_metrics

FINISHED = ("finished", "stopped_early")  # a run that ended and left a usable point
ENDED = (*FINISHED, "failed")
SHAPE_FIELDS = ("n_layer", "d_model", "n_head", "n_kv_head", "d_ff", "vocab_size", "context")


@dataclass
class RunRecord:
    """What one run directory says about its run."""

    path: Path
    run_id: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``finished``, ``stopped_early`` or ``failed`` (from summary.json), else
        ``interrupted``: the directory exists but the run never wrote its summary."""
        if self.summary is None:
            return "interrupted"
        return str(self.summary.get("status", "failed"))

    @property
    def ended(self) -> bool:
        return self.status in ENDED


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise StoreError(
            f"{path}: cannot read it as JSON ({e}); delete the run directory to redo it"
        ) from None
    if not isinstance(value, dict):
        raise StoreError(f"{path}: expected a JSON object; delete the run directory to redo it")
    return value


def last_metrics(path: Path, max_bytes: int = 8192) -> dict[str, Any] | None:
    """The last whole row of metrics.jsonl, reading only the file's tail (for progress)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            return row
    return None


def read_run(path: str | Path, *, with_metrics: bool = True) -> RunRecord:
    """Read one run directory; a StoreError if it is not one."""
    p = Path(path)
    cfg_path = p / "config.json"
    if not cfg_path.is_file():
        raise StoreError(f"{p} is not a run directory: it has no config.json")
    config = _read_json(cfg_path)
    summary_path = p / "summary.json"
    summary = _read_json(summary_path) if summary_path.is_file() else None
    run_id = str(summary.get("run_id")) if summary and summary.get("run_id") else p.name
    metrics = read_metrics(p / "metrics.jsonl") if with_metrics else []
    return RunRecord(p, run_id, config, summary, metrics)


def iter_run_dirs(root: str | Path) -> Iterator[Path]:
    """Run directories directly under ``root`` (those with a config.json), sorted by name."""
    r = Path(root)
    if not r.is_dir():
        raise StoreError(f"runs directory {str(r)!r} does not exist")
    for child in sorted(r.iterdir()):
        if child.is_dir() and (child / "config.json").is_file():
            yield child


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _int(value: Any) -> int | None:
    v = _num(value)
    return None if v is None else int(v)


def _params(section: Any) -> dict[str, Any]:
    return section if isinstance(section, Mapping) else {}


# the axis the sweep gives a run it added because another run needs it (scalelab.study.graph)
NEEDED_BY = "needed_by"


def point_row(
    rec: RunRecord,
    *,
    study: str = "",
    axes: Mapping[str, Any] | None = None,
    counts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The store's row for a run. ``counts`` (a ``Count.to_dict()``) fills the parameter
    columns of a run that has no summary yet; a summary's own ``params`` win."""
    cfg = rec.config
    model = _params(cfg.get("model"))
    train = _params(cfg.get("train"))
    data = _params(cfg.get("data"))
    s = rec.summary or {}
    params = _params(s.get("params")) or _params((counts or {}).get("params"))
    flops = _params(s.get("flops")) or _params((counts or {}).get("flops"))
    last = rec.metrics[-1] if rec.metrics else {}
    evals = [m for m in rec.metrics if _num(m.get("val_loss")) is not None]
    D = _int(s.get("tokens")) if s else _int(last.get("tokens"))
    n_non_emb = _int(params.get("non_embedding"))
    six_nd = _num(s.get("six_nd"))
    if six_nd is None and n_non_emb is not None and D is not None:
        six_nd = 6.0 * n_non_emb * D
    c_exact = _num(s.get("flops_total"))
    if c_exact is None and D is not None and _num(flops.get("train_per_token")) is not None:
        c_exact = float(flops["train_per_token"]) * D
    row: dict[str, Any] = {
        "run_id": rec.run_id,
        "study": study,
        "kind": "run",
        "technique": None,
        "parent_run_id": None,
        "arch": model.get("arch"),
        **{f: _int(model.get(f)) for f in SHAPE_FIELDS},
        "corpus": data.get("corpus"),
        "tokenizer": tokenizer_label(data.get("corpus"), data.get("tokenizer")),
        "size": (axes or {}).get("size"),
        "target_params": _num((axes or {}).get("target_params")),
        "budget": (axes or {}).get("budget"),
        "N_total": _int(params.get("total")),
        "N_non_embedding": n_non_emb,
        "N_active": _int(params.get("active")),
        "D": D,
        "six_nd": six_nd,
        "C_exact": c_exact,
        "train_flops_per_token": _num(flops.get("train_per_token")),
        "loss": _num(s.get("val_loss"))
        if s
        else _num(evals[-1].get("val_loss"))
        if evals
        else None,
        "val_bpb": _num(s.get("val_bpb"))
        if s
        else _num(evals[-1].get("val_bpb"))
        if evals
        else None,
        "train_loss": _num(s.get("train_loss")) if s else _num(last.get("train_loss")),
        "best_val_loss": _num(s.get("best_val_loss")),
        "unique_tokens": _int(s.get("unique_tokens")),
        "epochs": _num(s.get("epochs")),
        "entropy_rate": _num(s.get("entropy_rate")),
        "wall_seconds": _num(s.get("wall_seconds")) if s else _num(last.get("elapsed")),
        "tokens_per_second": _num(s.get("tokens_per_second")),
        "precision": s.get("precision"),
        "seed": _int(train.get("seed")),
        "step": _int(s.get("step")) if s else _int(last.get("step")),
        "status": rec.status,
        "reason": s.get("reason"),
        "config_json": json.dumps(cfg, sort_keys=True),
        "axes_json": json.dumps(dict(axes or {}), sort_keys=True, default=str),
        "run_dir": str(rec.path.resolve()),
    }
    # a technique's point (a distilled student, a compressed model, a run on a data
    # selection): the columns the plug-in that claims the run gives (scalelab.plugin)
    row.update(point_fields(s, cfg))
    if row["kind"] == "run" and axes and NEEDED_BY in axes:
        # in the sweep only because another run needs it (a teacher): not a point of the
        # study's ladder, whose analyses read kind "run" (scalelab.study.graph)
        row["kind"] = "needed"
    if train.get("branch_of"):  # a WSD branch (scalelab.train.branch): a run, marked as one
        row["technique"], row["parent_run_id"] = "branch", train["branch_of"]
        info = s.get("branch") or {
            "parent": train["branch_of"],
            "at_tokens": train.get("branch_at"),
        }
        row["extra_json"] = json.dumps({"branch": info}, sort_keys=True)
    return row


def curve_rows(rec: RunRecord) -> list[dict[str, Any]]:
    """Rows of the curves table: every logged step (train loss), with the validation
    loss where the step was an evaluation."""
    by_step: dict[int, dict[str, Any]] = {}
    for m in rec.metrics:
        step = _int(m.get("step"))
        if step is None:
            continue
        # a resumed run re-logs the steps after its last checkpoint: the later row stands
        by_step[step] = {
            "run_id": rec.run_id,
            "step": step,
            "tokens": _int(m.get("tokens")),
            "train_loss": _num(m.get("train_loss")),
            "val_loss": _num(m.get("val_loss")),
            "val_bpb": _num(m.get("val_bpb")),
            "lr": _num(m.get("lr")),
            "elapsed": _num(m.get("elapsed")),
        }
    return [by_step[k] for k in sorted(by_step)]
