"""The architecture comparison: slopes, power fits, frontier, depth vs width, CLI, end to end."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scalelab.analysis.arch_compare import (
    Slope,
    compare,
    crossover,
    frontier,
    prepare_points,
)
from scalelab.analysis.depth_vs_width import (
    depth_width,
    depth_width_sizes,
    depth_width_toml,
)
from scalelab.cli import app
from scalelab.errors import FitError, ScalelabError
from scalelab.reporting.architectures import architecture_section, plot_comparison
from scalelab.results.store import Store
from scalelab.study import expand, load_points, study_from_dict, sweep
from scalelab.study.studyfile import load_study

# Two architectures on a known line each: loss = k N^-alpha_N, with D = 20 N and
# C_exact = 6 N D (so alpha_C = alpha_N / 2 exactly), and a little multiplicative noise.
TRUTH = {"transformer": (20.0, 0.20), "performer": (12.0, 0.14)}
SIZES = [1e4, 2.2e4, 4.6e4, 1e5, 2.2e5]


def synthetic(noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arch, (k, alpha) in TRUTH.items():
        for n in SIZES:
            d = 20 * n
            rows.append(
                {
                    "run_id": f"{arch}-{n:g}",
                    "study": "syn",
                    "arch": arch,
                    "size": f"{n:g}",
                    "N_non_embedding": n,
                    "N_total": n + 5000,
                    "N_active": n + 5000,
                    "D": d,
                    "C_exact": 6 * n * d,
                    "loss": k * n**-alpha * math.exp(noise * rng.standard_normal()),
                    "status": "finished",
                }
            )
    return pd.DataFrame(rows)


def test_slopes_recovered_with_intervals():
    cmp = compare(synthetic(), bootstrap=100)
    by = {a.arch: a for a in cmp.archs}
    for arch, (_, alpha) in TRUTH.items():
        a = by[arch]
        assert a.vs_params.alpha == pytest.approx(alpha, abs=0.01)
        assert a.vs_compute.alpha == pytest.approx(alpha / 2, abs=0.005)
        lo, hi = a.vs_params.ci
        assert lo <= a.vs_params.alpha <= hi and hi - lo < 0.05
        assert a.vs_compute.x == "C_exact" and a.n_kind == "non_embedding"
    table = cmp.table()
    assert list(table["arch"]) == ["transformer", "performer"]  # sorted by alpha_C
    assert json.loads(json.dumps(cmp.to_dict(), default=float))["downstream"] is None


def test_power_law_fit_recovers_irreducible_loss():
    rows = []
    for n in np.geomspace(1e4, 1e6, 7):
        rows.append(
            {
                "arch": "transformer",
                "N_non_embedding": n,
                "D": 20 * n,
                "C_exact": 120 * n * n,
                "loss": 1.5 + 40 * n**-0.35,
            }
        )
    cmp = compare(pd.DataFrame(rows), bootstrap=50)
    p = cmp.archs[0].power_params.params
    assert p["E"] == pytest.approx(1.5, rel=0.05) and p["alpha"] == pytest.approx(0.35, rel=0.05)


def test_too_few_points_are_notes_not_crashes():
    df = synthetic()
    df = df[(df["arch"] == "transformer") | (df["N_non_embedding"] <= 2.2e4)]
    cmp = compare(df, bootstrap=20)
    perf = next(a for a in cmp.archs if a.arch == "performer")
    assert perf.vs_compute.alpha is None and "at least 3 distinct" in perf.vs_compute.error
    assert "needs 4 distinct" in perf.power_params.error
    notes = cmp.notes()
    assert any(n.startswith("performer: alpha vs C_exact") for n in notes)
    assert not any(n.startswith("transformer") for n in notes)


def test_bad_input_is_a_fit_error():
    with pytest.raises(FitError, match="compute must be"):
        compare(synthetic(), compute="flops")
    with pytest.raises(FitError, match="archs mixer have no points"):
        compare(synthetic(), archs=["mixer"])
    with pytest.raises(FitError, match="no finished points"):
        compare(synthetic().assign(loss=float("nan")))


def test_switch_uses_active_non_embedding_n():
    df = synthetic().assign(arch="switch")
    df["N_total"] = df["N_non_embedding"] * 5 + 5000  # 8 experts: most parameters idle
    df["N_non_embedding"] = df["N_non_embedding"] * 5
    pts = prepare_points(df)
    # active non-embedding = non-embedding minus the skipped experts = the original N
    assert np.allclose(pts["N"], SIZES * 2)
    assert set(pts["N_kind"]) == {"active_non_embedding"}
    assert np.allclose(prepare_points(df, sparse_n="total")["N"], df["N_non_embedding"])


def test_frontier_regions_and_handovers():
    # a wins cheap, b wins in the middle, a again at the top; c is never on the frontier
    df = pd.DataFrame(
        {
            "arch": ["a", "a", "a", "b", "b", "c", "c"],
            "x_C": [1.0, 10.0, 100.0, 3.0, 30.0, 2.0, 50.0],
            "loss": [5.0, 3.0, 1.0, 4.0, 2.0, 6.0, 2.5],
        }
    )
    f = frontier(df, "x_C")
    assert list(f.points["arch"]) == ["a", "b", "a", "b", "a"]
    assert [(h.before, h.after) for h in f.handovers] == [
        ("a", "b"),
        ("b", "a"),
        ("a", "b"),
        ("b", "a"),
    ]
    assert f.handovers[0].cost_before == 1.0 and f.handovers[0].cost_after == 3.0
    assert [r["arch"] for r in f.regions] == ["a", "b", "a", "b", "a"]
    assert "c" not in set(f.points["arch"])


def test_crossover_of_two_lines():
    a, b = Slope("C", alpha=0.2, k=10.0), Slope("C", alpha=0.1, k=5.0)
    x = crossover(a, b)
    assert 10.0 * x**-0.2 == pytest.approx(5.0 * x**-0.1)
    assert crossover(a, Slope("C", error="too few")) is None
    assert crossover(a, a) is None
    cmp = compare(synthetic(), bootstrap=20)
    (c,) = cmp.crossovers("N")
    assert c["arch"] == "performer" and c["ahead_above"] == "transformer"
    assert c["ahead_below"] == "performer" and not c["inside_range"]  # k: 20 vs 12


def test_depth_width_generator_is_a_valid_study(tmp_path):
    sizes = depth_width_sizes(depths=[1, 2, 4], widths=[32, 64, 96], base_layers=2, base_width=64)
    assert [s["name"] for s in sizes] == ["L1-d64", "L2-d64", "L4-d64", "L2-d32", "L2-d96"]
    path = tmp_path / "dw.toml"
    path.write_text(
        depth_width_toml(["transformer", "albert", "lconv"], depths=(1, 2, 4), widths=(32, 64, 96))
    )
    runs = expand(load_study(path))
    assert len(runs) == 15 and {r.axes["arch"] for r in runs} == {"transformer", "albert", "lconv"}
    with pytest.raises(ScalelabError, match="must be on both ladders"):
        depth_width_sizes(depths=[1, 2, 4], widths=[32, 48, 96], base_layers=2, base_width=64)
    with pytest.raises(ScalelabError, match="multiple of n_head"):
        depth_width_sizes(depths=[1, 2, 4], widths=[30, 64, 96], base_layers=2, base_width=64)


def test_repository_depth_width_study_matches_the_generator():
    from pathlib import Path

    path = Path(__file__).parents[2] / "studies" / "depth-width.toml"
    runs = expand(load_study(path))
    assert len({r.axes["arch"] for r in runs}) >= 3


def test_depth_width_slopes():
    # Known slopes: depth at d_model=64 gives alpha_N 0.1, width at n_layer=2 gives 0.3;
    # the base shape 2 x 64 lies on both lines.
    rows = []
    base_loss = 9 * 1e5**-0.1
    for arch, shared in (("transformer", False), ("albert", True)):
        n_base = 5e4 if shared else 1e5
        for n_layer in (1, 2, 4, 8):
            n = n_base if shared else n_layer * 5e4
            rows.append(
                {
                    "arch": arch,
                    "n_layer": n_layer,
                    "d_model": 64,
                    "N_non_embedding": n,
                    "D": 1e6,
                    "C_exact": n_layer * 1e12,
                    "loss": 9 * (n_layer * 5e4) ** -0.1,
                }
            )
        for d in (32, 96, 128):
            n = (d / 64) ** 2 * n_base
            rows.append(
                {
                    "arch": arch,
                    "n_layer": 2,
                    "d_model": d,
                    "N_non_embedding": n,
                    "D": 1e6,
                    "C_exact": 2e12 * (d / 64) ** 2,
                    "loss": base_loss * (n / n_base) ** -0.3,
                }
            )
    res = {(r.arch, r.direction): r for r in depth_width(pd.DataFrame(rows), bootstrap=20)}
    assert res[("transformer", "depth")].vs_params.alpha == pytest.approx(0.1, abs=1e-6)
    assert res[("transformer", "depth")].values == (1, 2, 4, 8)
    assert res[("transformer", "width")].vs_params.alpha == pytest.approx(0.3, abs=1e-6)
    assert res[("transformer", "width")].values == (32, 64, 96, 128)
    assert res[("transformer", "width")].fixed == 2
    albert_depth = res[("albert", "depth")]
    assert albert_depth.vs_params.alpha is None and "shares weights" in albert_depth.vs_params.error
    assert albert_depth.vs_compute.alpha == pytest.approx(0.1, abs=1e-6)
    assert res[("albert", "width")].vs_params.alpha == pytest.approx(0.3, abs=1e-6)


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "syn.db"
    with Store(db) as s:
        for row in synthetic().to_dict(orient="records"):
            s.put_point(row)
    return db


def test_cli_compare_on_a_store(store, tmp_path):
    runner = CliRunner()
    png = tmp_path / "fig" / "front.png"
    res = runner.invoke(
        app,
        ["compare", "--db", str(store), "--bootstrap", "50", "--plot", str(png)],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert "transformer" in res.output and "frontier vs C_exact" in res.output
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    res = runner.invoke(app, ["compare", "--db", str(store), "--json", "--bootstrap", "20"])
    out = json.loads(res.output)
    alpha = {a["arch"]: a["alpha_N"]["alpha"] for a in out["archs"]}
    assert alpha["transformer"] == pytest.approx(0.2, abs=0.01)
    res = runner.invoke(app, ["compare", "--db", str(tmp_path / "none.db")])
    assert res.exit_code != 0


def test_tiny_real_comparison_end_to_end(tmp_path):
    spec = {
        "study": {
            "name": "tiny-archs",
            "corpus": "markov:order=1,vocab=16,seed=0,tokens=60000",
            "arch": ["transformer", "lconv"],
            "tokens": [3200],
            "sizes": [
                {"name": "xs", "n_layer": 1, "d_model": 16, "n_head": 2},
                {"name": "s", "n_layer": 2, "d_model": 32, "n_head": 2},
            ],
        },
        "model": {"vocab_size": 18, "context": 32},
        "train": {
            "batch_size": 8,
            "lr": 1e-2,
            "eval_every": 10,
            "eval_batches": 2,
            "device": "cpu",
        },
    }
    db = tmp_path / "t.db"
    res = sweep(study_from_dict(spec), db=db, out=tmp_path / "runs", progress=False)
    assert [o.status for o in res.runs] == ["finished"] * 4
    cmp = compare(db, bootstrap=20)
    assert {a.arch for a in cmp.archs} == {"transformer", "lconv"}
    # two sizes: no slope, said so; the frontier still exists over the four real points
    assert all(a.vs_compute.alpha is None for a in cmp.archs) and cmp.notes()
    assert len(cmp.frontier_compute.points) >= 1
    assert set(cmp.frontier_compute.points["arch"]) <= {"transformer", "lconv"}
    pts = load_points(db)
    assert cmp.points["x_C"].tolist() == pts["C_exact"].tolist()
    plot_comparison(cmp, tmp_path / "f.png")
    # the report's architecture section from the same store
    section = architecture_section(db, tmp_path / "report", bootstrap=20)
    assert [f.name for f in section.figures] == ["arch-frontier.png", "arch-curves.png"]
    assert all(f.stat().st_size > 5_000 for f in section.figures)
    assert '<table class="arch-slopes">' in section.html and "arch-curves.png" in section.html
    assert "not fitted" in section.html  # two sizes: the slopes are missing, and say why
    json.dumps(section.data)
    # ... and the whole report: the Architectures section, no single law over both
    from scalelab.reporting import report

    rep = report(db, tmp_path / "page", bootstrap=20)
    assert [s.title for s in rep.sections] == ["What was measured", "Architectures", "Fitted law"]
    assert rep.law is None and "2 architectures" in rep.law_error
    assert "data:image/png;base64," in rep.path.read_text()


def test_study_fills_an_architectures_required_fields():
    """glu needs a gated mlp: a study listing it beside the transformer gets one for glu
    only, and a study that sets mlp itself keeps its choice."""
    spec = {
        "study": {"name": "g", "arch": ["transformer", "glu"], "params": [2e4], "tokens": [1000]},
        "model": {"vocab_size": 18, "context": 32},
    }
    mlp = {r.axes["arch"]: r.config.model.mlp for r in expand(study_from_dict(spec))}
    assert mlp == {"transformer": "gelu", "glu": "swiglu"}
    spec["model"]["mlp"] = "geglu"
    spec["study"]["arch"] = ["glu"]
    assert expand(study_from_dict(spec))[0].config.model.mlp == "geglu"
