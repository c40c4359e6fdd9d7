"""The demo end to end, scaled down through the Python API (the real one is `make demo`)."""

import json

import pytest

from scalelab.apps.demo import DemoDesign
from scalelab.errors import ConfigError


def test_tiny_demo_writes_the_summary_contract_and_the_report(tiny_demo):
    s = json.loads((tiny_demo.out / "summary.json").read_text())
    h = s["holdout"]
    for key in ("predicted_loss", "actual_loss", "relative_error"):
        assert isinstance(h[key], float)
    assert h["relative_error"] == pytest.approx(
        (h["predicted_loss"] - h["actual_loss"]) / h["actual_loss"]
    )
    # the held-out model is about 4x the largest fitted N, at the largest fitted D
    assert 3.0 < h["n_ratio"] < 5.5
    assert h["D"] == pytest.approx(max(s["design"]["tokens"]), rel=0.05)
    lo, hi = h["predicted_interval"]
    assert lo <= h["predicted_loss"] <= hi
    assert set(s["law"]["params"]) == {"E", "A", "B", "alpha", "beta"}
    # a Markov corpus carries its exact entropy rate, printed beside the fitted E. The rate
    # is the floor: every measured loss lies above it. (At this scale the fit does not
    # identify E: it lands far below the rate, at 0.26, with an interval reaching 0; the
    # README says so rather than claim a match.)
    assert s["entropy_rate"] == pytest.approx(1.345, abs=0.01)
    from scalelab.study import load_points

    losses = load_points(tiny_demo.out / "results.db", kind="run")["loss"]
    assert (losses > s["entropy_rate"]).all()
    assert s["law"]["params"]["E"] < losses.min()
    assert s["runs"] == 7 and tiny_demo.report.exists()
    assert "Held-out prediction" in tiny_demo.report.read_text()


def test_rerun_reuses_finished_runs(tiny_demo, tiny_design):
    from scalelab.apps.demo import demo

    first = json.loads((tiny_demo.out / "summary.json").read_text())
    assert first["trained_now"] == 7
    again = demo(tiny_demo.out, tiny_design, workers=1, progress=False, log=lambda *_: None)
    assert again.summary["trained_now"] == 0
    assert again.summary["holdout"]["actual_loss"] == first["holdout"]["actual_loss"]


def test_design_needs_enough_points_to_fit():
    with pytest.raises(ConfigError, match="at least 3 sizes"):
        DemoDesign(params=(1e4, 2e4))
    with pytest.raises(ConfigError, match="holdout_factor"):
        DemoDesign(holdout_factor=1.0)


def test_cli_demo_on_a_missing_corpus_is_one_clear_line(cli, tmp_path):
    r = cli("demo", "--out", str(tmp_path / "d"), "--corpus", f"text:{tmp_path / 'nothing'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "nothing" in r.stderr and r.stderr.count("\n") == 1
