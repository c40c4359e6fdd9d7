"""The Small vs large analysis: multipliers off the ladder's law, total compute, the bits plane."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scalelab.reporting.small_large import small_large_section
from scalelab.results.store import Store
from scalelab.techniques.small_large import bits_table, distill_summary, technique_table

E, A, ALPHA = 1.5, 40.0, 0.35
D = 1_000_000


def law_loss(n: float) -> float:
    return E + A / n**ALPHA


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    with Store(db) as s:
        for i, n in enumerate((1e4, 2e4, 4e4, 8e4)):
            for seed in (0, 1):
                s.put_point(
                    {
                        "run_id": f"p{i}s{seed}",
                        "study": "x",
                        "kind": "run",
                        "status": "finished",
                        "arch": "transformer",
                        "budget": "1M",
                        "wall_seconds": 1.0,
                        "size": f"s{i}",
                        "seed": seed,
                        "N_non_embedding": int(n),
                        "N_total": int(n) + 5000,
                        "D": D,
                        "loss": law_loss(n) * (1 + 0.002 * (seed - 0.5)),
                    }
                )
        # a distilled 1e4 student as good as the plain 2e4 model: multiplier about 2
        extra = {
            "scratch_run_id": "p0s0",
            "alpha": 0.5,
            "teacher_run_id": "T",
            "teacher_N_non_embedding": 1e6,
            "teacher_loss": 1.9,
            "C_student": 6e4 * D,
            "C_teacher": 2e6 * D,
            "C_total": 6e4 * D + 2e6 * D,
        }
        s.put_point(
            {
                "run_id": "kd",
                "study": "x",
                "kind": "distilled",
                "technique": "distill",
                "parent_run_id": "T",
                "status": "finished",
                "size": "s0",
                "seed": 0,
                "N_non_embedding": 10000,
                "N_total": 15000,
                "D": D,
                "loss": law_loss(2e4),
                "extra_json": json.dumps(extra),
            }
        )
        for bits, loss in ((4, law_loss(8e4) + 0.001), (2, law_loss(8e4) + 0.5)):
            comp = {
                "method": "quant",
                "level": bits,
                "options": {"algorithm": "rtn", "group": 0},
                "bits": bits * 85000 + 1000,
                "bits_per_param": (bits * 85000 + 1000) / 85000,
                "parent_bits": 16 * 85000,
                "recover_tokens": 0,
            }
            s.put_point(
                {
                    "run_id": f"q{bits}",
                    "study": "x",
                    "kind": "compressed",
                    "technique": "quant",
                    "parent_run_id": "p3s0",
                    "status": "finished",
                    "N_non_embedding": 80000,
                    "N_total": 85000,
                    "D": D,
                    "loss": loss,
                    "extra_json": json.dumps(comp),
                }
            )
    return db


def test_multipliers_and_total_compute(store: Path) -> None:
    table, law = technique_table(store, bootstrap=30)
    assert law.form == "power"  # one D: a power law in N
    kd = table[table["kind"] == "distilled"].iloc[0]
    assert kd["multiplier"] == pytest.approx(2.0, rel=0.05)
    assert kd["multiplier_lo"] < kd["multiplier"] < kd["multiplier_hi"]
    # the teacher's FLOPs would buy a plain model of ~3.4e5 parameters: far better
    assert kd["N_at_total_compute"] == pytest.approx((6e4 + 2e6) / 6, rel=1e-9)
    assert not kd["wins_at_total_compute"]
    q = table[table["run_id"] == "q2"].iloc[0]
    assert q["multiplier"] < 1  # worse than its parent: a multiplier below one
    q4 = table[table["run_id"] == "q4"].iloc[0]
    assert 0.9 < q4["multiplier_vs_parent"] < 1.0  # 0.001 + seed offset above its parent
    s = distill_summary(table)
    assert s.iloc[0]["gap"] == pytest.approx(law_loss(1e4) * (1 - 0.001) - law_loss(2e4))


def test_a_free_teacher_matches_the_students_own_n(store: Path) -> None:
    """C_teacher = 0: the plain model of equal total compute is the student itself.

    C_student is the trainer's exact count for a real 2 x 24 byte-level student (head and
    attention included: 1.88 x 6 N per token), as the trainer records it; dividing it by 6 D
    would hand the plain model 1.88x the student's non-embedding N for free."""
    from scalelab.accounting import count
    from scalelab.config import ModelConfig

    counted = count(
        ModelConfig(n_layer=2, d_model=24, n_head=2, vocab_size=258, context=128), causal=True
    ).to_dict()
    n = int(counted["params"]["non_embedding"])
    c_student = float(counted["flops"]["train_per_token"]) * D
    assert c_student > 1.5 * 6 * n * D  # the exact count is well above the law's 6 N D
    teacher_fwd = 1.77e6  # exact forward FLOPs per token of a 0.79M teacher
    with Store(store) as s:
        for run_id, c_teacher in (("free", 0.0), ("paid", teacher_fwd * D)):
            extra = {
                "scratch_run_id": "p0s0",
                "alpha": 0.9 if c_teacher else 0.0,
                "teacher_run_id": "T",
                "teacher_N_non_embedding": 787584,
                "teacher_forward_flops_per_token": teacher_fwd,
                "C_student": c_student,
                "C_teacher": c_teacher,
                "C_total": c_student + c_teacher,
            }
            s.put_point(
                {
                    "run_id": run_id,
                    "study": "x",
                    "kind": "distilled",
                    "technique": "distill",
                    "parent_run_id": "T",
                    "status": "finished",
                    "size": "s0",
                    "seed": 0,
                    "N_non_embedding": n,
                    "N_total": n + 9000,
                    "D": D,
                    # a hair better than a plain model of its own N: it wins for free
                    "loss": law_loss(n) - 0.01,
                    "extra_json": json.dumps(extra),
                }
            )
    table, law = technique_table(store, bootstrap=0)
    free = table[table["run_id"] == "free"].iloc[0]
    assert free["N_at_total_compute"] == pytest.approx(n, rel=1e-12)
    assert free["plain_loss_at_total_compute"] == pytest.approx(law.predict(N=n, D=D))
    assert free["wins_at_total_compute"]
    # a paid teacher that ran on every token: 2 N_teacher per token, i.e. N_teacher / 3
    paid = table[table["run_id"] == "paid"].iloc[0]
    assert paid["N_at_total_compute"] == pytest.approx(n + 787584 / 3, rel=1e-12)
    assert paid["C_law_total"] == pytest.approx(6 * n * D + 2 * 787584 * D, rel=1e-12)
    assert not paid["wins_at_total_compute"]


def test_bits_plane_and_frontier(store: Path, tmp_path: Path) -> None:
    bits = bits_table(store)
    assert set(bits["label"]) == {"16-bit (plain)", "rtn 4-bit", "rtn 2-bit"}
    plain = bits[bits["run_id"] == "p3s0"].iloc[0]
    assert plain["bits"] == 16 * 85000 and plain["is_parent"]
    sec = small_large_section(store, tmp_path / "out", bootstrap=30)
    assert sec is not None and sec.title == "Small vs large"
    assert [f.name for f in sec.figures] == ["small-large-plane.png", "small-large-bits.png"]
    assert all(f.stat().st_size > 1000 for f in sec.figures)
    assert "rtn 4-bit" in sec.html and "wins at equal total compute" in sec.html
    assert math.isfinite(sec.data["distillation"][0]["multiplier"])


def test_report_has_the_section(store: Path, tmp_path: Path) -> None:
    from scalelab.reporting import report
    from scalelab.reporting.sections import BUILDERS, small_vs_large

    assert small_vs_large in BUILDERS
    res = report(store, tmp_path / "rep", bootstrap=20, sections=[small_vs_large])
    titles = [s.title for s in res.sections]
    assert titles == ["Small vs large"]
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "data:image/png;base64" in page and "Distillation" in page


def test_a_new_techniques_points_show_without_editing_the_analysis(store: Path) -> None:
    """The kinds read as a technique's models come from the plug-ins (``plane_kinds``): a
    technique registered here, whose point names its parent, gets its effective size."""
    from scalelab.plugin import Plugin, register_plugin, unregister_plugin
    from scalelab.techniques import small_large

    class Shrink(Plugin):
        name = "shrink-test"
        point_kinds = ("shrunk", "shrink-measure")
        plane_kinds = ("shrunk",)

    with Store(store) as s:
        for kind, run_id in (("shrunk", "sh"), ("shrink-measure", "sm")):
            s.put_point(
                {
                    "run_id": run_id,
                    "study": "x",
                    "kind": kind,
                    "technique": "shrink",
                    "parent_run_id": "p3s0",
                    "status": "finished",
                    "N_non_embedding": 20000,
                    "N_total": 25000,
                    "D": D,
                    "loss": law_loss(4e4),
                }
            )
    before, _ = technique_table(store)
    assert "shrunk" not in set(before["kind"])
    register_plugin(Shrink())
    try:
        assert "shrunk" in small_large.TECHNIQUE_KINDS
        table, _ = technique_table(store)
    finally:
        unregister_plugin("shrink-test")
    assert set(table["kind"]) == {"distilled", "compressed", "shrunk"}  # not the measurement
    row = table[table["kind"] == "shrunk"].iloc[0]
    assert row["N_eff"] == pytest.approx(4e4, rel=0.1)
