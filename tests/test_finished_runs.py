"""scalelab.runs: a finished run (or its export) opens one way, and whatever is wrong with it
is one RunError naming the path and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from tests.train.conftest import CORPUS, TINY

from scalelab.config import load_run_config
from scalelab.errors import StoreError
from scalelab.runs import RunError, open_run, read_config


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scalelab.train import train

    base = tmp_path_factory.mktemp("runs")
    cfg = load_run_config(
        None,
        [f"data.corpus={CORPUS}", f"data.cache_dir={base / 'cache'}", *TINY, "train.tokens=7680"],
    )
    train(cfg, base, progress=False)
    return base / cfg.run_id()


def copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


def test_a_finished_run_opens_with_its_newest_checkpoint(run: Path) -> None:
    from safetensors.torch import load_file

    r = open_run(run)
    newest = sorted((run / "checkpoint").iterdir())[-1]
    assert r.run_id == run.name and r.cfg == read_config(run) and not r.is_export
    assert r.step == json.loads((newest / "state.json").read_text())["step"] == 30
    assert r.summary["status"] == "finished" and not r.skipped
    saved = load_file(str(newest / "model.safetensors"))
    for name, t in r.model.state_dict().items():
        if name in saved:
            assert torch.equal(t, saved[name]), name
    assert not r.model.training
    assert r.tokenizer().vocab_size <= r.cfg.model.vocab_size


def test_initial_weights_follow_the_seed_and_leave_the_callers_rng(run: Path) -> None:
    from scalelab.models import build_model

    r = open_run(run, initial=True)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = r.model
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(r.cfg.train.seed)
    b = build_model(r.cfg.model)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert r.step == 0


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: shutil.rmtree(p), "no such folder"),
        (lambda p: (p / "config.json").unlink(), "not a run directory"),
        (lambda p: (p / "config.json").write_text("[1, 2]"), "not a config"),
        (lambda p: (p / "config.json").write_text('{"model": '), "not valid JSON"),
        (lambda p: (p / "summary.json").unlink(), "has not finished"),
        (lambda p: (p / "summary.json").write_text('{"status": "running"}'), "'running'"),
        (lambda p: (p / "summary.json").write_text("[]"), "not a JSON object"),
        (lambda p: shutil.rmtree(p / "checkpoint"), "no intact checkpoint"),
    ],
)
def test_what_is_wrong_is_one_run_error(run: Path, tmp_path: Path, damage, match) -> None:
    p = copy(run, tmp_path)
    damage(p)
    with pytest.raises(RunError, match=match) as e:
        open_run(p, what="--reference")
    assert isinstance(e.value, StoreError) and str(p) in str(e.value)
    assert str(e.value).startswith("--reference ")


def test_a_damaged_newest_checkpoint_is_skipped_and_named(run: Path, tmp_path: Path) -> None:
    p = copy(run, tmp_path)
    ckpts = sorted((p / "checkpoint").iterdir())
    blob = bytearray((ckpts[-1] / "model.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # one flipped bit in the weights
    (ckpts[-1] / "model.safetensors").write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match=rf"skipped the damaged checkpoint\(s\) {ckpts[-1].name}"):
        r = open_run(p)
    assert r.step == 20 and len(r.skipped) == 1 and ckpts[-1].name in r.skipped[0]
    with pytest.raises(RunError, match="newest intact one is step 20"):
        open_run(p, strict=True)
    for c in ckpts:
        (c / "manifest.json").write_text("{")
    with pytest.raises(RunError, match=r"no intact checkpoint \(damaged: step-"):
        open_run(p)


@pytest.fixture(scope="module")
def exported(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from scalelab.train.export import export

    return export(run, tmp_path_factory.mktemp("hf") / "hf")


def test_an_export_opens_as_its_run(run: Path, exported: Path) -> None:
    r, e = open_run(run), open_run(exported)
    assert e.is_export and e.run_id == f"{run.name}-hf" and e.step == r.step and e.cfg == r.cfg
    x = torch.randint(0, r.cfg.model.vocab_size, (2, r.cfg.model.context))
    with torch.no_grad():
        assert torch.equal(r.model(x), e.model(x))


def test_a_damaged_export_is_refused_unless_unverified(exported: Path, tmp_path: Path) -> None:
    p = Path(shutil.copytree(exported, tmp_path / "hf"))
    weights = p / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-3] ^= 0x01
    weights.write_bytes(bytes(blob))
    with pytest.raises(RunError, match=r"does not match its checksum.*--no-verify"):
        open_run(p)
    assert open_run(p, verify=False).model is not None  # read as it is, on request
    weights.write_bytes(bytes(blob[:40]))  # the header cut short
    with pytest.raises(RunError, match="cannot be read"):
        _ = open_run(p, verify=False).model
    meta = json.loads((p / "scalelab.json").read_text())
    del meta["files"]
    (p / "scalelab.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="no checksums"):
        open_run(p)
