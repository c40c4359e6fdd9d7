"""GRPO: advantages, the clipped loss, a constant reward leaves the policy unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scalelab.posttrain import posttrain, posttrain_config
from scalelab.posttrain.rl import group_advantages, grpo_loss
from scalelab.posttrain.stage import build_lm, open_policy, stage_record
from scalelab.runs import FinishedRun, RunError

SMALL = [
    "posttrain.steps=3",
    "posttrain.batch_size=4",
    "posttrain.group=4",
    "posttrain.eval_every=3",
    "posttrain.eval_prompts=20",
    "posttrain.kl_prompts=8",
]


def test_group_advantages() -> None:
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    a = group_advantages(r)
    std = torch.tensor([1.0, 0.0, 0.0, 1.0]).std()
    assert torch.allclose(a[0], (r[0] - 0.5) / (std + 1e-6))
    assert torch.all(a[1] == 0)  # a group that scores alike teaches nothing


def test_clipped_ratio_stops_the_gradient_beyond_the_clip() -> None:
    old = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    adv = torch.tensor([1.0, -1.0])
    far = torch.full((2, 3), 0.5, requires_grad=True)  # ratio e^0.5 = 1.65 > 1.2
    grpo_loss(far, old, adv, mask, clip=0.2).backward()
    # positive advantage: clipped above (no gradient); negative: min keeps the ratio term
    assert torch.all(far.grad[0] == 0) and torch.all(far.grad[1] != 0)
    near = torch.full((2, 3), 0.05, requires_grad=True)
    grpo_loss(near, old, adv, mask, clip=0.2).backward()
    assert torch.all(near.grad != 0)


def _params(stage_dir: str) -> list[torch.Tensor]:
    return [p.detach().clone() for p in build_lm(open_policy(stage_dir)).parameters()]


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_grpo_with_a_constant_reward_leaves_the_policy_unchanged(
    sort_run, tmp_path, monkeypatch, kl_coef
) -> None:
    cfg = posttrain_config([*SMALL, f"posttrain.kl_coef={kl_coef}"])
    before = [p.detach().clone() for p in build_lm(open_policy(sort_run)).parameters()]
    # the grader says 0.7 to every completion: every advantage is 0
    monkeypatch.setattr("scalelab.posttrain.rl.grade", lambda task, ps, cs: [0.7] * len(ps))
    flat = posttrain(sort_run, "rl", "sort", cfg, out=tmp_path / "const")
    after = _params(flat["run_dir"])
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert flat["kl"] == 0.0  # the policy is its reference
    monkeypatch.undo()
    # the task's own grader moves it (so the test above can fail)
    moved = posttrain(sort_run, "rl", "sort", cfg, out=tmp_path / "grader")
    assert not all(
        torch.equal(a, b) for a, b in zip(before, _params(moved["run_dir"]), strict=True)
    )


def test_rl_logs_kl_and_rewards_every_step(sort_run, tmp_path) -> None:
    from scalelab import rundir

    s = posttrain(sort_run, "rl", "sort", posttrain_config(SMALL), out=tmp_path / "rl")
    rows = [r for r in rundir.read_metrics(s["run_dir"]) if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all("kl" in r and "gold_reward" in r and "proxy_reward" in r for r in rows)
    assert rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)  # the first batch: policy = reference
    assert [c["step"] for c in s["curve"]] == [0, 3]
    assert s["curve"][0]["kl"] == 0.0


def test_parents_are_opened_as_finished_runs(sort_run, tmp_path) -> None:
    p = open_policy(sort_run)
    assert isinstance(p, FinishedRun) and p.run_id == Path(sort_run).name and stage_record(p) == {}
    # a stage written elsewhere keeps its own id (its children's ids depend on it)
    s = posttrain(sort_run, "sft", "sort", posttrain_config(SMALL), out=tmp_path / "elsewhere")
    stage = open_policy(s["run_dir"])
    assert stage.run_id == s["run_id"] != "elsewhere"
    assert stage_record(stage)["method"] == "sft" and stage.cfg == p.cfg
    (tmp_path / "elsewhere" / "summary.json").unlink()  # as if it had been stopped
    with pytest.raises(RunError, match="has not finished"):
        open_policy(tmp_path / "elsewhere")
