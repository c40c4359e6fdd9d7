"""The "Downstream and fine-tuning" section, from a tiny study scored on tasks and d90."""

import json

import pytest
from tests.tasks.conftest import code_corpus as code_corpus  # the fixture

from scalelab.reporting import report


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("SCALELAB_THREADS", "1")


def test_section_from_a_scored_study(code_corpus, tmp_path):
    from tests.tasks.conftest import tiny_config

    from scalelab.analysis.arch_compare import compare
    from scalelab.study import sweep

    cfg = tiny_config(code_corpus, tmp_path / "cache")
    cfg["train"].pop("tokens")
    for k in ("n_layer", "d_model", "n_head"):
        cfg["model"].pop(k)
    spec = {
        "study": {
            "name": "ds",
            "params": [1e3, 3e3, 8e3, 2e4],
            "tokens": [8192],
            "tasks": ["code-brackets"],
            "intrinsic": {"task": "copy", "dims": [4, 64], "steps": 5, "initial": True},
        },
        **{k: cfg[k] for k in ("model", "data", "train")},
    }
    db = tmp_path / "ds.db"
    sweep(spec, db=db, out=tmp_path / "runs", progress=False)
    res = report(db, tmp_path / "report", bootstrap=20)
    section = next(s for s in res.sections if s.title == "Downstream and fine-tuning")
    names = {f.name for f in section.figures}
    assert {"downstream-vs-n.png", "downstream-vs-loss.png"} <= names
    assert "Wilson" in section.html and "d90" in section.html
    assert len(section.data["summary"]) == 1 and section.data["summary"][0]["n_points"] == 4
    assert len(section.data["intrinsic"]) == 8  # 4 runs, pretrained and initial
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert any("intrinsic" in json.dumps(v) for v in data.values())
    # compare's downstream hook carries the slopes per (arch, task)
    cmp = compare(db, bootstrap=20)
    down = cmp.to_dict()["downstream"]
    assert down and down[0]["task"] == "code-brackets" and down[0]["n_points"] == 4
    assert "alpha_C" in down[0]
