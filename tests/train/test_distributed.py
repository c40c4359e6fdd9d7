"""Data-parallel training (train_distributed / --nproc): the same losses as one process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.train import read_metrics, train
from scalelab.train.distributed import check_nproc, train_distributed

from .conftest import CORPUS, TINY

# reduction order differs (each rank sums its half, then gloo adds the halves): fp32 agrees
# to ~1e-7 relative per step here; 30 steps of Adam keep it well under 1e-5
TOL = 1e-5


def losses(run_dir: str) -> list[tuple[int, float | None, float | None]]:
    return [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in read_metrics(run_dir)]


def close(a: list, b: list) -> None:
    assert [s for s, *_ in a] == [s for s, *_ in b]
    for (_, ta, va), (_, tb, vb) in zip(a, b, strict=True):
        for x, y in ((ta, tb), (va, vb)):
            assert (x is None) == (y is None)
            if x is not None:
                assert y == pytest.approx(x, rel=TOL)


def test_two_processes_reach_the_single_process_losses(make_cfg, tmp_path: Path) -> None:
    cfg = make_cfg("train.precision=fp32", "train.tokens=5120", "train.micro_batch_size=2")
    one = train(cfg, tmp_path / "one", progress=False)
    two = train_distributed(cfg, tmp_path / "two", nproc=2, progress=False)
    assert two.status == "finished" and two.step == one.step == 20
    assert two.micro_batch_size == 2  # 4 sequences per rank, 2 micro-batches, one all-reduce
    close(losses(one.path), losses(two.path))
    assert two.val_loss == pytest.approx(one.val_loss, rel=TOL)
    # rank 0 alone wrote: one metrics file, checkpoints, a summary
    assert sorted(p.name for p in Path(two.path).iterdir()) == sorted(
        p.name for p in Path(one.path).iterdir()
    )


@pytest.mark.slow
def test_resume_on_another_process_count(make_cfg, tmp_path: Path) -> None:
    """A run stopped after step 20 on one process continues on two (and ends as if never
    stopped); the checkpoint holds the whole model and optimizer."""
    cfg = make_cfg("train.precision=fp32")
    whole = train(cfg, tmp_path / "whole", progress=False)
    run = tmp_path / "cut" / cfg.run_id()
    shutil.copytree(whole.path, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "checkpoint" / "step-00000030")  # as if killed after step 20's save
    resumed = train_distributed(cfg, tmp_path / "cut", nproc=2, resume=True, progress=False)
    assert resumed.status == "finished" and resumed.step == 30
    close(losses(whole.path), losses(str(run)))


def test_nproc_must_divide_the_batch(make_cfg) -> None:
    with pytest.raises(ConfigError, match=r"--nproc 3 does not divide train.batch_size"):
        check_nproc(make_cfg(), 3)
    with pytest.raises(ConfigError, match="micro_batch_size"):
        check_nproc(make_cfg("train.micro_batch_size=8", "train.batch_size=24"), 2)
    assert check_nproc(make_cfg(), 2) == 4


def test_cli_nproc_that_does_not_divide_is_one_line(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nbatch_size = 8\n")
    r = cli("train", str(cfg), "--nproc", "3", "--runs", str(tmp_path / "runs"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "--nproc 3 does not divide train.batch_size (8)" in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_kill_9_of_one_rank_stops_the_run_and_resume_continues(
    make_cfg, tmp_path: Path, cache_dir: Path
) -> None:
    extra = ("train.precision=fp32", "train.tokens=30720")  # 120 steps
    cfg = make_cfg(*extra)
    sets = [f"data.corpus={CORPUS}", f"data.cache_dir={cache_dir}", *TINY, *extra]
    values = dict(o.split("=", 1) for o in sets)  # a later setting wins, as --set does
    toml = tmp_path / "run.toml"
    toml.write_text("".join(f"[{s}]\n" + "".join(
        f"{k.split('.')[1]} = {_toml(v)}\n" for k, v in values.items()
        if k.startswith(s + ".")) for s in ("model", "data", "train")))  # fmt: skip
    cmd = [sys.executable, "-m", "scalelab", "train", str(toml), "--nproc", "2",
           "--runs", str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpts = tmp_path / "runs" / cfg.run_id() / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not any(ckpts.glob("step-*")):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    ranks = [int(p) for p in children.stdout.split()]
    assert len(ranks) >= 2, children  # the two ranks (and the spawn helper)
    os.kill(ranks[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "continue it with --resume" in err, err
    # one line: torch's "Terminating process N via signal SIGTERM" is not the user's
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert not (tmp_path / "runs" / cfg.run_id() / "summary.json").exists()
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    whole = train(cfg, tmp_path / "one", progress=False)
    close(losses(whole.path), losses(str(tmp_path / "runs" / cfg.run_id())))


def _toml(v: str) -> str:
    try:
        float(v)
        return v
    except ValueError:
        return v if v in ("true", "false") else f'"{v}"'


def test_nproc_beyond_the_machine_is_refused_before_any_process(make_cfg) -> None:
    import os

    cpus = len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match=rf"--nproc {4 * cpus} is more than the {cpus} CPUs"):
        check_nproc(make_cfg(f"train.batch_size={4 * cpus}", "train.device='cpu'"), 4 * cpus)
