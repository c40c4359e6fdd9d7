"""The demo with budgets = "branches": one WSD run per size, the smaller budget a branch."""

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


def test_branched_demo_fits_and_checks_a_wsd_holdout(tmp_path):
    design = DemoDesign(**{**TINY_DEMO, "budgets": "branches", "cooldown": 0.25})
    res = demo(tmp_path / "d", design, workers=1, progress=False, log=lambda *_: None)
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    pts = load_points(tmp_path / "d" / "results.db", study="demo", kind="run")
    # 3 sizes x 2 budgets: per size one WSD parent (the larger budget) and one branch
    assert len(pts) == 6 and (pts["technique"] == "branch").sum() == 3
    assert sorted(pts["D"]) == sorted([10240, 20480] * 3)
    held = json.loads(
        (tmp_path / "d" / "runs" / s["holdout"]["run_id"] / "config.json").read_text()
    )
    assert held["train"]["schedule"] == "wsd" and held["train"]["decay_fraction"] == 0.25
    assert abs(s["holdout"]["relative_error"]) < 0.2 and res.report.exists()
