"""A tiny real study: the real trainer on a Markov source, 2 sizes, a few dozen steps."""

import math

import pandas as pd
import pytest

from scalelab.study import load_curves, load_points, rebuild, study_from_dict, sweep

STUDY = {
    "study": {
        "name": "tiny",
        "corpus": "markov:order=1,vocab=16,seed=0,tokens=60000",
        "tokens": [6400],
        "sizes": [
            {"name": "xs", "n_layer": 1, "d_model": 16, "n_head": 2},
            {"name": "s", "n_layer": 2, "d_model": 32, "n_head": 2},
        ],
    },
    "model": {"vocab_size": 18, "context": 32},
    "train": {"batch_size": 8, "lr": 1e-2, "eval_every": 10, "eval_batches": 2, "device": "cpu"},
}


def test_tiny_real_study(tmp_path):
    db, out = tmp_path / "r.db", tmp_path / "runs"
    res = sweep(study_from_dict(STUDY), db=db, out=out, progress=False)
    assert [o.status for o in res.runs] == ["finished", "finished"], res.runs
    pts = load_points(db)
    assert len(pts) == 2 and list(pts["size"]) == ["xs", "s"]
    assert (pts["D"] == 6400).all()  # 25 steps of 8 x 32 tokens
    assert (pts["N_non_embedding"] < pts["N_total"]).all() and pts["N"].is_monotonic_increasing
    # learning happened: below the uniform loss, above the source's entropy rate
    entropy = pts["entropy_rate"].iloc[0]
    assert 0 < entropy < math.log(16)
    assert ((pts["loss"] < math.log(18)) & (pts["loss"] > entropy)).all()
    assert (pts["C_exact"] > 0).all() and (pts["tokens_per_second"] > 0).all()
    # intermediate evaluations are points too
    curve_pts = load_points(db, curves=True)
    assert len(curve_pts) >= 2 * 2 and curve_pts.groupby("run_id")["final"].sum().eq(1).all()
    assert (curve_pts["D"] > 0).all()  # not the evaluation before training
    curves = load_curves(db)
    assert curves.loc[curves["step"] > 0, "train_loss"].notna().all()
    assert curves.loc[curves["step"] == 0, "val_loss"].notna().all()  # the loss before training
    # a second sweep trains nothing; the store rebuilds from the run directories alone
    again = sweep(study_from_dict(STUDY), db=db, out=out, progress=False)
    assert again.skipped == 2 and again.trained == 0
    rebuild(out, tmp_path / "rebuilt.db")
    cols = ["run_id", "size", "N", "D", "C_exact", "loss", "val_bpb", "status"]
    pd.testing.assert_frame_equal(load_points(tmp_path / "rebuilt.db")[cols], pts[cols])


@pytest.mark.slow
def test_real_study_in_two_workers(tmp_path):
    res = sweep(
        study_from_dict(STUDY),
        db=tmp_path / "r.db",
        out=tmp_path / "runs",
        workers=2,
        progress=False,
    )
    assert [o.status for o in res.runs] == ["finished", "finished"]
    assert len(load_points(tmp_path / "r.db")) == 2
