"""The demo's held-out model predicted by the form chosen by extrapolation (issue 16),
beside the Chinchilla fit: a tiny ladder of 4 sizes (one held out in the rolling origin,
3 left to fit), trained in seconds."""

import json
import os

import pytest

FOUR_SIZES = {
    "corpus": "markov:order=1,vocab=8,seed=0,tokens=200000",
    "params": (600, 1200, 2400, 4800),
    "n_layer": 1,
    "tokens": (10240, 20480),
    "context": 32,
    "batch_size": 8,
    "bootstrap": 20,
    "eval_every": 40,
}


@pytest.mark.slow
def test_demo_reports_the_auto_choice_on_the_held_out_model(tmp_path, monkeypatch):
    from scalelab.apps.demo import DemoDesign, demo

    monkeypatch.setenv("SCALELAB_CACHE", os.environ.get("SCALELAB_CACHE", str(tmp_path / "c")))
    res = demo(tmp_path / "d", DemoDesign(**FOUR_SIZES), workers=1, progress=False, log=print)
    s = json.loads((res.out / "summary.json").read_text())
    h = s["holdout"]
    auto = h["auto"]
    assert auto["form"] in ("chinchilla", "chinchilla-tied", "overtrain")
    assert auto["selection"]["holdout"] == 1  # 4 sizes: 3 fit, 1 predicted
    assert auto["relative_error"] == pytest.approx(
        (auto["predicted_loss"] - h["actual_loss"]) / h["actual_loss"]
    )
    lo, hi = auto["predicted_interval"]
    assert lo <= auto["predicted_loss"] <= hi and auto["level"] == 0.9
    page = res.report.read_text()
    assert "<h2>Choosing the law</h2>" in page and "<td>chosen</td>" in page


def test_demo_skips_the_auto_choice_on_three_sizes(tiny_demo):
    auto = json.loads((tiny_demo.out / "summary.json").read_text())["holdout"]["auto"]
    assert "3 model sizes" in auto["skipped"]
