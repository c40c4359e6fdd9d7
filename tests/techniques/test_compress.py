"""Compression: exact sparsity, bits counted by hand, lossless limits, recovery keeps zeros,
GPTQ against RTN, the derived run and its store point, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scalelab.errors import ConfigError
from scalelab.runs import RunError
from scalelab.techniques.compress import compress
from scalelab.techniques.compress.base import body_linears, load_parent
from scalelab.techniques.compress.lowrank import rank_for
from scalelab.techniques.compress.prune import magnitude
from scalelab.techniques.compress.quant import gptq, rtn

# The tiny run: tok_emb 32x16 (tied head), pos_emb 8x16, five norms of 16 -> 720 dense
# parameters (11,520 bits at 16 bits); per block qkv 48x16, proj 16x16, fc 64x16, proj 16x64.
DENSE_BITS = 720 * 16
PARENT_BITS = 6864 * 16


def _logits(run_dir: Path) -> torch.Tensor:
    p = load_parent(run_dir)
    x = torch.arange(8).remainder(16).view(1, 8)
    with torch.no_grad():
        return p.model(x)


def test_bits_of_4bit_quant_by_hand(tiny_run: Path, tmp_path: Path) -> None:
    r = compress(tiny_run, "quant", 4)
    # per row: a 16-bit scale + a 4-bit zero point; codes 4 bits per weight
    block = (768 * 4 + 48 * 20) + (256 * 4 + 16 * 20) + (1024 * 4 + 64 * 20) + (1024 * 4 + 16 * 20)
    assert block == 15168
    assert r.bits == DENSE_BITS + 2 * block == 41856
    assert r.parent_bits == PARENT_BITS == 109824
    g = compress(tiny_run, "quant", 4, group=32)
    # only mlp.proj (64 inputs) has two groups of 32 per row
    assert g.bits == 41856 + 2 * (16 * 20)


def test_bits_of_pruning_and_sharing_by_hand(tiny_run: Path, tmp_path: Path) -> None:
    r = compress(tiny_run, "prune", 0.5)
    # a bitmask (1 bit per weight) + 16 bits per nonzero is the cheapest encoding here
    block = (768 + 384 * 16) + (256 + 128 * 16) + (1024 + 512 * 16) + (1024 + 512 * 16)
    assert r.bits == DENSE_BITS + 2 * block == 66816
    s = compress(tiny_run, "share", 2)
    assert s.bits == (512 + 128 + 16 + 3104) * 16  # the two blocks stored once


def test_sparsity_is_exact(tiny_run: Path) -> None:
    for scope in ("layer", "global"):
        model = load_parent(tiny_run).model
        magnitude(model, 0.3, scope)
        layers = body_linears(model)
        zeros = [int((m.weight == 0).sum()) for _, m in layers]
        if scope == "layer":
            assert zeros == [round(0.3 * m.weight.numel()) for _, m in layers]
        else:
            assert sum(zeros) == round(0.3 * sum(m.weight.numel() for _, m in layers))
            assert (
                len(set(z / m.weight.numel() for z, (_, m) in zip(zeros, layers, strict=True))) > 1
            )


def test_full_rank_svd_and_16_bit_quant_reproduce_the_logits(tiny_run: Path, tmp_path) -> None:
    ref = _logits(tiny_run)
    full = compress(tiny_run, "lowrank", 64)
    assert (_logits(full.run_dir) - ref).abs().max().item() < 1e-5
    q16 = compress(tiny_run, "quant", 16)
    assert (_logits(q16.run_dir) - ref).abs().max().item() < 1e-5
    assert q16.val_loss == pytest.approx(q16.parent_loss, abs=1e-5)


def test_truncated_lowrank_writes_back_the_rank_r_svd(tiny_run: Path) -> None:
    """Rank 4 < every body Linear's full rank (16): each one is factored, and the derived
    run's weights are the parent's rank-4 SVD (Eckart-Young), computed here independently."""
    r = 4
    res = compress(tiny_run, "lowrank", r)
    parent = dict(body_linears(load_parent(tiny_run).model))
    derived = dict(body_linears(load_parent(res.run_dir).model))
    assert derived.keys() == parent.keys() and len(parent) == 8
    for name, lin in parent.items():
        w = lin.weight.detach().double()
        U, s, Vh = torch.linalg.svd(w, full_matrices=False)
        want = (U[:, :r] * s[:r]) @ Vh[:r]
        got = derived[name].weight.detach().double()
        assert torch.linalg.matrix_rank(got, atol=1e-4).item() == r, name
        assert torch.allclose(got, want, atol=1e-5), (name, (got - want).abs().max())
        # and it is a real cut: the dropped singular values carried weight
        assert (got - w).norm() == pytest.approx(s[r:].norm().item(), rel=1e-4)
        assert s[r:].norm() > 0.1 * s.norm()
    # two 16-bit factors per Linear (out + in numbers per kept rank), the rest as before
    factored = r * ((48 + 16) + (16 + 16) + (64 + 16) + (16 + 64)) * 16
    assert res.bits == DENSE_BITS + 2 * factored
    assert res.val_loss > res.parent_loss  # a rank-4 model predicts worse than its parent


def test_pruned_and_recovered_model_keeps_its_zeros(teacher_dir: Path, tmp_path: Path) -> None:
    bare = compress(teacher_dir, "prune", 0.9)
    rec = compress(teacher_dir, "prune", 0.9, recover=8192)
    assert rec.recover_tokens == 8192
    zeros = {}
    for r in (bare, rec):
        m = load_parent(r.run_dir).model
        zeros[r.run_id] = [(m_.weight == 0) for _, m_ in body_linears(m)]
    for a, b in zip(zeros[bare.run_id], zeros[rec.run_id], strict=True):
        assert torch.equal(a, b)  # the same mask, no weight regrown
    assert rec.val_loss < bare.val_loss  # and the fine-tuning helped


def test_gptq_with_a_diagonal_hessian_is_rtn_and_beats_rtn_on_real_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(24, 64, generator=g)
    assert torch.allclose(gptq(w, 3.0 * torch.eye(64), 4), rtn(w, 4))
    # correlated inputs: GPTQ's output error on them is below RTN's
    x = torch.randn(512, 8, generator=g) @ torch.randn(8, 64, generator=g)
    x += 0.1 * torch.randn(512, 64, generator=g)
    H = 2 * x.T @ x / x.shape[0]
    for bits, group in ((3, 0), (4, 32)):
        err_rtn = (x @ (w - rtn(w, bits, group)).T).pow(2).mean()
        err_gptq = (x @ (w - gptq(w, H, bits, group)).T).pow(2).mean()
        assert err_gptq < 0.7 * err_rtn, (bits, group, err_gptq, err_rtn)


def test_rtn_codes_fit_the_bits() -> None:
    w = torch.randn(8, 32)
    for bits in (2, 3, 4):
        deq = rtn(w, bits)
        for row in deq:
            assert len(torch.unique(row)) <= 2**bits


def test_gptq_on_a_run_is_no_worse_than_rtn(teacher_dir: Path, tmp_path: Path) -> None:
    r = compress(teacher_dir, "quant", 3)
    g = compress(teacher_dir, "quant", 3, algorithm="gptq")
    assert g.bits == r.bits
    assert g.val_loss < r.val_loss


def test_lowrank_energy_picks_the_smallest_rank() -> None:
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])  # energies 9, 4, 1 of 14
    assert rank_for(s, 0.5) == 1
    assert rank_for(s, 0.9) == 2
    assert rank_for(s, 0.99) == 3
    assert rank_for(s, 2) == 2
    assert rank_for(s, 10) == 4


def test_derived_run_and_store_point(tiny_run: Path, tmp_path: Path) -> None:
    from scalelab.study import load_points

    db = tmp_path / "r.db"
    r = compress(tiny_run, "lowrank", 0.9, recover=256, db=db, out=tmp_path / "derived")
    summary = json.loads((r.run_dir / "summary.json").read_text())
    assert summary["compression"]["parent_run_id"] == tiny_run.name
    assert summary["tokens"] == json.loads((tiny_run / "summary.json").read_text())["tokens"] + 256
    costs = json.loads((r.run_dir / "compression.json").read_text())
    assert sum(c["bits"] for c in costs) == r.bits
    pts = load_points(db)
    assert list(pts["kind"]) == ["compressed"] and list(pts["technique"]) == ["lowrank"]
    assert list(pts["parent_run_id"]) == [tiny_run.name]
    assert r.run_dir == tmp_path / "derived"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    "method, level, kwargs, match",
    [
        ("zip", 0.5, {}, "not one of prune, quant, lowrank, share"),
        ("prune", 1.0, {}, r"\[0, 1\)"),
        ("quant", 7, {}, "bits per weight"),
        ("quant", 4, {"group": 48}, "group"),
        ("quant", 4, {"recover": 100}, "no --recover"),
        ("lowrank", 2.5, {}, "whole rank"),
        ("share", 1, {}, ">= 2"),
        ("share", 2, {"group": 32}, "do not apply to share"),
    ],
)
def test_bad_input_is_one_config_error(tiny_run: Path, method, level, kwargs, match) -> None:
    with pytest.raises(ConfigError, match=match):
        compress(tiny_run, method, level, **kwargs)


def test_missing_or_unfinished_run(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="not a run directory"):
        compress(tmp_path / "nope", "prune", 0.5)
