"""What a run shows while it trains: a progress bar (or plain lines), TensorBoard events,
and a note when the budget will take more than a day."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

# with stderr redirected (a log file, a pipe) progress is a plain line this often, since a
# live bar would only draw once, at the end
PLAIN_PROGRESS_SECONDS = 10.0


class Progress:
    """A rich progress bar with loss and tokens/s on a terminal; plain lines every
    :data:`PLAIN_PROGRESS_SECONDS` when stderr is redirected; nothing when progress is off."""

    def __init__(self, enabled: bool, total: int, run_id: str, done: int) -> None:
        self.bar: Any = None
        self.plain = enabled and not sys.stderr.isatty()
        self.total, self.run_id, self.last = total, run_id, time.monotonic()
        if not enabled or self.plain:
            if self.plain:
                self._say(f"step {done}/{total}" + (" (resumed)" if done else ""))
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(f"[bold]{run_id}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self.task = self.bar.add_task("train", total=total, completed=done, info="")
        self.bar.start()

    def _say(self, text: str) -> None:
        print(f"{self.run_id}: {text}", file=sys.stderr, flush=True)
        self.last = time.monotonic()

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
        elif self.plain and (
            step == self.total or time.monotonic() - self.last >= PLAIN_PROGRESS_SECONDS
        ):
            self._say(f"step {step}/{self.total}  {info}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class TensorBoard:
    """TensorBoard event files in ``RUN/tensorboard`` when ``tensorboard`` is installed."""

    def __init__(self, path: Path) -> None:
        self.writer: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional (pip install scalelab[tensorboard])
            return
        self.writer = SummaryWriter(str(path))

    def log(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in row.items():
            if key not in ("step", "tokens") and isinstance(value, float) and math.isfinite(value):
                self.writer.add_scalar(key, value, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class NoLog:
    """What a rank other than 0 has for its metrics log and TensorBoard: nothing."""

    def truncate_after(self, step: int) -> None: ...
    def append(self, row: dict[str, Any]) -> None: ...
    def log(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


# a run the measured speed says will take longer than this gets a note on stderr, once
LONG_RUN_SECONDS = 24 * 3600.0


def warn_if_long(name: str, tokens_left: float, rate: float, budget_note: str) -> None:
    """One note when the budget, at the speed just measured, would take more than
    :data:`LONG_RUN_SECONDS` (a budget typed with one zero too many shows up in minutes,
    not days)."""
    left = tokens_left / rate
    if left > LONG_RUN_SECONDS:
        print(
            f"note: run {name} will take about {left / 3600:,.0f} h more at the "
            f"measured {rate:,.0f} tokens/s ({budget_note}); Ctrl-C keeps its last "
            "checkpoint, lower the budget to finish sooner",
            file=sys.stderr,
            flush=True,
        )
