import json

import pytest
import torch

from scalelab.config import ModelConfig
from scalelab.models import build_model
from scalelab.train.checkpoint import latest_checkpoint, list_checkpoints, save_checkpoint, verify


def _model_and_opt(seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig(n_layer=1, d_model=16, n_head=2, vocab_size=32, context=8))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(0, 32, (2, 8))
    model(x).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    model, opt = _model_and_opt(0)
    torch.manual_seed(123)
    save_checkpoint(tmp_path, 5, model, opt, {"step": 5, "note": "x"})
    expected_draw = torch.rand(3)
    fresh, fresh_opt = _model_and_opt(1)
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 5 and ckpt.state["note"] == "x"
    ckpt.restore(fresh, fresh_opt)
    for (name, a), b in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert fresh.head.weight is fresh.tok_emb.weight  # tying survives the load
    sa, sb = opt.state_dict()["state"], fresh_opt.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert torch.equal(torch.rand(3), expected_draw)  # the RNG continues where it was saved


def test_keeps_the_newest_two_and_skips_a_corrupt_one(tmp_path):
    model, opt = _model_and_opt()
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, model, opt, {"step": step})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000020", "step-00000030"]
    newest = tmp_path / "step-00000030" / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[-5] ^= 0xFF
    newest.write_bytes(bytes(data))
    assert "checksum" in verify(newest.parent)
    with pytest.warns(UserWarning, match="step-00000030.*checksum"):
        ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 20


def test_a_checkpoint_without_manifest_or_a_temporary_one_is_not_used(tmp_path):
    model, opt = _model_and_opt()
    save_checkpoint(tmp_path, 10, model, opt, {"step": 10})
    torn = tmp_path / "step-00000020"  # as if killed before the manifest was written
    torn.mkdir()
    (torn / "state.json").write_text(json.dumps({"step": 20}))
    (tmp_path / ".tmp-step-00000030-999").mkdir()
    with pytest.warns(UserWarning, match="manifest"):
        ckpt = latest_checkpoint(tmp_path)
    assert ckpt is not None and ckpt.step == 10
    assert latest_checkpoint(tmp_path / "absent") is None
