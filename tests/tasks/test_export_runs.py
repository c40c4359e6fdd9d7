"""A run's Hugging Face export is scored, fine-tuned and measured as the run itself: the
export carries the run's config (``scalelab.json``) and its weights map back exactly."""

from __future__ import annotations

import json

import pytest
import torch

from scalelab.errors import StoreError
from scalelab.runs import open_run, read_config
from scalelab.tasks import evaluate
from scalelab.tasks.finetune import finetune, finetune_config
from scalelab.train.export import export

pytest.importorskip("transformers")


def test_an_export_is_scored_and_fine_tuned_as_its_run(tiny_run, tmp_path):
    hf = export(tiny_run, tmp_path / "hf")
    run, exp = open_run(tiny_run), open_run(hf)
    assert exp.run_id == f"{tiny_run.name}-hf" and exp.step == run.step and exp.cfg == run.cfg
    x = torch.randint(0, run.cfg.model.vocab_size, (2, run.cfg.model.context))
    with torch.no_grad():
        assert torch.equal(run.model(x), exp.model(x))  # the same weights, bit for bit
    # zero-shot scoring: the same items, the same answers
    a = evaluate(tiny_run, ["code-brackets"], n=60)
    b = evaluate(hf, ["code-brackets"], n=60)
    assert b.loc[0, "run_id"] == f"{tiny_run.name}-hf"
    assert (b.loc[0, "correct"], b.loc[0, "n"]) == (a.loc[0, "correct"], a.loc[0, "n"])
    # fine-tuning from the export follows the run's fine-tuning step for step (fp32)
    cfg = finetune_config(steps=20, eval_every=10)
    ra = finetune(tiny_run, "copy", cfg, out=tmp_path / "from-run")
    rb = finetune(hf, "copy", cfg, out=tmp_path / "from-export")
    assert rb.parent_run_id == f"{tiny_run.name}-hf" and rb.step == ra.step == 20
    assert (rb.val_accuracy, rb.test_accuracy) == (ra.val_accuracy, ra.test_accuracy)


def test_a_damaged_export_record_is_one_error(tiny_run, tmp_path):
    hf = export(tiny_run, tmp_path / "hf")
    (hf / "scalelab.json").write_text(json.dumps(["not", "a", "record"]))
    with pytest.raises(StoreError, match="not an export's record"):
        read_config(hf)
    (hf / "scalelab.json").write_text(json.dumps({"config": {}, "step": 3}))
    (hf / "model.safetensors").unlink()
    with pytest.raises(StoreError, match=r"no model\.safetensors"):
        open_run(hf)
