"""Knowledge distillation: the KD terms by hand, the [distill] section, the loop hook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from scalelab.config import load_run_config
from scalelab.errors import ConfigError
from scalelab.techniques.distill import init_from_teacher, kd_loss, load_teacher
from scalelab.techniques.distill_plugin import DistillConfig
from scalelab.train import read_metrics, train

# 2 positions x 3 tokens
S = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
T = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _softmax(row: list[float], tau: float) -> list[float]:
    e = [math.exp(v / tau) for v in row]
    return [v / sum(e) for v in e]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_forward_and_reverse_kl_by_hand(tau: float) -> None:
    fwd = sum(
        _kl(_softmax(t, tau), _softmax(s, tau)) for s, t in zip(S.tolist(), T.tolist(), strict=True)
    )
    rev = sum(
        _kl(_softmax(s, tau), _softmax(t, tau)) for s, t in zip(S.tolist(), T.tolist(), strict=True)
    )
    got_f = kd_loss(S, T, loss="forward_kl", temperature=tau)
    got_r = kd_loss(S, T, loss="reverse_kl", temperature=tau)
    assert got_f.item() == pytest.approx(tau * tau * fwd, rel=1e-5)  # Hinton's T^2
    assert got_r.item() == pytest.approx(tau * tau * rev, rel=1e-5)
    assert got_f.item() != pytest.approx(got_r.item(), rel=1e-3)  # KL is not symmetric


def test_forward_kl_known_number() -> None:
    # position 1: p = softmax(2,0,0) = (.7870, .1065, .1065), q = softmax(1,0,-1) =
    # (.6652, .2447, .0900): KL = 0.061554; position 2: p = softmax(0,1,0), q = softmax(.5,.5,0):
    # KL = 0.088663; the sum 0.150217 (evaluated in float64)
    assert kd_loss(S, T).item() == pytest.approx(0.0615542 + 0.0886630, abs=2e-6)


def test_mse_and_top_k_by_hand() -> None:
    mse = ((S - T) ** 2).mean(-1).sum().item()
    assert kd_loss(S, T, loss="mse_logits").item() == pytest.approx(mse)
    # top-2 of the teacher: position 1 keeps tokens {0, 1 or 2}; use a teacher without ties
    t = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.5]])
    keep = [[0, 1], [1, 2]]
    want = 0.0
    for s_row, t_row, k in zip(S.tolist(), t.tolist(), keep, strict=True):
        want += _kl(_softmax([t_row[i] for i in k], 1.0), _softmax([s_row[i] for i in k], 1.0))
    assert kd_loss(S, t, top_k=2).item() == pytest.approx(want, rel=1e-6)
    assert kd_loss(S, t, top_k=3).item() == pytest.approx(kd_loss(S, t).item())


def test_mask_keeps_only_marked_positions_and_equal_logits_give_zero() -> None:
    only_first = kd_loss(S, T, mask=torch.tensor([True, False]))
    assert only_first.item() == pytest.approx(kd_loss(S[:1], T[:1]).item())
    assert kd_loss(T, T).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 1.5, "teacher": "x"}, "alpha"),
        ({"loss": "js", "teacher": "x"}, "distill.loss"),
        ({"temperature": 0.0, "teacher": "x"}, "temperature"),
        ({"top_k": 0, "teacher": "x"}, "top_k"),
        ({"alpha": 0.5}, "needs a teacher"),
    ],
)
def test_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DistillConfig(**kwargs)


def test_alpha_zero_is_the_plain_run_bit_for_bit(make_cfg, teacher_dir: Path, tmp_path) -> None:
    plain = make_cfg()
    zero = make_cfg(f"distill.teacher={teacher_dir}", "distill.alpha=0")
    assert zero.run_id() == plain.run_id()  # the scratch twin shares the plain run's directory
    a = train(plain, tmp_path / "a", progress=False)
    b = train(zero, tmp_path / "b", progress=False)
    assert b.distill is None
    la = [r.get("train_loss") for r in read_metrics(tmp_path / "a" / plain.run_id())]
    lb = [r.get("train_loss") for r in read_metrics(tmp_path / "b" / zero.run_id())]
    assert la == lb and a.val_loss == b.val_loss


def test_distilled_student_beats_its_scratch_twin(make_cfg, teacher_dir: Path, tmp_path) -> None:
    # measured (fp32, 50 steps): scratch 2.61 / 2.22, alpha 0.9 2.17 / 2.17 for seeds 0 / 1
    common = ("model.n_layer=1", "train.tokens=12800")
    for seed in (0, 1):
        scratch = train(make_cfg(*common, f"train.seed={seed}"), tmp_path, progress=False)
        student = train(
            make_cfg(
                *common,
                f"train.seed={seed}",
                f"distill.teacher={teacher_dir}",
                "distill.alpha=0.9",
            ),
            tmp_path,
            progress=False,
        )
        assert student.val_loss < scratch.val_loss - 0.02, (seed, student.val_loss)
        d = student.distill
        assert d is not None and d["scratch_run_id"] == scratch.run_id
        t_summary = json.loads((teacher_dir / "summary.json").read_text())
        assert d["teacher_loss"] == t_summary["val_loss"]
        assert d["C_student"] == student.flops_total
        assert d["C_teacher"] == pytest.approx(
            t_summary["flops"]["forward_per_token"] * student.tokens
        )
        assert d["C_total"] == pytest.approx(d["C_student"] + d["C_teacher"])


def test_store_point_is_a_distilled_kind_linked_to_its_teacher(
    make_cfg, teacher_dir: Path, tmp_path
) -> None:
    from scalelab.results.records import point_row, read_run

    cfg = make_cfg(f"distill.teacher={teacher_dir}", "distill.alpha=0.5", "distill.loss=mse_logits")
    train(cfg, tmp_path, progress=False)
    row = point_row(read_run(tmp_path / cfg.run_id()))
    assert row["kind"] == "distilled" and row["technique"] == "distill"
    assert row["parent_run_id"] == teacher_dir.name
    extra = json.loads(row["extra_json"])
    assert extra["C_total"] > extra["C_student"] > 0


def test_teacher_of_another_vocabulary_or_context_is_named(make_cfg, teacher_dir: Path) -> None:
    for override, field in (
        ("model.vocab_size=48", "model.vocab_size"),
        ("model.context=16", "model.context"),
    ):
        cfg = make_cfg(override, f"distill.teacher={teacher_dir}", "distill.alpha=0.5")
        with pytest.raises(ConfigError, match=field):
            load_teacher(str(teacher_dir), teacher_dir.parent, cfg, torch.device("cpu"))


def test_missing_teacher_is_one_config_error(make_cfg, tmp_path) -> None:
    cfg = make_cfg(f"distill.teacher={tmp_path / 'nope'}", "distill.alpha=0.5")
    with pytest.raises(ConfigError, match="not a run directory"):
        train(cfg, tmp_path, progress=False)


def test_init_every_copies_every_kth_teacher_block(make_cfg, teacher_dir: Path) -> None:
    from scalelab.models import build_model

    teacher = load_teacher(str(teacher_dir), teacher_dir.parent, make_cfg(), torch.device("cpu"))
    student = build_model(
        load_run_config(
            None,
            [
                "model.vocab_size=32",
                "model.n_layer=2",
                "model.d_model=64",
                "model.n_head=2",
                "model.context=32",
            ],
        ).model
    )
    init_from_teacher(student, teacher.model, 2)
    ts, ss = teacher.model.state_dict(), student.state_dict()
    assert torch.equal(ss["blocks.1.attn.qkv.weight"], ts["blocks.2.attn.qkv.weight"])
    assert torch.equal(ss["tok_emb.weight"], ts["tok_emb.weight"])
    narrow = build_model(make_cfg().model)  # d_model 32 vs the teacher's 64
    with pytest.raises(ConfigError, match="same architecture and width"):
        init_from_teacher(narrow, teacher.model, 2)


def test_distill_keys_are_grid_axes(tmp_path, teacher_dir: Path) -> None:
    from scalelab.study.grid import expand
    from scalelab.study.studyfile import load_study

    p = tmp_path / "s.toml"
    p.write_text(
        f"""
[study]
name = "kd"
grid = {{ "distill.alpha" = [0.0, 0.5], "model.n_layer" = [1, 2] }}
[distill]
teacher = "{teacher_dir}"
[train]
tokens = 1000
"""
    )
    runs = expand(load_study(p))
    alphas = sorted({r.config.distill.alpha for r in runs})
    assert alphas == [0.0, 0.5]


def test_the_student_never_trains_its_teacher_the_sweep_does(tmp_path, cache_dir) -> None:
    """A teacher given as a run TOML is a run the student needs (the distill plug-in's
    ``needs``): train() refuses to start without it, naming the fix; the sweep adds it to
    the graph, trains it first and records it apart from the study's ladder."""
    from tests.train.conftest import CORPUS, TINY

    from scalelab.study import load_points, sweep
    from scalelab.train import train as train_one

    teacher = tmp_path / "teacher.toml"
    teacher.write_text(
        f'[data]\ncorpus = "{CORPUS}"\ncache_dir = "{cache_dir}"\n'
        "[model]\nvocab_size = 32\nn_layer = 1\nd_model = 32\nn_head = 2\ncontext = 32\n"
        "[train]\nbatch_size = 8\ntokens = 2560\neval_every = 10\neval_batches = 2\n"
        'precision = "fp32"\n'
    )
    overrides = [
        f"data.corpus={CORPUS}",
        f"data.cache_dir={cache_dir}",
        *TINY,
        "train.tokens=2560",
        f'distill.teacher="{teacher}"',
        "distill.alpha=0.5",
    ]
    student = load_run_config(None, overrides)
    with pytest.raises(ConfigError, match=r"has not finished .* train it first"):
        train_one(student, tmp_path / "runs", progress=False)
    assert not any((tmp_path / "runs").glob("*/summary.json"))  # nothing was trained

    values = {s: dict(t) for s, t in student.to_dict().items() if t is not None}
    values["study"] = {"name": "kd"}
    res = sweep(values, db=tmp_path / "r.db", out=tmp_path / "runs", workers=1, progress=False)
    t_id = load_run_config(teacher).run_id()
    assert [r.run_id for r in res.runs] == [student.run_id(), t_id]
    assert [r.action for r in res.runs] == ["trained", "trained"]
    summary = json.loads((tmp_path / "runs" / student.run_id() / "summary.json").read_text())
    assert summary["distill"]["teacher_run_id"] == t_id
    pts = load_points(tmp_path / "r.db")
    kinds = dict(zip(pts["run_id"], pts["kind"], strict=True))
    assert kinds == {student.run_id(): "distilled", t_id: "needed"}
