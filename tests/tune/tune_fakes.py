"""A trainer stand-in with a known optimum, so searches can be tested without training.

``fake_train`` writes a run directory as the real trainer does (config, metrics with
evaluations, summary) whose validation loss is a bowl in log10(lr) around
``optimum_lr(d_model)``; it calls ``on_eval`` at every evaluation and stops early with its
reason, as ``scalelab.train`` does. ``$FAKE_TRAIN_LOG`` gets one line per call;
``$FAKE_TRAIN_SLEEP`` seconds are slept per step (for the kill-and-resume test);
``$FAKE_TRAIN_DIE_AT`` kills one trial's process mid-run (:func:`_maybe_die`).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from scalelab.config import RunConfig
from scalelab.study.cost import config_counts
from scalelab.tune import tune

STEPS = 10
EVAL_EVERY = 2


def optimum_lr(d_model: int) -> float:
    """The synthetic optimum: 3e-3 at width 64, falling as 1/width (muP-like)."""
    return 3e-3 * 64 / d_model


def final_loss(cfg: RunConfig) -> float:
    gap = math.log10(cfg.train.lr) - math.log10(optimum_lr(cfg.model.d_model))
    return 2.0 + gap * gap + 0.1 * math.log2(cfg.train.batch_size / 16) ** 2


def fake_train(
    cfg: RunConfig,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    progress: bool = True,
    on_eval: Any = None,
) -> dict[str, Any]:
    run_dir = Path(out) / cfg.run_id()
    run_dir.mkdir(parents=True, exist_ok=True)
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        done = json.loads(summary_path.read_text())
        if done["status"] in ("finished", "stopped_early"):
            return done
    if log := os.environ.get("FAKE_TRAIN_LOG"):
        with open(log, "a") as f:
            f.write(json.dumps({"run_id": cfg.run_id(), "lr": cfg.train.lr}) + "\n")
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict()))
    ckpt = run_dir / "checkpoint.json"
    start = json.loads(ckpt.read_text())["step"] if resume and ckpt.is_file() else 0
    counts = config_counts(cfg)
    target = final_loss(cfg)
    sleep = float(os.environ.get("FAKE_TRAIN_SLEEP", "0"))
    status, reason, val, step = "finished", None, float("nan"), start
    with open(run_dir / "metrics.jsonl", "a") as f:
        for step in range(start + 1, STEPS + 1):
            val = target + 1.0 / step  # the curve falls toward the final loss
            row: dict[str, Any] = {"step": step, "tokens": step * 100, "train_loss": val}
            if step % EVAL_EVERY == 0:
                row["val_loss"] = val
            f.write(json.dumps(row) + "\n")
            f.flush()
            # whole or not at all, as the real trainer's checkpoints: when one worker dies the
            # pool's other processes are killed too, maybe in the middle of this write (a
            # truncated checkpoint.json then failed the resumed trial: JSONDecodeError)
            tmp = ckpt.with_suffix(".tmp")
            tmp.write_text(json.dumps({"step": step}))
            os.replace(tmp, ckpt)
            if sleep:
                time.sleep(sleep)
            _maybe_die(step, run_dir.name)
            if step % EVAL_EVERY == 0 and step < STEPS and on_eval is not None:
                why = on_eval(step, val)
                if why:
                    status, reason = "stopped_early", why
                    break
    summary = {
        "run_id": cfg.run_id(),
        "status": status,
        "reason": reason,
        "step": step,
        "tokens": step * 100,
        "val_loss": val,
        "val_bpb": val / math.log(2),
        "train_loss": val,
        "best_val_loss": val,
        "wall_seconds": 0.01,
        "params": counts["params"],
        "flops": counts["flops"],
    }
    summary_path.write_text(json.dumps(summary))
    return summary


def _maybe_die(step: int, run_id: str) -> None:
    """``$FAKE_TRAIN_DIE_AT=STEP:MARKER``: the first trial to reach STEP kills its own
    process (as the out-of-memory killer would), once: MARKER records that it happened."""
    spec = os.environ.get("FAKE_TRAIN_DIE_AT")
    if not spec:
        return
    at, marker = spec.split(":", 1)
    if step == int(at) and not os.path.exists(marker):
        Path(marker).write_text(run_id)
        os._exit(3)


def study(sizes: tuple[int, ...] = (64,)) -> dict[str, Any]:
    return {
        "study": {
            "name": "syn",
            "corpus": "markov:order=1,vocab=8",
            "tokenizer": "bytes",
            "sizes": [{"name": f"w{d}", "n_layer": 1, "d_model": d, "n_head": 2} for d in sizes],
        },
        "model": {"vocab_size": 300, "context": 16},
        "train": {"tokens": 1000},
    }


LR = {"low": 1e-5, "high": 1e-1, "log": True}


def run(tmp_path: Path, space: dict[str, Any], sizes=(64,), **tune_kw: Any):
    spec = {"space": space, **{k: tune_kw.pop(k) for k in list(tune_kw) if k in (
        "sampler", "trials", "pruner", "startup", "seed")}}  # fmt: skip
    return tune(
        study(sizes),
        tune_spec=spec,
        db=tmp_path / "r.db",
        out=tmp_path / "runs",
        trainer=fake_train,
        progress=False,
        **tune_kw,
    )
