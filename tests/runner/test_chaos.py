"""Chaos: a sweep killed with SIGKILL at random moments, several times, then completed.

Some kills take the whole process group (the sweep and its two workers at once, as a power
cut or the OOM killer of a container would); others take the sweep's process alone, and its
workers must notice and exit by themselves. After the last, uninterrupted run of the same
command:

* every run's losses equal those of an uninterrupted sweep of the same study, exactly;
* the store holds one row per run of the study, all finished, none failed;
* no process of the killed sweeps is left;
* no temporary file is left in the runs folder or beside the store.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

STUDY = """
[study]
name = "chaos"
corpus = "markov:order=1,vocab=8,seed=0"
arch = "transformer"
params = [2000, 6000]
tokens = [100000, 200000]
seeds = [0]
[model]
n_layer = 1
n_head = 2
vocab_size = 10
context = 32
[train]
batch_size = 8
eval_every = 20
eval_batches = 2
checkpoint_every = 20
precision = "fp32"
"""
N_RUNS = 4
# (mode, seconds after the killed sweep's workers start writing metrics): "group" kills the
# sweep and its workers, "parent" the sweep only. Timed from the training itself, not from
# the launch, so the kills land mid-run however busy the machine is.
KILLS = [("group", (0.0, 2.0)), ("parent", (0.0, 2.0)), ("group", (0.0, 0.5))]


def _sweep(root: Path, db: str, runs: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from scalelab.cli import main; main()", "sweep",
           str(root / "study.toml"), "--db", str(root / db), "--runs", str(root / runs),
           "--workers", "2", "--threads", "1", "--quiet"]  # fmt: skip
    env = {**os.environ, "SCALELAB_CACHE": str(root / "cache")}
    return subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies aside: they hold no memory)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(p.name))
    return pids


def _metrics_bytes(runs: Path) -> int:
    return sum(p.stat().st_size for p in runs.glob("*/metrics.jsonl")) if runs.exists() else 0


def _wait_training(proc: subprocess.Popen[bytes], runs: Path, timeout: float = 90.0) -> bool:
    """Until this sweep's workers write metrics (True), or the sweep ends first (False)."""
    start, end = _metrics_bytes(runs), time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < end:
        if _metrics_bytes(runs) > start:
            return True
        time.sleep(0.1)
    return False


def _wait_gone(sid: int, timeout: float) -> list[int]:
    end = time.monotonic() + timeout
    while (left := _session(sid)) and time.monotonic() < end:
        time.sleep(0.2)
    return left


def _losses(runs: Path) -> dict[str, tuple[float, float, int]]:
    out = {}
    for summary in runs.glob("*/summary.json"):
        s = json.loads(summary.read_text())
        assert s["status"] == "finished", s
        out[s["run_id"]] = (s["val_loss"], s["train_loss"], s["step"])
    return out


def _temporaries(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for p in folder.rglob("*"):
            if ".tmp" in p.name or p.name.startswith(".space-probe"):
                found.append(str(p))
    return found


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sweep_survives_sigkill_of_parent_and_workers(tmp_path):
    root = tmp_path
    (root / "study.toml").write_text(STUDY)
    ref = _sweep(root, "ref.db", "ref")  # uninterrupted, also warms the token cache
    assert ref.wait(timeout=150) == 0, ref.stderr.read().decode() if ref.stderr else ""
    expected = _losses(root / "ref")
    assert len(expected) == N_RUNS

    rng = random.Random(10)
    log = []
    for mode, (lo, hi) in KILLS:
        proc = _sweep(root, "chaos.db", "chaos")
        if not _wait_training(proc, root / "chaos"):
            break  # it finished before the kill: nothing left to test
        time.sleep(rng.uniform(lo, hi))
        if proc.poll() is not None:
            break
        workers = [p for p in _session(proc.pid) if p != proc.pid]
        if mode == "group":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # killed alone, the sweep leaves its workers: they must see it and exit themselves
        left = _wait_gone(proc.pid, timeout=15.0)
        log.append((mode, len(workers), left))
        assert not left, f"{mode} kill left processes {left} behind"
    assert len(log) >= 2 and {m for m, *_ in log} == {"group", "parent"}, log

    final = _sweep(root, "chaos.db", "chaos")
    assert final.wait(timeout=150) == 0, final.stderr.read().decode() if final.stderr else ""
    assert not _wait_gone(final.pid, timeout=10.0)

    assert _losses(root / "chaos") == expected  # val loss, train loss and step, exactly
    with sqlite3.connect(root / "chaos.db") as con:
        rows = con.execute(
            "SELECT run_id, status FROM points WHERE study = 'chaos' AND kind = 'run'"
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(expected)  # one row per run
    assert {r[1] for r in rows} == {"finished"}
    assert not (root / "chaos" / "_failed").exists()
    assert not _temporaries(root / "chaos", root / "cache"), _temporaries(root / "chaos")
    print(f"\nchaos kills (mode, workers seen, processes left): {log}")
