"""The run directory: ``config.json``, ``metrics.jsonl``, ``summary.json``, ``checkpoint/``.

The one place the layout of a run directory is written and read back, by the trainer
(:mod:`scalelab.train`) and by studies (:mod:`scalelab.results.records`); torch-free.
Every JSON file is written whole under a temporary name and renamed into place
(:mod:`scalelab.atomic`), so a reader (a sweep collecting points while runs are going)
never sees half a file.
``metrics.jsonl`` is append-only, one flushed line per logged step; on resume the lines
after the checkpoint being resumed from are dropped, because the run repeats those steps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.errors import StoreError

CONFIG, METRICS, SUMMARY, CHECKPOINTS = "config.json", "metrics.jsonl", "summary.json", "checkpoint"
# in a Hugging Face export (``scalelab export``), beside its config.json: the run it came from
EXPORT_META = "scalelab.json"


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null (the reason says what happened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically, non-finite numbers as null."""
    atomic.write_json(path, _clean(obj), allow_nan=False)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path} does not exist: is this a run directory?") from None
    except ValueError as e:
        raise StoreError(f"{path} is not valid JSON ({e})") from None


class MetricsLog:
    """Append-only ``metrics.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (and any torn last line from a kill)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                break  # a line cut by a kill is always the last one
            if row.get("step", 0) > step:
                break
            kept.append(line)
        atomic.write_text(self.path, "".join(line + "\n" for line in kept))

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(_clean(row), allow_nan=False) + "\n")
            f.flush()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl``, in file order; ``[]`` if there is none.

    A line that is not a whole JSON object with a ``step`` is skipped and the rows after
    it are kept: a run killed mid-write leaves a torn last line (while it runs, a reader
    may see the line being written), and one damaged line must not hide the rest of a
    finished run's curve. Accepts the run directory or the ``metrics.jsonl`` path.
    """
    path = Path(run_dir)
    if path.name != METRICS:
        path = path / METRICS
    if not path.is_file():
        return []
    rows = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "step" in row:
                rows.append(row)
    return rows
