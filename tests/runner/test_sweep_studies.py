"""Several studies through one pool: one order over all their runs, each study its points."""

import pytest

from scalelab.errors import ConfigError
from scalelab.study import load_points, study_from_dict, sweep_studies
from study_fakes import fake_probe, fake_train
from study_fakes import trained_ids as calls

FAKES = {"trainer": fake_train, "data_probe": fake_probe}


def study(name, widths, tokens=(1000,)):
    return study_from_dict(
        {
            "study": {
                "name": name,
                "sizes": [{"name": f"w{w}", "n_layer": 1, "d_model": w} for w in widths],
                "tokens": list(tokens),
            },
            "model": {"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16},
        }
    )


def test_the_longest_run_of_any_study_starts_first(tmp_path, log):
    # a ladder of small runs and a "held-out" study of one larger run, as the demo sweeps them
    ladder, held = study("ladder", [8, 16], (1000, 2000)), study("held", [64], (2000,))
    res_l, res_h = sweep_studies([ladder, held], db=tmp_path / "r.db", out=tmp_path / "runs",
                                 progress=False, workers=2, **FAKES)  # fmt: skip
    assert res_l.study == "ladder" and res_h.study == "held"
    assert len(res_l.runs) == 4 and len(res_h.runs) == 1
    assert res_l.trained == 4 and res_h.trained == 1
    # one order over both studies: the held-out run (the most FLOPs) first, though listed last
    assert calls(log)[0] == res_h.runs[0].run_id
    # each study's points under its own name
    assert len(load_points(tmp_path / "r.db", study="ladder")) == 4
    held_pts = load_points(tmp_path / "r.db", study="held")
    assert list(held_pts["run_id"]) == [res_h.runs[0].run_id]


def test_one_at_a_time_each_study_in_its_own_order(tmp_path, log):
    a, b = study("a", [8]), study("b", [64])
    res_a, res_b = sweep_studies([a, b], db=tmp_path / "r.db", out=tmp_path / "runs",
                                 progress=False, **FAKES)  # fmt: skip
    assert calls(log) == [res_a.runs[0].run_id, res_b.runs[0].run_id]


def test_a_run_two_studies_ask_for_trains_once_and_is_recorded_under_both(tmp_path, log):
    a, b = study("a", [8, 16]), study("b", [16])
    res_a, res_b = sweep_studies([a, b], db=tmp_path / "r.db", out=tmp_path / "runs",
                                 progress=False, **FAKES)  # fmt: skip
    shared = res_b.runs[0].run_id
    assert shared in {r.run_id for r in res_a.runs}
    assert calls(log).count(shared) == 1 and len(calls(log)) == 2
    assert list(load_points(tmp_path / "r.db", study="b")["run_id"]) == [shared]
    assert load_points(tmp_path / "r.db", study="b")["status"].iloc[0] == "finished"


def test_a_second_sweep_skips_what_both_studies_finished(tmp_path, log):
    kw = dict(db=tmp_path / "r.db", out=tmp_path / "runs", progress=False, **FAKES)
    sweep_studies([study("a", [8]), study("b", [16])], **kw)
    again = sweep_studies([study("a", [8]), study("b", [16])], **kw)
    assert [r.skipped for r in again] == [1, 1] and len(calls(log)) == 2


def test_two_studies_of_one_name_are_refused_before_any_run(tmp_path, log):
    with pytest.raises(ConfigError, match="both named 'a'"):
        sweep_studies([study("a", [8]), study("a", [16])], db=tmp_path / "r.db",
                      out=tmp_path / "runs", progress=False, **FAKES)  # fmt: skip
    assert calls(log) == [] and not (tmp_path / "runs").exists()


def test_no_study_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one study"):
        sweep_studies([], db=tmp_path / "r.db", out=tmp_path / "runs", progress=False)
