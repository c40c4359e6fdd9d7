"""budgets = "branches": one WSD run per size, its shorter budgets branched off it."""

import json

import pytest

from scalelab.errors import ConfigError
from scalelab.study import load_points, study_from_dict, sweep
from scalelab.study.grid import expand

STUDY = {
    "study": {
        "name": "branchy",
        "corpus": "markov:order=1,vocab=16,seed=0,tokens=60000",
        "tokens": [2560, 5120, 10240],  # 10, 20 and 40 steps of 8 x 32 tokens
        "budgets": "branches",
        "cooldown": 0.25,
        "sizes": [
            {"name": "xs", "n_layer": 1, "d_model": 16, "n_head": 2},
            {"name": "s", "n_layer": 2, "d_model": 32, "n_head": 2},
        ],
    },
    "model": {"vocab_size": 18, "context": 32},
    "train": {"batch_size": 8, "lr": 1e-2, "eval_every": 10, "eval_batches": 2,
              "device": "cpu", "warmup": 0.0, "precision": "fp32"},
}  # fmt: skip


def study(**s):
    return study_from_dict({**STUDY, "study": {**STUDY["study"], **s}})


def test_the_plan_is_one_parent_per_size_and_its_branches():
    runs = expand(study())
    assert len(runs) == 6
    for size in ("xs", "s"):
        mine = [r for r in runs if r.axes["size"] == size]
        parent = next(r for r in mine if r.config.train.tokens == 10240)
        assert parent.config.train.schedule == "wsd" and parent.config.train.decay_fraction == 0.25
        # each branch's cooldown starts at its point: 10 steps -> 8 (of 256 tokens), 20 -> 15
        assert parent.config.train.save_at == (8 * 256, 15 * 256)
        for r in mine:
            if r is not parent:
                assert r.config.train.branch_of == parent.run_id
                assert r.axes["budget"].startswith("tokens=")
    # the dedicated study names other runs (no branch fields) and the ids are distinct
    plain = expand(_dedicated())
    assert not {r.run_id for r in plain} & {r.run_id for r in runs}


def _dedicated():
    s = {k: v for k, v in STUDY["study"].items() if k not in ("budgets", "cooldown")}
    return study_from_dict({**STUDY, "study": s})


def test_study_file_checks():
    with pytest.raises(ConfigError, match=r"study\.budgets"):
        study(budgets="forks")
    with pytest.raises(ConfigError, match=r"study\.cooldown"):
        study(cooldown=1.5)
    with pytest.raises(ConfigError, match="at least two"):
        study(tokens=[2560])
    with pytest.raises(ConfigError, match="WSD schedule"):
        study_from_dict({**STUDY, "train": {**STUDY["train"], "schedule": "cosine"}})
    # a budget so short that its cooldown starts inside the parent's warmup (20 steps)
    s = {**STUDY, "train": {**STUDY["train"], "warmup_tokens": 20 * 256}}
    with pytest.raises(ConfigError, match="outside the stable phase"):
        expand(study_from_dict(s))


def test_a_branched_study_trains_parents_first_and_marks_branches(tmp_path):
    db, out = tmp_path / "r.db", tmp_path / "runs"
    res = sweep(study(), db=db, out=out, progress=False)
    assert all(o.status == "finished" for o in res.runs), res.runs
    pts = load_points(db)
    branches = pts[pts["technique"] == "branch"]
    assert len(branches) == 4 and (pts["kind"] == "run").all()
    parents = set(pts.loc[pts["technique"] != "branch", "run_id"])
    assert set(branches["parent_run_id"]) == parents
    assert sorted(pts["D"]) == sorted([2560, 5120, 10240] * 2)  # a branch's point: its budget
    for _, b in branches.iterrows():  # each trained only its cooldown
        info = json.loads((out / b["run_id"] / "summary.json").read_text())["branch"]
        assert info["at_tokens"] + info["trained_tokens"] == b["D"]
        assert info["trained_tokens"] <= 0.25 * b["D"] + 256
    # each branch started after its parent had ended
    ended = {r.run_id: (out / r.run_id / "summary.json").stat().st_mtime for r in res.runs}
    for _, b in branches.iterrows():
        started = (out / b["run_id"] / "config.json").stat().st_mtime
        assert started >= ended[b["parent_run_id"]]
    again = sweep(study(), db=db, out=out, progress=False)
    assert again.skipped == 6 and again.trained == 0


def test_a_branched_ladder_warms_up_for_one_number_of_tokens():
    # 10% of the longest run (40 steps of 256 tokens): 4 steps, for every run of the ladder
    # (the parent warms up as a dedicated run of its length; docs/branches.md measured
    # 5% of the shortest too short for the demo's held-out model)
    runs = expand(study_from_dict({**STUDY, "train": {**STUDY["train"], "warmup": 0.1}}))
    assert {r.config.train.warmup_tokens for r in runs} == {4 * 256}
    # but never past the shortest run's cooldown start (10 steps, 25% cooldown: step 8), so
    # a 50% warmup (20 steps) is cut to 8 and every branch point stays in the stable phase
    long = expand(study_from_dict({**STUDY, "train": {**STUDY["train"], "warmup": 0.5}}))
    assert {r.config.train.warmup_tokens for r in long} == {8 * 256}
    # a study's own warmup in tokens is kept
    fixed = expand(study_from_dict({**STUDY, "train": {**STUDY["train"], "warmup_tokens": 512}}))
    assert {r.config.train.warmup_tokens for r in fixed} == {512}
    # the dedicated ladder keeps its warmup as a fraction of each run (its ids unchanged)
    assert {r.config.train.warmup_tokens for r in expand(_dedicated())} == {None}


def test_a_branch_is_ready_once_its_parent_kept_its_point(tmp_path):
    from types import SimpleNamespace

    from scalelab.runner.dispatch import branch_point_passed
    from scalelab.runner.pool import Job
    from scalelab.train import train

    out = tmp_path / "runs"
    runs = expand(study(sizes=[STUDY["study"]["sizes"][0]]))
    task = SimpleNamespace(out=str(out))
    parent = next(r for r in runs if r.config.train.save_at)
    branches = [Job(r.run_id, (r, task)) for r in runs if r.config.train.branch_of]
    assert len(branches) == 2
    assert not any(branch_point_passed(j, parent.run_id) for j in branches)  # nothing kept

    # the parent stops early, between its two points (8 and 15 steps): one branch is ready
    def stop(step, loss):
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # (the study evaluates every 10 steps)
        train(parent.config, out, progress=False, on_eval=stop)
    ready = {j.data[0].config.train.branch_at: branch_point_passed(j, parent.run_id)
             for j in branches}  # fmt: skip
    assert ready == {8 * 256: True, 15 * 256: False}
    # only the branch's own parent counts, and a damaged state does not
    first = next(j for j in branches if j.data[0].config.train.branch_at == 8 * 256)
    assert not branch_point_passed(first, "0" * 12)
    (kept,) = (out / parent.run_id / "branch_points").iterdir()
    (kept / "model.safetensors").write_bytes(b"torn")
    assert not branch_point_passed(first, parent.run_id)
