import json
import math
import multiprocessing
import sqlite3
import sys

import pandas as pd
import pytest
from study_writers import write_points

from scalelab.config import ModelConfig, RunConfig, TrainConfig
from scalelab.errors import StoreError
from scalelab.results.records import read_run
from scalelab.study import Store, export_points, load_curves, load_points, rebuild
from study_fakes import fake_train

CONTRACT = [
    "run_id", "study", "arch", "n_layer", "d_model", "n_head", "d_ff", "vocab_size", "context",
    "N", "N_total", "N_non_embedding", "N_active", "D", "C", "C_exact", "loss", "val_bpb",
    "train_loss", "unique_tokens", "epochs", "seed", "status", "wall_seconds", "tokens_per_second",
]  # fmt: skip


def cfg(d_model=16, tokens=2000, seed=0, lr=1e-3):
    return RunConfig(
        model=ModelConfig(n_layer=1, d_model=d_model, n_head=2, vocab_size=64, context=16),
        train=TrainConfig(tokens=tokens, seed=seed, lr=lr),
    )


@pytest.fixture
def runs(tmp_path):
    out = tmp_path / "runs"
    configs = [cfg(16), cfg(32), cfg(32, tokens=4000), cfg(16, lr=2.0)]
    for c in configs:
        fake_train(c, out)
    return out, configs


def test_record_and_load_points(runs, tmp_path):
    out, configs = runs
    db = tmp_path / "r.db"
    with Store(db) as store:
        for c in configs:
            store.record_run(
                read_run(out / c.run_id()),
                study="s",
                axes={"size": "x", "budget": "b", "train.lr": c.train.lr},
            )
    df = load_points(db)
    assert set(CONTRACT) <= set(df.columns)
    assert list(df.columns[:3]) == ["run_id", "study", "arch"]
    assert len(df) == 3  # the diverged run is not a point by default
    row = df.iloc[0]
    summary = json.loads((out / configs[0].run_id() / "summary.json").read_text())
    assert row["run_id"] == configs[0].run_id() and row["study"] == "s"
    assert row["N"] == row["N_non_embedding"] == summary["params"]["non_embedding"]
    assert row["D"] == 2000 and row["loss"] == pytest.approx(summary["val_loss"])
    assert row["C"] == pytest.approx(6 * row["N"] * row["D"])
    assert row["C_exact"] == pytest.approx(summary["flops_total"])
    assert row["train.lr"] == 1e-3 and row["size"] == "x" and row["budget"] == "b"
    total = load_points(db, n="total")
    assert (total["N"] == total["N_total"]).all()
    assert (total["C"] == 6 * total["N_total"] * total["D"]).all()
    everything = load_points(db, status=None)
    failed = everything[everything["status"] == "failed"].iloc[0]
    assert failed["reason"] == "loss is NaN at step 3" and math.isnan(failed["loss"])
    with pytest.raises(StoreError, match="n = 'embedding'"):
        load_points(db, n="embedding")
    assert "config_json" in load_points(db, config=True).columns


def test_curves_as_points(runs, tmp_path):
    out, configs = runs
    db = tmp_path / "r.db"
    with Store(db) as store:
        for c in configs[:2]:
            store.record_run(read_run(out / c.run_id()), study="s")
    pts = load_points(db, curves=True)
    assert len(pts) == 4  # two evaluations (steps 5 and 10) per run
    first = pts[pts["run_id"] == configs[0].run_id()]
    assert list(first["step"]) == [5, 10] and list(first["final"]) == [False, True]
    assert list(first["D"]) == [1000, 2000]
    assert (first["C"] == 6 * first["N"] * first["D"]).all()
    assert first["C_exact"].iloc[1] == pytest.approx(load_points(db)["C_exact"].iloc[0])
    curves = load_curves(db, run_ids=[configs[0].run_id()])
    assert list(curves["step"]) == list(range(1, 11)) and curves["val_loss"].notna().sum() == 2
    assert set(curves["study"]) == {"s"} and curves["N_total"].notna().all()


def test_export_csv_and_parquet(runs, tmp_path, monkeypatch):
    out, configs = runs
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.record_run(read_run(out / configs[0].run_id()))
    csv = export_points(db, tmp_path / "p.csv")
    back = pd.read_csv(csv)
    assert back["run_id"].tolist() == [configs[0].run_id()] and "N" in back.columns
    with pytest.raises(StoreError, match=r"\*\.csv or \*\.parquet"):
        export_points(db, tmp_path / "p.xlsx")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    with pytest.raises(StoreError, match="pip install 'scalelab\\[parquet\\]'"):
        export_points(db, tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def test_missing_and_corrupt_store(tmp_path):
    with pytest.raises(StoreError, match=r"no results store.*scalelab sweep"):
        load_points(tmp_path / "none.db")
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite at all, just text" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite results store"):
        load_points(bad)


def test_rebuild_matches_the_live_store(runs, tmp_path):
    out, configs = runs
    live = tmp_path / "live.db"
    with Store(live) as store:
        for c in configs:
            store.record_run(read_run(out / c.run_id()))
    (out / "notes").mkdir()  # not a run directory: ignored
    res = rebuild(out, tmp_path / "rebuilt.db", counter=lambda c: None)
    assert res.runs == 4 and res.points == 4 and res.pending == 0
    a = load_points(live, status=None).drop(columns=["run_dir"], errors="ignore")
    b = load_points(tmp_path / "rebuilt.db", status=None).drop(columns=["run_dir"], errors="ignore")
    pd.testing.assert_frame_equal(
        a.sort_values("run_id").reset_index(drop=True),
        b.sort_values("run_id").reset_index(drop=True),
    )
    # rebuilding over an existing store replaces its rows, in one transaction
    res2 = rebuild(out, live)
    assert res2.points == 4 and len(load_points(live, status=None)) == 4


def test_interrupted_run_and_truncated_metrics(tmp_path):
    out = tmp_path / "runs"
    c = cfg()
    fake_train(c, out)
    run_dir = out / c.run_id()
    (run_dir / "summary.json").unlink()
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "tokens": 22')  # killed mid-line
    rec = read_run(run_dir)
    assert rec.status == "interrupted" and rec.metrics[-1]["step"] == 10
    with Store(tmp_path / "r.db") as store:
        row = store.record_run(rec)
    assert row["status"] == "interrupted" and row["D"] == 2000 and row["step"] == 10
    with pytest.raises(StoreError, match=r"no config\.json"):
        read_run(tmp_path)


def test_technique_points_and_schema_migration(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.put_point({"run_id": "student1", "study": "s", "kind": "distilled", "technique": "kd",
                         "parent_run_id": "abc", "status": "finished", "N_non_embedding": 10,
                         "D": 100, "loss": 2.0, "extra_json": json.dumps({"temperature": 2})})  # fmt: skip
        with pytest.raises(StoreError, match="unknown point columns"):
            store.put_point({"run_id": "x", "status": "finished", "lossy": 1})
    df = load_points(db, kind="distilled")
    assert df["technique"].tolist() == ["kd"] and df["C"].tolist() == [6000.0]
    # an older store without some columns gains them on open
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE points DROP COLUMN entropy_rate")
    conn.commit()
    conn.close()
    with Store(db) as store:
        cols = {r["name"] for r in store.query("PRAGMA table_info(points)")}
    assert "entropy_rate" in cols


def test_concurrent_writers(tmp_path):
    db = str(tmp_path / "c.db")
    Store(db).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_points, args=(db, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    df = load_points(db)
    assert len(df) == 160 and df["run_id"].is_unique
    with Store(db) as store:
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
