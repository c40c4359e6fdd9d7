"""WSD branches: a branch off a long run's stable phase is the run trained to its budget."""

from __future__ import annotations

import json
import shutil

import pytest

from scalelab.errors import ConfigError
from scalelab.train import train
from scalelab.train.branch import BRANCH_POINTS

STEP = 8 * 32  # tokens per step of the tiny runs (batch 8 x context 32)
# warmup 0: the parent's and a dedicated run's learning rates agree up to the cooldown, so
# a branch must reproduce the dedicated run to float rounding
WSD = ("train.schedule=wsd", "train.warmup=0", "train.decay_fraction=0.25")


def parent_and_branch(make_cfg, branch_steps=20, parent_steps=40, *extra):
    start = branch_steps - round(0.25 * branch_steps)  # the branch's cooldown start
    parent = make_cfg(
        *WSD, f"train.tokens={parent_steps * STEP}", f"train.save_at=[{start * STEP}]"
    )
    branch = make_cfg(
        *WSD,
        f"train.tokens={branch_steps * STEP}",
        f"train.branch_of={parent.run_id()}",
        f"train.branch_at={start * STEP}",
        *extra,
    )
    return parent, branch, start


def test_a_branch_matches_the_dedicated_wsd_run(make_cfg, tmp_path):
    parent, branch, start = parent_and_branch(make_cfg)
    dedicated = make_cfg(*WSD, f"train.tokens={20 * STEP}")
    assert len({parent.run_id(), branch.run_id(), dedicated.run_id()}) == 3
    train(parent, tmp_path, progress=False)
    kept = tmp_path / parent.run_id() / BRANCH_POINTS
    assert [p.name for p in kept.iterdir()] == [f"step-{start:08d}"]
    b = train(branch, tmp_path, progress=False)
    d = train(dedicated, tmp_path, progress=False)
    assert b.status == "finished" and b.tokens == d.tokens == 20 * STEP
    assert b.val_loss == pytest.approx(d.val_loss, abs=1e-5)
    assert b.val_loss != pytest.approx(
        train(parent, tmp_path, resume=True, progress=False).val_loss
    )
    assert b.branch == {
        "parent": parent.run_id(),
        "at_tokens": start * STEP,
        "trained_tokens": (20 - start) * STEP,
        "cooldown": "linear",
        "decay_fraction": 0.25,
    }
    # its curve starts with the parent's up to the branch point
    rows = [
        json.loads(x)
        for x in (tmp_path / branch.run_id() / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 20
    assert {r["step"] for r in rows} >= {0, 10, start, 20}


def test_with_one_warmup_in_tokens_a_branch_is_the_dedicated_run(make_cfg, tmp_path):
    # a real warmup (4 steps), fixed in tokens for parent, branch and dedicated run alike
    warm = (*WSD, f"train.warmup_tokens={4 * STEP}")
    parent = make_cfg(*warm, f"train.tokens={40 * STEP}", f"train.save_at=[{15 * STEP}]")
    branch = make_cfg(*warm, f"train.tokens={20 * STEP}", f"train.branch_of={parent.run_id()}",
                      f"train.branch_at={15 * STEP}")  # fmt: skip
    dedicated = make_cfg(*warm, f"train.tokens={20 * STEP}")
    train(parent, tmp_path, progress=False)
    b = train(branch, tmp_path, progress=False)
    d = train(dedicated, tmp_path, progress=False)
    assert b.val_loss == pytest.approx(d.val_loss, abs=1e-5)
    # the same warmup as a fraction (10%: 4 steps of the parent, 2 of the branch) differs
    frac = ("train.schedule=wsd", "train.warmup=0.1", "train.decay_fraction=0.25")
    p2 = make_cfg(*frac, f"train.tokens={40 * STEP}", f"train.save_at=[{15 * STEP}]")
    b2 = make_cfg(*frac, f"train.tokens={20 * STEP}", f"train.branch_of={p2.run_id()}",
                  f"train.branch_at={15 * STEP}")  # fmt: skip
    d2 = make_cfg(*frac, f"train.tokens={20 * STEP}")
    train(p2, tmp_path, progress=False)
    gap = (
        train(b2, tmp_path, progress=False).val_loss - train(d2, tmp_path, progress=False).val_loss
    )
    assert abs(gap) > 1e-4


def test_a_branch_shares_its_parents_warmup_in_tokens(make_cfg, tmp_path):
    parent = make_cfg(*WSD, f"train.tokens={40 * STEP}", f"train.save_at=[{15 * STEP}]")
    train(parent, tmp_path, progress=False)
    branch = make_cfg(*WSD, f"train.warmup_tokens={2 * STEP}", f"train.tokens={20 * STEP}",
                      f"train.branch_of={parent.run_id()}", f"train.branch_at={15 * STEP}")  # fmt: skip
    with pytest.raises(ConfigError, match="warmup_tokens"):
        train(branch, tmp_path, progress=False)


def test_a_killed_branch_resumes_from_its_own_checkpoint(make_cfg, tmp_path):
    parent, branch, start = parent_and_branch(make_cfg, 40, 60, "train.checkpoint_every=2",
                                              "train.eval_every=2")  # fmt: skip
    train(parent, tmp_path, progress=False)

    def interrupt(step, loss):
        if step == start + 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(branch, tmp_path, progress=False, on_eval=interrupt)
    assert not (tmp_path / branch.run_id() / "summary.json").exists()
    resumed = train(branch, tmp_path, resume=True, progress=False)
    # the same branch trained without a stop, in a second runs directory beside the parent
    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(tmp_path / parent.run_id(), other / parent.run_id())
    straight = train(branch, other, progress=False)
    assert resumed.status == "finished"
    assert resumed.val_loss == pytest.approx(straight.val_loss, abs=1e-6)
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / branch.run_id() / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps))  # continued, no step logged twice


def test_branch_errors_are_named_before_any_work(make_cfg, tmp_path):
    _, branch, start = parent_and_branch(make_cfg)
    with pytest.raises(ConfigError, match=r"parent run \w+ is not in"):
        train(branch, tmp_path, progress=False)
    assert not (tmp_path / branch.run_id()).exists()
    # a parent that kept no state at that point
    plain = make_cfg(*WSD, f"train.tokens={40 * STEP}")
    train(plain, tmp_path, progress=False)
    orphan = make_cfg(*WSD, f"train.tokens={20 * STEP}", f"train.branch_of={plain.run_id()}",
                      f"train.branch_at={start * STEP}")  # fmt: skip
    with pytest.raises(ConfigError, match="no intact state"):
        train(orphan, tmp_path, progress=False)
    # a branch point inside the branch's own cooldown, and one that is not a whole step
    with pytest.raises(ConfigError, match="stable phase"):
        train(make_cfg(*WSD, f"train.tokens={20 * STEP}", f"train.branch_of={plain.run_id()}",
                       f"train.branch_at={18 * STEP}"), tmp_path, progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match="whole number of steps"):
        train(make_cfg(*WSD, f"train.tokens={40 * STEP}", "train.save_at=[1000]"), tmp_path,
              progress=False)  # fmt: skip
    # a branch of another model
    with pytest.raises(ConfigError, match=r"\[model\] differs"):
        train(make_cfg(*WSD, "model.d_model=16", f"train.tokens={20 * STEP}",
                       f"train.branch_of={plain.run_id()}", f"train.branch_at={start * STEP}"),
              tmp_path, progress=False)  # fmt: skip


def test_branch_fields_are_checked_in_the_config(make_cfg):
    with pytest.raises(ConfigError, match=r"train\.schedule = 'wsd'"):
        make_cfg("train.save_at=[2560]")
    with pytest.raises(ConfigError, match="branch_of"):
        make_cfg(*WSD, "train.branch_at=2560")
    with pytest.raises(ConfigError, match="below the branch's budget"):
        make_cfg(*WSD, "train.tokens=2560", "train.branch_of=0123456789ab", "train.branch_at=2560")
    with pytest.raises(ConfigError, match="cooldown"):
        make_cfg("train.cooldown=1-sqrt")
