"""Small stand-ins for the trainer, the sizer and the data probe, so the sweep machinery
can be tested without training. The fake trainer writes a run directory exactly as
docs/internals.md ("Training") specifies, with a synthetic loss curve."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from scalelab.config import ModelConfig, RunConfig, budget_tokens
from scalelab.study.cost import config_counts

UNIQUE_TOKENS = 50_000


def train_calls(log: Path) -> list[dict[str, Any]]:
    """The lines :func:`fake_train` wrote to ``$FAKE_TRAIN_LOG``, one per call, in order."""
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def trained_ids(log: Path) -> list[str]:
    """The run ids of :func:`train_calls`, in order."""
    return [c["run_id"] for c in train_calls(log)]


def fake_sizer(target: float, model: dict[str, Any], kind: str, options: Any) -> ModelConfig:
    """A shape growing with the target (not an accurate fit: the real one is accounting's)."""
    d = max(8, 8 * round(math.sqrt(target / 24) / 8))
    return ModelConfig(**{**model, "n_layer": 2, "d_model": d, "n_head": 2})


def fake_probe(cfg: RunConfig) -> int:
    return UNIQUE_TOKENS


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError):
        return 1 << 62  # a torn line


def _write_atomic(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def fake_train(
    cfg: RunConfig, out: str | Path = "runs", *, resume: bool = False, progress: bool = True
):
    """Writes config.json, metrics.jsonl (10 steps, evaluations every 5) and summary.json.

    ``train.lr > 1`` diverges (a failed summary, like a NaN loss); ``train.lr == 0.5``
    raises; ``train.lr == 0.25`` kills its process. ``$FAKE_TRAIN_LOG`` gets one line per call; ``$FAKE_TRAIN_SLEEP`` seconds
    are slept after each step (for the kill-and-resume test).
    """
    run_dir = Path(out) / cfg.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    if log := os.environ.get("FAKE_TRAIN_LOG"):
        with open(log, "a") as f:
            f.write(
                json.dumps({"run_id": cfg.run_id(), "resume": resume, "pid": os.getpid()}) + "\n"
            )
    if cfg.train.lr == 0.5:
        raise RuntimeError("fake trainer exploded")
    if cfg.train.lr == 0.25:
        os._exit(3)  # the process dies (as if killed for memory)
    _write_atomic(run_dir / "config.json", cfg.to_dict())
    counts = config_counts(cfg)  # what the real trainer writes: count(cfg).to_dict()
    n = counts["params"]["non_embedding"]
    t = cfg.train
    tokens, _ = budget_tokens(cfg, n, UNIQUE_TOKENS)  # the real trainer's budget rule
    steps = 10
    start = 0
    ckpt = run_dir / "checkpoint.json"
    if resume and ckpt.is_file():
        start = json.loads(ckpt.read_text())["step"]
        # like the real trainer: drop what was logged after the checkpoint (it is redone)
        kept = [
            r for r in (run_dir / "metrics.jsonl").read_text().splitlines() if _step(r) <= start
        ]
        (run_dir / "metrics.jsonl").write_text("".join(r + "\n" for r in kept))
    sleep = float(os.environ.get("FAKE_TRAIN_SLEEP", "0"))
    t0 = time.perf_counter()
    loss = val = float("nan")
    with open(run_dir / "metrics.jsonl", "a") as f:
        for step in range(start + 1, steps + 1):
            d = tokens * step // steps
            loss = 1.5 + 40.0 / n**0.3 + 30.0 / d**0.3 + 0.01 * t.seed
            row: dict[str, Any] = {
                "step": step,
                "tokens": d,
                "train_loss": loss,
                "lr": t.lr,
                "elapsed": time.perf_counter() - t0,
            }
            if t.lr > 1 and step == 3:
                _write_atomic(
                    run_dir / "summary.json",
                    {
                        "run_id": cfg.run_id(),
                        "status": "failed",
                        "reason": "loss is NaN at step 3",
                        "step": step,
                        "tokens": d,
                    },
                )
                return None
            if step % 5 == 0:
                val = loss + 0.02
                row.update(val_loss=val, val_bpb=val / math.log(2))
            f.write(json.dumps(row) + "\n")
            f.flush()
            _write_atomic(ckpt, {"step": step})
            if sleep:
                time.sleep(sleep)
    wall = time.perf_counter() - t0
    summary = {
        "run_id": cfg.run_id(),
        "status": "finished",
        "step": steps,
        "tokens": tokens,
        "val_loss": val,
        "val_bpb": val / math.log(2),
        "train_loss": loss,
        "best_val_loss": val,
        "tokens_per_second": tokens / max(wall, 1e-9),
        "wall_seconds": max(wall, 1e-3),
        "params": counts["params"],
        "flops": counts["flops"],
        "flops_total": counts["flops"]["train_per_token"] * tokens,
        "six_nd": 6.0 * n * tokens,
        "unique_tokens": UNIQUE_TOKENS,
        "epochs": tokens / UNIQUE_TOKENS,
        "entropy_rate": None,
    }
    _write_atomic(run_dir / "summary.json", summary)
    return summary
