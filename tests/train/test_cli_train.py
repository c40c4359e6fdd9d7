"""`scalelab train` and `scalelab export` as a user runs them (in-process through the CLI's
``main``; the kill -9 test runs real processes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.train import read_metrics, train

from .conftest import CORPUS, TINY


def scalelab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from scalelab.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``scalelab ARGS`` in this process: exit code, stdout, stderr."""
    from scalelab.cli import main

    monkeypatch.setattr(sys, "argv", ["scalelab", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return exit_info.value.code or 0, out.out, out.err


def _toml(cache_dir: Path, path: Path, **train_keys: object) -> Path:
    lines = ["[model]", 'arch = "transformer"']
    section = "model"
    for item in TINY:
        key, value = item.split("=", 1)
        sec, name = key.split(".")
        if name in train_keys:
            continue
        if sec != section:
            lines.append(f"[{sec}]")
            section = sec
        lines.append(f"{name} = {json.dumps(value) if value.isidentifier() else value}")
    lines += [f"{k} = {v}" for k, v in train_keys.items()]
    lines += ["[data]", f'corpus = "{CORPUS}"', f'cache_dir = "{cache_dir}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_then_export(cache_dir, tmp_path, monkeypatch, capsys):
    cfg = _toml(cache_dir, tmp_path / "run.toml", tokens=2560)
    runs = str(tmp_path / "runs")
    code, out, err = cli(monkeypatch, capsys, "train", str(cfg), "--set", "train.seed=3",
                         "--runs", runs, "--quiet", "--json")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "finished" and summary["tokens"] == 2560
    run_dir = Path(summary["path"])
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 3
    code, out, err = cli(monkeypatch, capsys, "export", str(run_dir), "--format", "hf")
    assert code == 0 and "wrote" in out, err
    assert (run_dir / "hf" / "model.safetensors").is_file()
    # a second train of the same config without --resume refuses to overwrite the run
    code, out, err = cli(
        monkeypatch, capsys, "train", str(cfg), "--set", "train.seed=3", "--runs", runs
    )
    assert code == 2 and "--resume" in err
    # with --resume the finished run is reused, shown as a table
    code, out, err = cli(monkeypatch, capsys, "train", str(cfg), "--set", "train.seed=3",
                         "--runs", runs, "--resume")  # fmt: skip
    assert code == 0 and "val loss" in out and "finished" in out


def test_bad_input_is_one_line_and_exit_2(cache_dir, tmp_path, monkeypatch, capsys):
    cfg = _toml(cache_dir, tmp_path / "run.toml", tokens=1024)
    code, _, err = cli(monkeypatch, capsys, "train", str(cfg), "--set", "train.batchsize=8")
    assert code == 2 and "did you mean 'batch_size'" in err
    code, _, err = cli(monkeypatch, capsys, "export", str(tmp_path / "nowhere"))
    assert code == 2 and "not a run directory" in err
    code, _, err = cli(monkeypatch, capsys, "train", str(cfg), "--set", "model.norm=rmsnorm",
                       "--set", "model.pos=none", "--runs", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    code, _, err = cli(monkeypatch, capsys, "export", str(run_dir))
    assert code == 2 and "model.norm = 'layernorm'" in err


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_final_loss(cache_dir, tmp_path):
    """A real SIGKILL in the middle of a run, then --resume: the same curve as a run never
    stopped. (Marked slow: a few seconds on an idle machine, more on a busy one.)"""
    steps = 400
    cfg = _toml(cache_dir, tmp_path / "run.toml", tokens=256 * steps, checkpoint_every=40)
    out = tmp_path / "killed"
    args = [sys.executable, "-c", "from scalelab.cli import main; main()",
            "train", str(cfg), "--runs", str(out), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        ckpts = sorted(out.glob("*/checkpoint/step-*"))
        if ckpts and int(ckpts[-1].name.split("-")[1]) >= 120:
            proc.send_signal(signal.SIGKILL)
            killed_at = int(ckpts[-1].name.split("-")[1])
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL
    (run_dir,) = out.iterdir()
    assert not (run_dir / "summary.json").exists()
    assert read_metrics(run_dir)[-1]["step"] < steps
    r = scalelab("train", str(cfg), "--runs", str(out), "--resume", "--quiet", "--json")
    assert r.returncode == 0, r.stderr
    resumed = json.loads(r.stdout)

    from scalelab.config import load_run_config

    whole = train(load_run_config(cfg), tmp_path / "whole", progress=False)
    assert resumed["status"] == "finished" and resumed["step"] == steps
    assert abs(resumed["val_loss"] - whole.val_loss) < 1e-3
    assert abs(resumed["train_loss"] - whole.train_loss) < 1e-3
    drop = {"elapsed", "tokens_per_second", "threads"}
    curve = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(run_dir)]
    assert curve == [
        {k: v for k, v in r.items() if k not in drop} for r in read_metrics(whole.path)
    ]
