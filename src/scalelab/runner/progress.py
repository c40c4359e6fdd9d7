"""A sweep's progress view: FLOPs done and left, FLOP/s measured, and an ETA.

The ETA times the runs ended so far: their seconds are fitted as ``overhead + tokens x
per_token + FLOPs / rate`` (non-negative least squares; before three runs have ended, FLOPs
over the FLOP/s measured on the ended or running runs), and the seconds of the runs left
are divided among the workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalelab.fmt import si
from scalelab.results.records import FINISHED, last_metrics


def _fmt_flops(x: float | None) -> str:
    return "?" if x is None else si(x)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "calibrating"
    s = max(0, round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Monitor:
    """The study's progress: FLOPs done and left, FLOP/s measured, ETA; a rich view."""

    def __init__(
        self,
        planned: Mapping[str, float | None],
        per_token: Mapping[str, float],
        workers: int,
        show: bool,
        title: str,
    ):
        self.planned = dict(planned)
        self.per_token = dict(per_token)  # run id -> training FLOPs per token
        self.workers = workers
        self.done: dict[str, float] = {}  # run id -> FLOPs it spent (ended runs)
        self.active: dict[str, tuple[Path, float]] = {}  # run id -> (run dir, start time)
        self.active_done: dict[str, float] = {}  # run id -> FLOPs so far
        self.cal_flops = 0.0  # FLOPs and seconds of ended runs, for the FLOP/s calibration
        self.cal_seconds = 0.0
        # (FLOPs, tokens, seconds) of each ended run, for the cost model
        self.cal_points: list[tuple[float, float, float]] = []
        self.n_failed = 0
        self.branches: set[str] = set()  # WSD branches: they train only their cooldown
        self.lock = threading.Lock()
        self.progress = None
        self.task_id = None
        self.sub: dict[str, Any] = {}
        self.title = title
        self.t0 = time.time()
        # (seconds since start, runs ended, ETA in seconds or None) at each run's end
        self.history: list[tuple[float, int, float | None]] = []
        if show:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[info]}"),
                refresh_per_second=4,
            )

    # known FLOPs of the whole study (a run with no estimate counts 0 until it ends)
    def _total(self) -> float:
        return sum(self.done.get(r, p or 0.0) for r, p in self.planned.items())

    def rate(self) -> float | None:
        """Training FLOP/s of one worker: from ended runs, else from the running ones."""
        if self.cal_seconds > 0 and self.cal_flops > 0:
            return self.cal_flops / self.cal_seconds
        flops = sum(self.active_done.values())
        seconds = sum(time.time() - start for _, start in self.active.values())
        return flops / seconds if flops > 0 and seconds > 1 else None

    def cost_model(self) -> tuple[float, float, float] | None:
        """Seconds of a run as ``overhead + tokens * per_token + FLOPs / rate``, fitted by
        non-negative least squares to the ended runs: ``(overhead, per_token, rate)``.

        A run's wall time also pays for what does not grow with its FLOPs: a fixed part
        (loading tokens, building the model, evaluations) and a part per step (optimizer
        and kernel-launch overheads), which dominate the smallest models; a pure FLOP/s
        ratio measured on small runs would overestimate the time of the large ones. Until
        three runs with distinct costs have ended, the rate alone (:meth:`rate`) is used.
        """
        pts = self.cal_points
        if len({(f, tok) for f, tok, _ in pts}) >= 3:
            import numpy as np
            from scipy.optimize import nnls

            scale = np.array([1.0, max(tok for _, tok, _ in pts), max(f for f, _, _ in pts)])
            a = np.array([[1.0, tok, f] for f, tok, _ in pts]) / scale
            coef, _ = nnls(a, np.array([t for _, _, t in pts]))
            overhead, per_token, per_flop = coef / scale
            if per_flop > 0:
                return float(overhead), float(per_token), float(1.0 / per_flop)
        rate = self.rate()
        return None if rate is None else (0.0, 0.0, rate)

    def eta(self) -> float | None:
        left = [r for r in self.planned if r not in self.done]
        if not left:
            return 0.0
        if any(self.planned[r] is None for r in left):
            return None
        model = self.cost_model()
        if model is None:
            return None
        overhead, per_token, rate = model
        seconds = 0.0
        for r in left:
            flops_left = max(float(self.planned[r] or 0.0) - self.active_done.get(r, 0.0), 0.0)
            per_tok = self.per_token.get(r)
            tokens_left = flops_left / per_tok if per_tok else 0.0
            fixed = 0.0 if r in self.active else overhead
            seconds += fixed + tokens_left * per_token + flops_left / rate
        return seconds / min(self.workers, len(left))

    def start(self) -> None:
        if self.progress is not None:
            self.progress.start()
            self.task_id = self.progress.add_task(self.title, total=1.0, info="")
            self.refresh()

    def stop(self) -> None:
        if self.progress is not None:
            self.refresh()
            self.progress.stop()

    def print(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, highlight=False)

    def run_ended(
        self, run_id: str, flops: float | None, seconds: float | None, status: str, calibrate: bool
    ) -> None:
        with self.lock:
            if run_id in self.branches and flops is not None:  # a point's C is its whole D;
                flops = self.planned.get(run_id) or flops  # a branch spent its cooldown's
            spent = flops if flops is not None else self.planned.get(run_id) or 0.0
            self.done[run_id] = spent
            if calibrate and flops and seconds and status in FINISHED:
                self.cal_flops += flops
                self.cal_seconds += seconds
                per_tok = self.per_token.get(run_id)
                self.cal_points.append((flops, flops / per_tok if per_tok else 0.0, seconds))
            self.n_failed += status == "failed"
            self.active.pop(run_id, None)
            self.active_done.pop(run_id, None)
            if self.progress is not None and run_id in self.sub:
                self.progress.remove_task(self.sub.pop(run_id))
            self.history.append((time.time() - self.t0, len(self.done), self.eta()))
        self.refresh()

    def run_started(self, run_id: str, run_dir: Path, label: str) -> None:
        with self.lock:
            self.active[run_id] = (run_dir, time.time())
            if self.progress is not None:
                self.sub[run_id] = self.progress.add_task(f"  {label}", total=1.0, info="")
        self.refresh()

    def poll(self) -> None:
        """Read the tail of each running run's metrics.jsonl and redraw."""
        with self.lock:
            for run_id, (run_dir, _) in list(self.active.items()):
                row = last_metrics(run_dir / "metrics.jsonl")
                if not row or row.get("tokens") is None:
                    continue
                planned = self.planned.get(run_id)
                per_token = self.per_token.get(run_id)
                if per_token is not None:
                    self.active_done[run_id] = float(row["tokens"]) * per_token
                if self.progress is not None and run_id in self.sub:
                    frac = self.active_done.get(run_id, 0.0) / planned if planned else 0.0
                    loss = row.get("val_loss") or row.get("train_loss")
                    info = f"step {row.get('step')}" + (f"  loss {loss:.4f}" if loss else "")
                    self.progress.update(self.sub[run_id], completed=min(frac, 1.0), info=info)
        self.refresh()

    def refresh(self) -> None:
        if self.progress is None or self.task_id is None:
            return
        with self.lock:
            total = self._total()
            done = sum(self.done.values()) + sum(self.active_done.values())
            n_done = len(self.done)
            rate = self.rate()
            info = (
                f"runs {n_done}/{len(self.planned)}"
                + (f" ({self.n_failed} failed)" if self.n_failed else "")
                + f"  {_fmt_flops(done)}/{_fmt_flops(total)} FLOP"
                + (f"  {_fmt_flops(rate)}FLOP/s/worker" if rate else "")
                + f"  ETA {_fmt_seconds(self.eta())}"
            )
            self.progress.update(
                self.task_id, completed=min(done / total, 1.0) if total else 0.0, info=info
            )
