"""A tiny run on a facts corpus with canaries, measured end to end (API, store, CLI)."""

import json

import pandas as pd
import pytest

from scalelab.config import load_run_config
from scalelab.errors import FitError, StoreError
from scalelab.memorization.capacity import capacity
from scalelab.memorization.extraction import memorization
from scalelab.memorization.study import capacity_points, fit_capacity
from scalelab.study.points import load_points
from scalelab.study.records import point_row, read_run
from scalelab.study.store import Store
from scalelab.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mem")
    cfg = load_run_config(
        None,
        [
            "model.n_layer=1",
            "model.d_model=16",
            "model.n_head=2",
            "model.vocab_size=293",
            "model.context=48",
            "data.corpus='facts:people=40,attributes=3'",
            f"data.cache_dir='{root / 'cache'}'",
            "data.canaries={count=2, length=8, prefix=8, repeats=[1, 4]}",
            "train.tokens=8000",
            "train.batch_size=8",
            "train.precision='fp32'",
            "train.eval_every=20",
        ],
    )
    summary = train(cfg, root / "runs", progress=False)
    db = root / "results.db"
    rec = read_run(root / "runs" / summary.run_id)
    with Store(db) as store:
        store.put_point(point_row(rec, study="tiny"))
    return root / "runs" / summary.run_id, db, summary


def test_capacity_writes_the_run_and_a_point_beside_it(run):
    run_dir, db, summary = run
    res = capacity(run_dir, db=db)
    assert res.corpus_kind == "facts" and res.precision == "fp32"
    assert res.content_bits == pytest.approx(40 * (15.036173612553485 + 7.643856 + 8.228819), 1e-6)
    assert 0.0 <= res.bits <= res.content_bits
    assert res.bits_per_param == pytest.approx(res.bits / summary.params["total"])
    assert res.exposures == pytest.approx(summary.epochs)
    assert json.loads((run_dir / "capacity.json").read_text())["bits"] == pytest.approx(res.bits)
    q = capacity(run_dir, precision="int4", db=db)
    assert (run_dir / "capacity-int4.json").is_file() and q.precision == "int4"
    pts = load_points(db, kind="capacity")
    assert set(pts["technique"]) == {"fp32", "int4"}
    assert set(pts["parent_run_id"]) == {summary.run_id} and set(pts["study"]) == {"tiny"}
    table = capacity_points(db, study="tiny")
    assert set(table["precision"]) == {"fp32", "int4"} and "bits" in table
    with pytest.raises(FitError, match="2 or more sizes"):
        fit_capacity(table)


def test_memorization_measures_canaries_and_windows(run):
    run_dir, db, _ = run
    res = memorization(run_dir, prefixes=(4, 8), samples=16, db=db)
    table = res.table()
    assert set(table["source"]) == {"canary", "train", "val"}
    canary = table[table["source"] == "canary"]
    assert sorted(canary["repeats"].unique()) == [1, 4] and set(canary["n"]) == {2}
    assert table["share"].between(0, 1).all()
    assert (run_dir / "memorization.json").is_file()
    assert len(load_points(db, kind="memorization")) == 1


def test_capacity_refuses_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match=r"no config\.json"):
        capacity(tmp_path)


def test_fit_recovers_a_known_slope():
    N = [1e4, 2e4, 4e4, 8e4]
    rows = [
        {
            "N_non_embedding": n,
            "bits": 0.5 * n * f,
            "corpus_kind": "facts",
            "precision": "fp32",
            "exposures": 100.0,
            "corpus": c,
            "content_bits": 1e9,
        }
        for n in N
        for c, f in (("big", 1.0), ("small", 0.3))
    ]
    (fit,) = fit_capacity(pd.DataFrame(rows), bootstrap=200)
    assert fit.bits_per_param == pytest.approx(0.5)
    assert fit.exponent == pytest.approx(1.0)
    assert fit.bits_per_param_ci[0] <= 0.5 <= fit.bits_per_param_ci[1]
    assert [p["corpus"] for p in fit.points] == ["big"] * 4  # the capacity: the most stored


@pytest.mark.slow
def test_cli(run, cli):
    run_dir = run[0]
    out = cli("capacity", str(run_dir), "--precision", "fp32,int8", "--json")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert [r["precision"] for r in got["results"]] == ["fp32", "int8"]
    out = cli("memorization", str(run_dir), "--prefix", "4,8", "--samples", "8")
    assert out.returncode == 0 and "canary" in out.stdout
    bad = cli("capacity", str(run_dir), "--precision", "int3")
    assert bad.returncode == 2 and "int3" in bad.stderr and "Traceback" not in bad.stderr
    none = cli("capacity")
    assert none.returncode == 2 and "--study" in none.stderr


def test_report_has_a_memorization_section(run, tmp_path):
    from scalelab.reporting import report
    from scalelab.reporting.memorization import memorization_section as memorization_builder
    from scalelab.reporting.sections import BUILDERS

    assert memorization_builder in BUILDERS  # on every report by default
    run_dir, db, _ = run
    capacity(run_dir, db=db)
    memorization(run_dir, prefixes=(4, 8), samples=16, db=db)
    res = report(
        db, tmp_path / "report", study="tiny", bootstrap=20, sections=[memorization_builder]
    )
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Memorization" in page and "bits stored" in page
    assert (tmp_path / "report" / "memorization-capacity.png").is_file()
    assert (tmp_path / "report" / "memorization-extraction.png").is_file()
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    assert any("Memorization" in str(k) for k in json.dumps(data).split('"'))
    assert res.path.is_file()
