"""The suite every architecture passes, unchanged for each new entry of ``ARCHS``.

An architecture that joins the registry gets these checks for free: output shapes,
causality, parameter count equal to the accounting formula, an initial loss near ln(vocab),
memorising one small batch, determinism under a seed, the masked-LM (bidirectional) build
where it claims one, and a real run of ``scalelab train`` with ``[model] arch = NAME``.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from scalelab.accounting import count
from scalelab.architectures import ARCHS
from scalelab.config import ModelConfig
from scalelab.models import build_model

NAMES = sorted(ARCHS)
V, T, B = 64, 16, 4


@pytest.fixture(autouse=True)
def _one_thread():
    """Models this small gain nothing from a second thread, and lose a lot when other
    processes share the cores (see scalelab.train.device.ThreadPolicy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(name: str, **kw: object) -> ModelConfig:
    """A tiny config of ``name``; the architecture's own defaults (glu: a gated mlp) apply."""
    shape = dict(n_layer=2, d_model=32, n_head=4, vocab_size=V, context=T)
    return ModelConfig(arch=name, **{**shape, **kw})  # type: ignore[arg-type]


def built(name: str, seed: int = 0, **kw: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(tiny(name, **kw))


def tokens(seed: int = 0, batch: int = B) -> torch.Tensor:
    return torch.randint(0, V, (batch, T), generator=torch.Generator().manual_seed(seed))


def lm_loss(model: torch.nn.Module, idx: torch.Tensor) -> torch.Tensor:
    logits = model(idx)
    loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), idx[:, 1:].flatten())
    aux = getattr(model, "aux_loss", None)
    return loss if aux is None else loss + aux


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_aux_loss(name):
    model = built(name)
    logits = model(tokens())
    assert logits.shape == (B, T, V) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    aux = model.aux_loss
    assert aux is None or (isinstance(aux, torch.Tensor) and aux.dim() == 0)


@pytest.mark.parametrize("name", NAMES)
def test_causal(name):
    model = built(name).eval()
    idx = tokens()
    with torch.no_grad():
        before = model(idx)
        for t in (0, T // 2, T - 2):  # change token t + 1 (and all after): logits 0..t stay
            changed = idx.clone()
            changed[:, t + 1 :] = (changed[:, t + 1 :] + 1 + torch.arange(T - t - 1)) % V
            after = model(changed)
            assert torch.allclose(after[:, : t + 1], before[:, : t + 1], atol=1e-5), t
            assert not torch.allclose(after[:, t + 1 :], before[:, t + 1 :], atol=1e-5)


@pytest.mark.parametrize("name", [n for n in NAMES if ARCHS[n].bidirectional])
def test_bidirectional_build_sees_the_future(name):
    model = built(name, causal=False).eval()
    idx = tokens()
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % V
    with torch.no_grad():
        assert not torch.allclose(model(idx)[:, 0], model(changed)[:, 0], atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tie", [True, False])
def test_parameter_count_equals_accounting(name, tie):
    cfg = tiny(name, tie_embeddings=tie)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == count(cfg).params.total


@pytest.mark.parametrize("name", NAMES)
def test_initial_loss_is_near_ln_vocab(name):
    model = built(name)
    idx = tokens(batch=32)
    with torch.no_grad():
        loss = F.cross_entropy(model(idx).flatten(0, 1), tokens(seed=1, batch=32).flatten())
    assert abs(loss.item() - math.log(V)) < 0.15


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_small_batch(name):
    model = built(name)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    idx = tokens()
    for _ in range(150):
        loss = lm_loss(model, idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = F.cross_entropy(model(idx)[:, :-1].flatten(0, 1), idx[:, 1:].flatten()).item()
    assert final < 0.1 * math.log(V), final


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_under_a_seed(name):
    def run(seed: int) -> list[float]:
        model = built(name, seed=seed)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        out = []
        for step in range(3):
            loss = lm_loss(model, tokens(seed=step))
            opt.zero_grad()
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    assert run(0) == run(0)
    assert run(0) != run(1)
    a, b = built(name, seed=5), built(name, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", NAMES)
def test_trains_under_scalelab_train(name, tmp_path, monkeypatch, capsys):
    from scalelab.cli import main

    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'[model]\narch = "{name}"\nn_layer = 2\nd_model = 32\nn_head = 4\nvocab_size = 32\n'
        "context = 32\n"  # no arch fields: each architecture's own defaults apply
        "[data]\n"
        'corpus = "markov:order=1,vocab=16,seed=0,tokens=20000"\n'
        f'cache_dir = "{tmp_path / "cache"}"\n'
        "[train]\nbatch_size = 8\ntokens = 5120\nlr = 1e-2\neval_every = 10\neval_batches = 2\n"
    )
    monkeypatch.setattr(sys, "argv", ["scalelab", "train", str(cfg), "--runs", str(tmp_path / "runs"),
                                      "--quiet", "--json"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    assert (exit_info.value.code or 0) == 0, out.err
    summary = json.loads(out.out)
    assert summary["status"] == "finished" and summary["step"] == 20
    from scalelab.train import read_metrics

    rows = read_metrics(summary["path"])
    assert summary["val_loss"] < rows[0]["val_loss"] - 0.1
    # the trainer records count()'s number; check it against the module the run trained
    # (count() against count() could not fail)
    from scalelab.config import load_run_config
    from scalelab.models import build_model

    built_model = build_model(load_run_config(cfg).model)
    assert summary["params"]["total"] == sum(p.numel() for p in built_model.parameters())
