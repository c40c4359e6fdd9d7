"""The run directory: ``config.json``, ``metrics.jsonl``, ``summary.json``, ``checkpoint/``.

Every JSON file is written whole under a temporary name and renamed into place, so a
reader (a sweep collecting points while runs are going) never sees half a file.
``metrics.jsonl`` is append-only, one flushed line per logged step; on resume the lines
after the checkpoint being resumed from are dropped, because the run repeats those steps.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from scalelab.errors import StoreError

CONFIG, METRICS, SUMMARY, CHECKPOINTS = "config.json", "metrics.jsonl", "summary.json", "checkpoint"


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
    """Write ``obj`` as JSON atomically (temporary file in the same directory, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w") as f:
            json.dump(_clean(obj), f, indent=1, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary
        raise


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
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(_clean(row), allow_nan=False) + "\n")
            f.flush()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl`` (a torn last line is ignored)."""
    path = Path(run_dir) / METRICS
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
    return rows
