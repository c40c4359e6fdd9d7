"""The sweep's run graph: a run starts after the runs it needs, which are added if missing."""

import dataclasses

import pytest

from scalelab.errors import ScalelabError
from scalelab.study import load_points, study_from_dict, sweep
from scalelab.study.grid import expand
from study_fakes import fake_probe, fake_train
from study_fakes import trained_ids as calls

FAKES = {"trainer": fake_train, "data_probe": fake_probe}


def spec():
    return study_from_dict(
        {
            "study": {
                "name": "n",
                "sizes": [
                    {"name": "b", "n_layer": 1, "d_model": 32},
                    {"name": "a", "n_layer": 1, "d_model": 16},
                ],
                "tokens": [1000],
            },
            "model": {"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16},
        }
    )


def smaller(cfg, lr=None):
    """The grid's run of width 16 (with another learning rate if ``lr``)."""
    a = next(r.config for r in expand(spec()) if r.config.model.d_model == 16)
    return a if lr is None else dataclasses.replace(a, train=dataclasses.replace(a.train, lr=lr))


def test_a_run_trains_after_the_run_it_needs(tmp_path, log):
    def needs(cfg):
        return [smaller(cfg)] if cfg.model.d_model == 32 else []

    res = sweep(spec(), db=tmp_path / "r.db", out=tmp_path / "runs", progress=False,
                needs=needs, **FAKES)  # fmt: skip
    b, a = (r.run_id for r in res.runs)
    assert calls(log) == [a, b]  # the grid lists b first; b needs a
    assert res.trained == 2


def test_a_needed_run_missing_from_the_grid_is_added(tmp_path, log):
    def needs(cfg):  # both sizes need a run the grid lacks (another learning rate)
        return [smaller(cfg, lr=1.5e-3)] if cfg.train.lr != 1.5e-3 else []

    res = sweep(spec(), db=tmp_path / "r.db", out=tmp_path / "runs", progress=False,
                needs=needs, **FAKES)  # fmt: skip
    assert len(res.runs) == 3 and res.trained == 3
    extra = res.runs[-1]
    assert calls(log)[0] == extra.run_id and "needed_by" in extra.axes
    assert len(load_points(tmp_path / "r.db")) == 3


def test_a_run_whose_need_failed_is_failed_without_a_directory(tmp_path, log):
    def needs(cfg):  # lr > 1 makes the fake trainer diverge
        return [smaller(cfg, lr=2.0)] if cfg.train.lr != 2.0 else []

    out = tmp_path / "runs"
    res = sweep(spec(), db=tmp_path / "r.db", out=out, progress=False, needs=needs, **FAKES)
    b, a, bad = res.runs
    assert bad.status == "failed" and calls(log) == [bad.run_id]
    for r in (a, b):
        assert r.status == "failed" and bad.run_id in (r.reason or "")
        assert not (out / r.run_id).exists()  # trained by a later sweep once its need is fine


def test_a_cycle_of_needs_stops_the_sweep_before_any_run(tmp_path, log):
    runs = {r.config.model.d_model: r.config for r in expand(spec())}

    def needs(cfg):  # a needs b, b needs a
        return [runs[16 if cfg.model.d_model == 32 else 32]]

    with pytest.raises(ScalelabError, match="cycle"):
        sweep(spec(), db=tmp_path / "r.db", out=tmp_path / "runs", progress=False,
              needs=needs, **FAKES)  # fmt: skip
    assert calls(log) == []


def test_two_workers_start_a_run_only_after_its_need(tmp_path, log):
    def needs(cfg):
        return [smaller(cfg)] if cfg.model.d_model == 32 else []

    res = sweep(spec(), db=tmp_path / "r.db", out=tmp_path / "runs", progress=False,
                needs=needs, workers=2, **FAKES)  # fmt: skip
    b, a = (r.run_id for r in res.runs)
    assert calls(log) == [a, b] and res.trained == 2
    # b started after a's summary was written
    runs = tmp_path / "runs"
    assert (runs / b / "config.json").stat().st_mtime >= (runs / a / "summary.json").stat().st_mtime
