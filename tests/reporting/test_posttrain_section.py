"""The "Post-training" section, from a synthetic store of posttrain points."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalelab.reporting import report
from scalelab.results.store import Store

NS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
BETAS = {1e4: 0.30, 1e5: 0.22, 1e6: 0.15}  # gold-reward curvature per reward-model size
BASE = {1e5: 0.20, 4e5: 0.30, 1.6e6: 0.35}  # pretrained accuracy per policy size
GAIN = {"sft": 0.10, "dpo": 0.15, "rl": 0.20}  # over the pretrained policy


def _put(store: Store, run_id: str, parent: str, extra: dict) -> None:
    store.put_point(
        {
            "run_id": run_id,
            "kind": "posttrain",
            "technique": extra["method"],
            "parent_run_id": parent,
            "arch": "transformer",
            "status": "finished",
            "extra_json": json.dumps(extra),
        }
    )


def synthetic_store(db) -> None:
    rng = np.random.default_rng(0)
    with Store(db) as store:
        for k, (rm_n, beta) in enumerate(BETAS.items()):
            for n in NS:
                kl = np.log(n) - (n - 1) / n
                d = np.sqrt(kl)
                gold = 0.2 + d * (0.6 - beta * d) + rng.normal(0, 0.003)
                extra = {"method": "bon", "task": "add", "n": n, "kl": kl,
                         "gold_reward": gold, "proxy_reward": gold + 0.1 * d,
                         "reward_run_id": f"rm{k}", "reward_N": rm_n, "policy_N": 1e5}  # fmt: skip
                _put(store, f"bon{k}-n{n}", "sft-0", extra)
        for step in range(12):  # one RL run's curve against the middle reward model
            kl = 2.0 * step
            d = np.sqrt(kl)
            dlogd = d * np.log(d) if d > 0 else 0.0
            extra = {"method": "rl", "task": "add", "step": step, "kl": kl,
                     "gold_reward": 0.2 + 0.5 * d - 0.15 * dlogd, "proxy_reward": 0.2 + 0.5 * d,
                     "reward_run_id": "rm1", "reward_N": 1e5, "policy_N": 1e5}  # fmt: skip
            _put(store, f"rl-0@{step}", "sft-0", extra)
        for i, (n, acc) in enumerate(BASE.items()):
            common = {"task": "add", "policy_N": n}
            iv = {"accuracy_lo": acc - 0.02, "accuracy_hi": acc + 0.02}
            _put(store, f"eval-{i}", f"pre{i}", {**common, "method": "eval", "accuracy": acc, **iv})
            for m, parent in (("sft", f"pre{i}"), ("dpo", f"sft-{i}"), ("rl", f"sft-{i}")):
                a = acc + GAIN[m]
                extra = {**common, "method": m, "accuracy": a, "accuracy_lo": a - 0.03,
                         "accuracy_hi": a + 0.03}  # fmt: skip
                _put(store, f"{m}-{i}", parent, extra)


@pytest.fixture()
def section(tmp_path):
    db = tmp_path / "post.db"
    synthetic_store(db)
    res = report(db, tmp_path / "report", bootstrap=20)
    return next(s for s in res.sections if s.title == "Post-training")


def test_reward_against_kl_per_reward_model(section):
    assert {f.name for f in section.figures} == {
        "posttrain-reward-vs-kl.png",
        "posttrain-gain-vs-n.png",
    }
    assert all(f.stat().st_size > 1000 for f in section.figures)
    gao = section.data["gao"]
    bon = [g for g in gao if g["method"] == "bon"]
    assert [g["reward_N"] for g in bon] == sorted(BETAS)
    for g in bon:
        assert g["law"]["params"]["beta"] == pytest.approx(BETAS[g["reward_N"]], abs=0.03)
        assert g["law"]["params"]["alpha"] == pytest.approx(0.6, abs=0.03)
    (rl,) = [g for g in gao if g["method"] == "rl"]
    assert rl["law"]["form"] == "gao-rl" and rl["law"]["params"]["beta"] == pytest.approx(0.15)
    assert "d* predicted" in section.html and "RM N = 100k" in section.html


def test_gain_against_n_over_each_lineages_pretrained_policy(section):
    rows = section.data["gain"]
    assert len(rows) == 3 * len(GAIN)
    for r in rows:
        assert r["base_accuracy"] == pytest.approx(BASE[r["policy_N"]])
        assert r["gain"] == pytest.approx(GAIN[r["method"]])
        assert r["gain_half"] == pytest.approx(np.hypot(0.03, 0.02))
    assert "+0.200 ± 0.036" in section.html


def test_no_posttrain_points_no_section(tmp_path):
    from scalelab.reporting.posttrain_section import posttrain_section
    from scalelab.reporting.section import ReportContext

    db = tmp_path / "empty.db"
    with Store(db):
        pass
    import pandas as pd

    ctx = ReportContext(db, tmp_path, None, pd.DataFrame(), pd.DataFrame(), None, None, 0)
    assert posttrain_section(ctx) is None


def test_each_setting_of_a_method_is_its_own_line(tmp_path):
    """Two DPO learning rates at every policy size are two lines (each naming its setting),
    whether a point carries its settings or only its stage's config.json does."""
    db = tmp_path / "two.db"
    lrs = {1e-6: 0.05, 1e-5: 0.12}  # DPO's gain per learning rate
    with Store(db) as store:
        for i, (n, acc) in enumerate(BASE.items()):
            common = {"task": "add", "policy_N": n}
            iv = {"accuracy_lo": acc - 0.02, "accuracy_hi": acc + 0.02}
            _put(store, f"eval-{i}", f"pre{i}", {**common, "method": "eval", "accuracy": acc, **iv})
            sft = {"lr": 1e-3, "steps": 150, "eval_every": 50}
            extra = {**common, "method": "sft", "accuracy": acc, **iv, "settings": sft}
            _put(store, f"sft-{i}", f"pre{i}", extra)
            for k, (lr, gain) in enumerate(lrs.items()):
                a = acc + gain
                settings = {"lr": lr, "beta": 0.1, "eval_every": 10 * (i + 1)}
                extra = {**common, "method": "dpo", "accuracy": a, "reward": "grader",
                         "accuracy_lo": a - 0.03, "accuracy_hi": a + 0.03}  # fmt: skip
                if k == 0:  # an older point: its settings only in its stage's config.json
                    run_dir = tmp_path / "runs" / f"dpo-{i}-{k}"
                    run_dir.mkdir(parents=True)
                    (run_dir / "config.json").write_text(json.dumps({"posttrain": settings}))
                    pt = {"run_id": f"dpo-{i}-{k}", "kind": "posttrain", "technique": "dpo",
                          "parent_run_id": f"sft-{i}", "arch": "transformer",
                          "status": "finished", "run_dir": f"runs/dpo-{i}-{k}",
                          "extra_json": json.dumps(extra)}  # fmt: skip
                    store.put_point(pt)
                else:
                    _put(store, f"dpo-{i}-{k}", f"sft-{i}", {**extra, "settings": settings})
    res = report(db, tmp_path / "report", bootstrap=20)
    section = next(s for s in res.sections if s.title == "Post-training")
    lines = {line["label"]: line["policy_N"] for line in section.data["gain_lines"]}
    # eval_every differs per stage but is bookkeeping: it splits nothing
    assert lines == {
        "add: sft": sorted(BASE),
        "add: dpo (dpo.lr=1e-06)": sorted(BASE),
        "add: dpo (dpo.lr=1e-05)": sorted(BASE),
    }
    for r in section.data["gain"]:
        if r["method"] == "dpo":
            want = lrs[1e-6] if r["setting"] == "dpo.lr=1e-06" else lrs[1e-5]
            assert r["gain"] == pytest.approx(want)
    assert "dpo.lr=1e-05" in section.html


def test_a_store_with_ladder_runs_shows_the_section_too():
    """A sweep with study.posttrain writes the ladder's runs and the posttrain points into one
    store: the posttrain plug-in registers the section among the default builders, which a
    store with runs gets (a store of posttrain points alone gets WITHOUT_RUNS)."""
    from scalelab.builtin import register_builtin
    from scalelab.reporting.posttrain_section import posttrain_section
    from scalelab.reporting.sections import default_builders

    register_builtin()  # as the command line does

    assert default_builders().count(posttrain_section) == 1
