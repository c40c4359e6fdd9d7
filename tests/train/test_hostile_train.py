"""Runs that cannot be trained say so in one error, before anything is written; a disk that
fills mid-run marks the run failed; export names the step it took when the newest checkpoint
is damaged; progress reaches a redirected stderr."""

from __future__ import annotations

import errno
import json

import pytest

from scalelab.config import load_run_config
from scalelab.errors import ConfigError, StoreError, TrainingError
from scalelab.train import loop as loop_mod
from scalelab.train import train
from scalelab.train.export import export


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.init_std=-1", "model.init_std must be positive"),
        ("model.norm_eps=nan", "model.norm_eps must be a finite number"),
        ("model.rope_theta=0", "model.rope_theta must be positive"),
    ],
)
def test_model_floats_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(None, [override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # 1e9 wide: count says ~1.7e5 PiB for training; no machine has it
        (("model.d_model=1000000000", "model.n_head=1"), r"needs about .* to train .* free"),
        (("train.tokens=1e30",), r"1e\+30 tokens is .* epochs .* more than 1000"),
    ],
)
def test_impossible_runs_fail_before_anything_is_written(make_cfg, tmp_path, overrides, message):
    cfg = make_cfg(*overrides)
    with pytest.raises(ConfigError, match=message):
        train(cfg, tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists()  # no run directory, no lock file


@pytest.mark.parametrize("shape", [{"status": "finished"}, [], "x", 3])
def test_a_summary_of_the_wrong_shape_is_one_error(make_cfg, tmp_path, shape):
    cfg = make_cfg()
    run = tmp_path / cfg.run_id()
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(shape))
    with pytest.raises(StoreError, match="is not a run summary"):
        train(cfg, tmp_path, resume=True, progress=False)


def test_a_checkpoint_path_that_is_a_file_is_one_error(make_cfg, tmp_path):
    cfg = make_cfg()
    (tmp_path / cfg.run_id()).mkdir()
    (tmp_path / cfg.run_id() / "checkpoint").write_text("")
    with pytest.raises(StoreError, match="is a file where the run keeps its checkpoints"):
        train(cfg, tmp_path, resume=True, progress=False)


def test_a_full_disk_marks_the_run_failed_in_one_error(make_cfg, tmp_path, monkeypatch):
    cfg = make_cfg()
    real = loop_mod.save_checkpoint
    calls = []

    def fills_up(root, step, *a, **k):
        calls.append(step)
        if len(calls) == 2:  # the second checkpoint finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device", str(root / "x"))
        return real(root, step, *a, **k)

    monkeypatch.setattr(loop_mod, "save_checkpoint", fills_up)
    with pytest.raises(TrainingError, match=r"No space left on device writing .* marked failed"):
        train(cfg, tmp_path, progress=False)
    summary = json.loads((tmp_path / cfg.run_id() / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left" in summary["reason"]
    assert summary["step"] == 20


def test_export_names_the_step_when_the_newest_checkpoint_is_damaged(make_cfg, tmp_path):
    cfg = make_cfg()
    train(cfg, tmp_path, progress=False)
    run = tmp_path / cfg.run_id()
    newest = sorted((run / "checkpoint").iterdir())[-1]
    with (newest / "model.safetensors").open("ab") as f:
        f.write(b"damage")
    notes: list[str] = []
    export(run, tmp_path / "hf", note=notes.append)
    assert len(notes) == 1 and "exported step 20" in notes[0] and newest.name in notes[0]
    with pytest.raises(StoreError, match=r"not exported .*newest intact one is step 20"):
        export(run, tmp_path / "hf2", strict=True)
    assert not (tmp_path / "hf2").exists()
    with pytest.raises(ConfigError, match="is a file"):
        export(run, tmp_path / "hf" / "config.json")


def test_progress_is_plain_lines_when_stderr_is_redirected(make_cfg, tmp_path, capsys):
    cfg = make_cfg()
    train(cfg, tmp_path, progress=True)  # capsys: stderr is not a terminal
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == f"{cfg.run_id()}: step 0/30"
    assert lines[-1].startswith(f"{cfg.run_id()}: step 30/30  loss ")
