"""d90 of a run: on a fine-tune task, and of pretraining from scratch (task "lm")."""

import json

from tests.tasks.conftest import code_corpus as code_corpus  # the fixtures
from tests.tasks.conftest import tiny_run as tiny_run

from scalelab.intrinsic import run_intrinsic
from scalelab.tasks.results import load_intrinsic


def test_pretraining_from_scratch_has_a_d90(tiny_run, tmp_path):
    db = tmp_path / "i.db"
    res = run_intrinsic(
        tiny_run, "lm", dims=(16, 256, 4096), steps=30, lr=0.1, full_lr=3e-3, resolution=1.0,
        db=db,
    )  # fmt: skip
    assert res.full_performance > 0.3  # 30 steps of full training lower the loss from ln 258
    from scalelab.runs import open_run

    assert sum(p.numel() for p in open_run(tiny_run).model.parameters()) == res.D
    assert res.d90 in (16, 256, 4096)
    saved = json.loads((tiny_run / "intrinsic" / "lm-fastfood-initial.json").read_text())
    assert saved["d90"] == res.d90 and saved["initial"] is True
    row = load_intrinsic(db).iloc[0]
    assert row["task"] == "lm" and row["initial"] == 1 and row["d90"] == res.d90


def test_a_task_model_that_learns_nothing_has_no_d90(tiny_run, tmp_path):
    res = run_intrinsic(tiny_run, "add", dims=(16, 64), steps=5, full_lr=1e-6)
    assert res.d90 is None and "chance" in res.note


def test_a_killed_search_resumes_from_its_finished_dimensions(tiny_run, tmp_path):
    import shutil

    import pytest

    kw = dict(dims=(16, 256, 4096), steps=10, lr=0.1, full_lr=3e-3, resolution=1.0)
    whole = run_intrinsic(shutil.copytree(tiny_run, tmp_path / "whole"), "lm", **kw)

    class Killed(Exception):
        pass

    def log(msg: str) -> None:
        if msg.startswith("d = 16:"):
            raise Killed  # as a kill right after the first dimension finished

    run = shutil.copytree(tiny_run, tmp_path / "run")
    with pytest.raises(Killed):
        run_intrinsic(run, "lm", log=log, **kw)
    partial = run / "intrinsic" / "lm-fastfood-initial.partial.json"
    assert set(json.loads(partial.read_text())["trials"]) == {"full", "16"}
    said: list[str] = []
    resumed = run_intrinsic(run, "lm", log=said.append, **kw)
    assert not any(m.startswith("full training") for m in said)  # kept, not trained again
    assert resumed.d90 == whole.d90 and not partial.exists()
    perf = [(t.d, t.performance) for t in resumed.trials]
    assert perf == pytest.approx([(t.d, t.performance) for t in whole.trials], rel=1e-5)
