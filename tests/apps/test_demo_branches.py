"""The demo with budgets = "branches" (its default): one WSD run per size, the smaller
budget a branch, and the held-out model trained in the ladder's pool."""

import json

from scalelab.apps.demo import DemoDesign, demo
from scalelab.study import load_points

TINY_DEMO = {  # as tests/conftest.py's tiny demo
    "corpus": "markov:order=1,vocab=8,seed=0,tokens=200000",
    "params": (600, 1200, 2400),
    "n_layer": 1,
    "tokens": (10240, 20480),
    "context": 32,
    "batch_size": 8,
    "bootstrap": 20,
    "eval_every": 40,
}


def test_the_default_demo_is_branched():
    assert DemoDesign().budgets == "branches"


def test_branched_demo_fits_and_checks_a_wsd_holdout(tmp_path):
    design = DemoDesign(**{**TINY_DEMO, "budgets": "branches", "cooldown": 0.25})
    res = demo(tmp_path / "d", design, workers=1, progress=False, log=lambda *_: None)
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    pts = load_points(tmp_path / "d" / "results.db", study="demo", kind="run")
    # 3 sizes x 2 budgets: per size one WSD parent (the larger budget) and one branch
    assert len(pts) == 6 and (pts["technique"] == "branch").sum() == 3
    assert sorted(pts["D"]) == sorted([10240, 20480] * 3)
    runs = tmp_path / "d" / "runs"
    held = json.loads((runs / s["holdout"]["run_id"] / "config.json").read_text())
    assert held["train"]["schedule"] == "wsd" and held["train"]["decay_fraction"] == 0.25
    # one warmup for every run, the held-out model's too: 5% of the largest budget (80
    # steps of 256 tokens -> 4 steps), not of the smallest (40 steps -> 2)
    warm = {
        json.loads((runs / r / "config.json").read_text())["train"]["warmup_tokens"]
        for r in [*pts["run_id"], s["holdout"]["run_id"]]
    }
    assert warm == {4 * 256}
    assert abs(s["holdout"]["relative_error"]) < 0.2 and res.report.exists()


def test_the_held_out_model_trains_beside_the_ladder(tmp_path):
    # two workers: the held-out model (the longest run) starts first, before any ladder run
    # has ended, instead of after the whole ladder with one worker idle
    design = DemoDesign(**{**TINY_DEMO, "params": (600, 1200, 2400)})
    res = demo(tmp_path / "d", design, workers=2, progress=False, log=lambda *_: None)
    runs = tmp_path / "d" / "runs"
    pts = load_points(tmp_path / "d" / "results.db", study="demo", kind="run")
    held_started = (runs / res.summary["holdout"]["run_id"] / "config.json").stat().st_mtime
    ladder_ended = min((runs / r / "summary.json").stat().st_mtime for r in pts["run_id"])
    assert held_started <= ladder_ended


def test_the_demo_reuses_the_reports_choice_of_form(tmp_path, monkeypatch):
    # the report chooses the form on the ladder's runs; the demo's own held-out check of that
    # choice reads it instead of running select_law a second time
    import scalelab.apps.demo as demo_module

    def no_second_choice(*a, **k):
        raise AssertionError("select_law ran twice")

    monkeypatch.setattr(demo_module, "select_law", no_second_choice)
    design = DemoDesign(**{**TINY_DEMO, "params": (600, 1200, 2400, 4800)})
    res = demo(tmp_path / "d", design, workers=1, progress=False, log=lambda *_: None)
    auto = res.summary["holdout"]["auto"]
    assert "form" in auto, auto
    assert set(res.summary["phase_seconds"]) == {"sweep", "fit", "report"}
    assert sum(res.summary["phase_seconds"].values()) <= res.summary["wall_seconds"]


def test_an_unknown_budgets_mode_is_refused_naming_the_modes():
    import pytest

    from scalelab.errors import ConfigError

    with pytest.raises(ConfigError, match="dedicated, branches"):
        DemoDesign(budgets="nosuch")
