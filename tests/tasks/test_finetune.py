import json

import pytest
import torch

from scalelab.errors import ConfigError
from scalelab.tasks import load_task_results
from scalelab.tasks.finetune import finetune, finetune_config


def test_config_from_overrides():
    cfg = finetune_config(["finetune.method=lora", "finetune.lr=1e-2"])
    assert cfg.method == "lora" and cfg.lr == 0.01
    with pytest.raises(ConfigError, match=r"unknown key finetune\.lrr"):
        finetune_config(["finetune.lrr=1"])
    with pytest.raises(ConfigError, match=r"finetune\.method"):
        finetune_config(["finetune.method=adapter"])
    with pytest.raises(ConfigError, match="not train"):
        finetune_config(["train.lr=1"])


@pytest.mark.parametrize("method", ["full", "head", "lora"])
def test_finetune_syntax_links_parent_and_learns(tiny_run, tmp_path, method):
    db = tmp_path / "r.db"
    cfg = finetune_config(
        method=method, steps=60, eval_every=20, lr=3e-3 if method != "head" else 3e-2
    )
    res = finetune(tiny_run, "syntax", cfg, out=tmp_path / "ft", db=db)
    assert res.parent_run_id == tiny_run.name and res.method == method
    config = json.loads((tmp_path / "ft" / "config.json").read_text())
    assert config["parent_run_id"] == tiny_run.name and config["task"] == "syntax"
    assert res.test_lo <= res.test_accuracy <= res.test_hi and res.n_test > 50
    body = sum(p.numel() for p in torch.load(tmp_path / "ft" / "best.pt").values())
    if method == "head":
        assert res.trainable_params == 32 * 2 + 2
    elif method == "lora":
        assert 0 < res.trainable_params < body / 2
    else:
        assert res.trainable_params > 10_000
    stored = load_task_results(db)
    assert stored.loc[0, "finetune_run_id"] == res.run_id and stored.loc[0, "method"] == method
    # the syntax task is learnable: a fine-tuned model is above chance on validation
    assert res.val_accuracy > 0.5


def test_finetune_resumes_to_the_same_result(tiny_run, tmp_path):
    cfg = finetune_config(steps=40, eval_every=10, patience=10)
    whole = finetune(tiny_run, "copy", cfg, out=tmp_path / "a")

    class Stop(Exception):
        pass

    def stop_at_20(msg: str) -> None:
        if msg.startswith("step 20:"):
            raise Stop

    with pytest.raises(Stop):
        finetune(tiny_run, "copy", cfg, out=tmp_path / "b", log=stop_at_20)
    assert not (tmp_path / "b" / "summary.json").exists()
    resumed = finetune(tiny_run, "copy", cfg, out=tmp_path / "b")
    assert resumed.step == whole.step == 40
    assert resumed.val_accuracy == whole.val_accuracy
    assert resumed.test_accuracy == whole.test_accuracy
    a = torch.load(tmp_path / "a" / "best.pt")
    b = torch.load(tmp_path / "b" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a finished fine-tune is returned, not redone
    assert finetune(tiny_run, "copy", cfg, out=tmp_path / "b").seconds == resumed.seconds


def test_early_stopping_on_validation(tiny_run, tmp_path):
    cfg = finetune_config(steps=400, eval_every=10, patience=2, lr=1e-9)
    res = finetune(tiny_run, "add", cfg, out=tmp_path / "e")
    assert res.status == "stopped_early" and res.step == 30 and res.best_step == 10


def test_bad_requests(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="zero-shot task"):
        finetune(tiny_run, "cloze", out=tmp_path / "x")
    with pytest.raises(ConfigError, match="no classification head"):
        finetune(tiny_run, "copy", finetune_config(method="head"), out=tmp_path / "y")
