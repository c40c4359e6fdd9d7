"""Stages as run directories: SFT's targets, checks before work, resume, points, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scalelab import rundir
from scalelab.data.tokenizer import ByteTokenizer
from scalelab.errors import ConfigError, DataError
from scalelab.posttrain import posttrain, posttrain_config
from scalelab.posttrain.plugin import check_pipeline
from scalelab.posttrain.sft import demo_batch
from scalelab.runs import RunError

TINY = [
    "posttrain.steps=4",
    "posttrain.batch_size=4",
    "posttrain.eval_prompts=20",
    "posttrain.kl_prompts=8",
    "posttrain.pairs=40",
    "posttrain.checkpoint_every=2",
]


def test_sft_scores_completion_tokens_only() -> None:
    tok = ByteTokenizer()
    idx, targets = demo_batch(tok, [("12+34=", "64"), ("sort:53819=", "13589")])
    # row 0: [eos] 1 2 + 3 4 = 6 4 [eos]: inputs all but the last; only "=" predicts
    row = targets[0].tolist()
    assert row[:6] == [-100] * 6
    assert row[6:9] == [ord("6"), ord("4"), tok.eos_id]
    assert all(t == -100 for t in row[9:])  # padding after the shorter row's end
    assert idx[0, 0] == tok.eos_id and idx[0, 6] == ord("=")
    assert targets[1].tolist()[11:17] == [*map(ord, "13589"), tok.eos_id]


def test_a_stage_is_a_derived_run_directory_and_a_point(sort_run, tmp_path) -> None:
    db = tmp_path / "r.db"
    s = posttrain(sort_run, "sft", "sort", posttrain_config(TINY), db=db)
    d = Path(s["run_dir"])
    assert d.parent == Path(sort_run).parent and d.name.startswith("pt-sft-")
    cfg = rundir.read_json(d / "config.json")
    assert cfg["kind"] == "posttrain" and cfg["parent_run_id"] == Path(sort_run).name
    from scalelab.posttrain.points import load_posttrain

    pts = load_posttrain(db)
    row = pts[pts["run_id"] == s["run_id"]].iloc[0]
    assert row["method"] == "sft" and row["task"] == "sort" and row["flops"] > 0
    assert 0 <= row["accuracy_lo"] <= row["accuracy"] <= row["accuracy_hi"] <= 1
    # the point names its settings (the report draws one line per setting of a method)
    assert row["settings"]["steps"] == 4 and row["settings"]["batch_size"] == 4
    # asked again, the finished stage is returned as it is
    again = posttrain(sort_run, "sft", "sort", posttrain_config(TINY))
    assert again == s


def test_an_interrupted_stage_resumes_to_the_same_losses(sort_run, tmp_path, monkeypatch) -> None:
    import scalelab.posttrain.sft as sft

    cfg = posttrain_config(TINY)  # 4 steps, a checkpoint every 2
    whole = posttrain(sort_run, "sft", "sort", cfg, out=tmp_path / "whole")
    calls = {"n": 0}
    real = sft.demo_batch

    def crash_at_step_4(*args, **kwargs):  # dies after the step-2 checkpoint, inside step 4
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sft, "demo_batch", crash_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        posttrain(sort_run, "sft", "sort", cfg, out=tmp_path / "cut")
    assert not (tmp_path / "cut" / "summary.json").exists()
    assert [c.name for c in (tmp_path / "cut" / "checkpoint").iterdir()] == ["step-00000002"]
    monkeypatch.undo()
    again = posttrain(sort_run, "sft", "sort", cfg, out=tmp_path / "cut")
    losses = [r["loss"] for r in rundir.read_metrics(again["run_dir"])]
    assert losses == [r["loss"] for r in rundir.read_metrics(whole["run_dir"])]
    assert again["accuracy"] == whole["accuracy"]


def test_bad_inputs_fail_before_any_work(sort_run, tmp_path) -> None:
    with pytest.raises(ConfigError, match="beta must be positive"):
        posttrain_config(["posttrain.beta=0"])
    with pytest.raises(ConfigError, match="without a grader"):
        posttrain(sort_run, "rl", "copy", posttrain_config(TINY))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((Path(sort_run) / "config.json").read_text())
    with pytest.raises(RunError, match="no intact checkpoint"):
        posttrain(unfinished, "sft", "sort", posttrain_config(TINY))
    shutil.copytree(Path(sort_run) / "checkpoint", unfinished / "checkpoint")
    with pytest.raises(RunError, match="has not finished training"):
        posttrain(unfinished, "sft", "sort", posttrain_config(TINY))
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"prompt": "sort:12345=", "chosen": "12345", "rejected": "12345"}\n')
    with pytest.raises(DataError, match="line 1: chosen and rejected are the same"):
        posttrain(sort_run, "dpo", "sort", posttrain_config([f"posttrain.pairs_file={bad}"]))
    bad.write_text('{"prompt": "sort:12345=", "chosen": "12345"}\n')
    with pytest.raises(DataError, match='line 1 needs string fields "prompt", "chosen"'):
        posttrain(sort_run, "reward", "sort", posttrain_config([f"posttrain.pairs_file={bad}"]))
    with pytest.raises(ConfigError, match="not a reward model"):
        posttrain(sort_run, "rl", "sort", posttrain_config(TINY), reward=str(sort_run))
    assert not [p for p in Path(sort_run).parent.iterdir() if "pt-dpo" in p.name]


def test_reward_dpo_and_best_of_n_from_an_sft_stage(sort_run, tmp_path) -> None:
    from scalelab.posttrain import best_of_n

    cfg = posttrain_config(TINY)
    sft = posttrain(sort_run, "sft", "sort", cfg, out=tmp_path / "sft")["run_dir"]
    pairs = posttrain(sft, "pairs", "sort", cfg, out=tmp_path / "pairs")
    lines = Path(pairs["pairs_file"]).read_text().splitlines()
    assert len(lines) == 40
    p = json.loads(lines[0])
    assert p["gold_chosen"] > p["gold_rejected"]
    with_file = posttrain_config([*TINY, f"posttrain.pairs_file={pairs['pairs_file']}"])
    rm = posttrain(sort_run, "reward", "sort", with_file, out=tmp_path / "rm")
    assert rm["pairs"] == 40 and 0 <= rm["pair_accuracy"] <= 1
    dpo = posttrain(sft, "dpo", "sort", with_file, out=tmp_path / "dpo")
    assert dpo["loss"] is not None and dpo["kl"] is not None
    bon = best_of_n(sft, rm["run_dir"], "sort", [1, 4], cfg, out=tmp_path / "bon")
    assert [c["n"] for c in bon["curve"]] == [1, 4]
    assert bon["curve"][1]["proxy_reward"] >= bon["curve"][0]["proxy_reward"]
    # best-of-n's accuracy (kept completions right) with its interval over prompts
    for c in bon["curve"]:
        assert 0 <= c["accuracy_lo"] <= c["accuracy"] <= c["accuracy_hi"] <= 1


def test_study_pipeline_is_checked() -> None:
    assert check_pipeline({"task": "dyck", "stages": ["sft", "rl"]})["task"] == "dyck"
    with pytest.raises(ConfigError, match="needs a task"):
        check_pipeline({"stages": ["sft"]})
    with pytest.raises(ConfigError, match="stages is a list"):
        check_pipeline({"task": "dyck", "stages": ["sft", "ppo"]})
    with pytest.raises(ConfigError, match="beta must be positive"):
        check_pipeline({"task": "dyck", "dpo": {"beta": -1.0}})
    with pytest.raises(ConfigError, match=r"unknown key study\.posttrain\.stage"):
        check_pipeline({"task": "dyck", "stage": ["sft"]})


@pytest.mark.parametrize(
    "args, message",
    [
        (["posttrain", "RUN", "--method", "rl", "--task", "add"], "without a grader"),
        (
            ["posttrain", "RUN", "--method", "dpo", "--task", "sort", "--set", "posttrain.beta=0"],
            "beta must be positive",
        ),
        (["posttrain", "RUN", "--method", "ppo", "--task", "sort"], "not one of"),
        (["bon", "RUN", "--reward", "RUN", "--task", "sort", "--best-of", "0,4"], ">= 1"),
        (["posttrain", "NOWHERE", "--method", "sft", "--task", "sort"], "not a run directory"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(cli, sort_run, args, message) -> None:
    args = [str(sort_run) if a == "RUN" else a for a in args]
    r = cli(*args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_the_study_pipeline_runs_each_stage_from_the_right_parent(sort_run, tmp_path) -> None:
    from scalelab.posttrain.plugin import run_pipeline
    from scalelab.posttrain.points import load_posttrain

    small = {k.split(".")[1].split("=")[0]: int(k.split("=")[1]) for k in TINY}
    pipeline = check_pipeline(
        {"task": "sort", "stages": ["eval", "sft", "rl"], "set": small, "rl": {"group": 2}}
    )
    db = tmp_path / "p.db"
    ev, sft, rl = run_pipeline(Path(sort_run), pipeline, db)
    assert ev["parent_run_id"] == sft["parent_run_id"] == Path(sort_run).name
    assert rl["parent_run_id"] == sft["run_id"] and rl["reward"] == "grader"
    assert rundir.read_json(Path(rl["run_dir"]) / "config.json")["posttrain"]["group"] == 2
    assert set(load_posttrain(db)["method"]) == {"eval", "sft", "rl"}


@pytest.mark.parametrize(
    "setting",
    [
        "posttrain.steps=1e12",
        "posttrain.lr=nan",
        "posttrain.lr=0",
        "posttrain.beta=inf",
        "posttrain.group=1",
        "posttrain.batch_size=1e9",
        "posttrain.kl_coef=-1",
        "posttrain.loss='dpo'",
        "posttrain.clip=1.5",
    ],
)
def test_settings_out_of_range_are_refused(setting: str) -> None:
    with pytest.raises(ConfigError, match=r"posttrain\.|loss"):
        posttrain_config([setting])


def test_rpo_settings_are_read_by_dpo_on_the_command_line() -> None:
    """RPO (loss=rpo, rpo_alpha) on right-against-wrong pairs (chosen_right) is a DPO stage:
    the command line takes those keys for dpo and refuses them where nothing reads them."""
    from scalelab.cli.posttrain import _check_reads
    from scalelab.errors import ConfigError

    rpo = ["posttrain.loss=rpo", "posttrain.rpo_alpha=0.5", "posttrain.chosen_right=true"]
    _check_reads("dpo", rpo)
    with pytest.raises(ConfigError, match="chosen_right has no effect"):
        _check_reads("sft", rpo[2:])
