"""kill -9 in the middle of RL resumes to the losses an uninterrupted run logs (slow)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab import rundir

ARGS = [
    "--method",
    "rl",
    "--task",
    "sort",
    "--quiet",
    *("--set", "posttrain.steps=12"),
    *("--set", "posttrain.batch_size=4"),
    *("--set", "posttrain.group=4"),
    *("--set", "posttrain.checkpoint_every=2"),
    *("--set", "posttrain.eval_every=4"),
    *("--set", "posttrain.eval_prompts=20"),
    *("--set", "posttrain.kl_prompts=8"),
]


def _cmd(run: Path, out: Path) -> list[str]:
    main = "from scalelab.cli import main; main()"
    return [sys.executable, "-c", main, "posttrain", str(run), *ARGS, "--out", str(out)]


def _losses(stage: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in rundir.read_metrics(stage) if "loss" in r]


@pytest.mark.slow
def test_kill_9_in_the_middle_of_rl_resumes_to_the_same_losses(sort_run, tmp_path) -> None:
    env = {**os.environ, "SCALELAB_THREADS": "1"}
    whole = tmp_path / "whole"
    subprocess.run(_cmd(sort_run, whole), check=True, env=env, timeout=600)
    cut = tmp_path / "cut"
    proc = subprocess.Popen(_cmd(sort_run, cut), env=env)
    deadline = time.time() + 300
    ckpts = cut / "checkpoint"
    while time.time() < deadline:  # kill it once a checkpoint past step 4 exists
        done = [p for p in ckpts.glob("step-*")] if ckpts.is_dir() else []
        if any(int(p.name.split("-")[1]) >= 4 for p in done):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "summary.json").exists(), "the run ended before it was killed"
    subprocess.run(_cmd(sort_run, cut), check=True, env=env, timeout=600)
    assert _losses(cut) == _losses(whole)
    assert len(_losses(whole)) == 12
    assert (
        rundir.read_json(cut / "summary.json")["kl"]
        == rundir.read_json(whole / "summary.json")["kl"]
    )
