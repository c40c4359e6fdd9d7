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


D90 = 37  # the fake trainer's known answer


def test_the_bisection_runs_and_lands_on_a_known_d90(tiny_run, tmp_path, monkeypatch):
    """A fake scorer makes accuracy a known step function of d (50% below D90, 95% from it;
    full fine-tuning 100%, so the 90% target is 0.9): the sweep brackets D90 between 16 and
    256, and with resolution 0 the bisection must land on it exactly."""
    import importlib

    from scalelab.intrinsic import Subspace

    # the module (scalelab.tasks re-exports a function of the same name)
    finetune = importlib.import_module("scalelab.tasks.finetune")

    def fake_accuracy(module, examples, task, batch_size=128):
        if not isinstance(module, Subspace):
            return len(examples)  # the full fine-tune: every item right
        return round((0.95 if module.d >= D90 else 0.5) * len(examples))

    monkeypatch.setattr(finetune, "accuracy", fake_accuracy)
    res = run_intrinsic(
        tiny_run, "add", dims=(16, 256), steps=1, resolution=0.0, db=tmp_path / "i.db"
    )
    assert res.full_performance == 1.0 and res.target == 0.9
    assert res.d90 == D90
    phases = {t.d: t.phase for t in res.trials}
    assert phases[16] == "sweep" and phases[256] == "sweep"
    bisected = sorted(d for d, p in phases.items() if p == "bisect")
    assert D90 in bisected and D90 - 1 in bisected  # the bracket closed on [36, 37]
    saved = json.loads((tiny_run / "intrinsic" / "add-fastfood.json").read_text())
    assert saved["d90"] == D90 and saved["settings"]["resolution"] == 0.0
    assert load_intrinsic(tmp_path / "i.db").iloc[0]["d90"] == D90
    # a coarser resolution stops early, on a d that reaches the target, within 10% of it
    coarse = run_intrinsic(tiny_run, "add", dims=(16, 256), steps=1, resolution=0.1)
    assert D90 <= coarse.d90 <= D90 / 0.9 and len(coarse.trials) < len(res.trials)
