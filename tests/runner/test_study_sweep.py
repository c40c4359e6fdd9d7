import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.study import load_points, rebuild, study_from_dict, sweep
from scalelab.study.cost import config_counts
from study_fakes import fake_probe, fake_train
from study_fakes import train_calls as calls

HERE = Path(__file__).parents[1]  # tests/: where study_fakes.py lives


def spec(**s):
    return study_from_dict(
        {
            "study": {"name": "t", **s},
            "model": {"n_head": 2, "vocab_size": 64, "context": 16},
            "train": {"lr": 1e-3},
        }
    )


FAKES = {"trainer": fake_train, "data_probe": fake_probe}  # real sizer and counter (accounting)


def test_sweep_records_points_and_skips_finished(tmp_path, log):
    s = spec(params=[3e3, 1e4, 3e4], tokens_per_param=[5, 20])
    db, out = tmp_path / "r.db", tmp_path / "runs"
    res = sweep(s, db=db, out=out, progress=False, **FAKES)
    assert res.trained == 6 and res.failed == 0 and res.skipped == 0
    pts = load_points(db)
    assert len(pts) == 6 and set(pts["study"]) == {"t"}
    assert sorted(set(pts["budget"])) == ["tpp=20", "tpp=5"]
    tpp5 = pts[pts["budget"] == "tpp=5"]
    # the trainer's rule: tokens per *non-embedding* parameter (Kaplan's N, as the loop uses)
    assert (tpp5["D"] == 5 * tpp5["N_non_embedding"]).all()
    assert (tpp5["D"] != 5 * tpp5["N_total"]).all()
    assert (out / "_studies" / "t.json").is_file()
    # a second sweep trains nothing and keeps the points
    res2 = sweep(s, db=db, out=out, progress=False, **FAKES)
    assert res2.skipped == 6 and res2.trained == 0 and len(calls(log)) == 6
    assert len(load_points(db)) == 6
    # the store can be rebuilt from the runs directory alone, axes included
    rebuild(out, tmp_path / "again.db")
    again = load_points(tmp_path / "again.db")
    assert sorted(again["run_id"]) == sorted(pts["run_id"])
    assert sorted(again["budget"]) == sorted(pts["budget"])


def test_failed_runs_are_recorded_and_do_not_stop_the_study(tmp_path, log):
    # lr 2.0 diverges (the trainer writes a failed summary), lr 0.5 raises
    s = spec(
        sizes=[{"name": "a", "n_layer": 1, "d_model": 16}],
        tokens=[1000],
        grid={"train.lr": [2.0, 0.5, 1e-3]},
    )
    db, out = tmp_path / "r.db", tmp_path / "runs"
    res = sweep(s, db=db, out=out, progress=False, **FAKES)
    by_lr = {o.axes["train.lr"]: o for o in res.runs}
    assert by_lr[2.0].status == "failed" and by_lr[2.0].reason == "loss is NaN at step 3"
    assert (
        by_lr[0.5].status == "failed" and "RuntimeError: fake trainer exploded" in by_lr[0.5].reason
    )
    assert by_lr[1e-3].status == "finished"
    # the raised failure was written to the run directory, so it survives a rebuild
    summary = json.loads((out / by_lr[0.5].run_id / "summary.json").read_text())
    assert summary["status"] == "failed" and "exploded" in summary["reason"]
    all_points = load_points(db, status=None)
    assert sorted(all_points["status"]) == ["failed", "failed", "finished"]
    # failed runs are skipped next time, unless retried (the old directory is kept aside)
    n = len(calls(log))
    assert sweep(s, db=db, out=out, progress=False, **FAKES).skipped == 3 and len(calls(log)) == n
    res3 = sweep(s, db=db, out=out, progress=False, retry_failed=True, **FAKES)
    assert len(calls(log)) == n + 2 and len(list((out / "_failed").iterdir())) == 2
    # the counts are outcomes: both retried runs failed again, none is counted as trained
    assert res3.trained == 0 and res3.failed == 2 and res3.skipped == 1


def test_interrupted_run_is_resumed(tmp_path, log):
    s = spec(sizes=[{"name": "a", "n_layer": 1, "d_model": 16}], tokens=[1000])
    db, out = tmp_path / "r.db", tmp_path / "runs"
    dry = sweep(s, db=db, out=out, progress=False, dry_run=True, **FAKES)
    first = dry.runs[0]
    assert first.action == "planned" and first.status is None
    # a dry run writes nothing (no store, no runs directory); its plan holds the rows
    assert not db.exists() and not out.exists()
    assert [row["run_id"] for row in dry.plan] == [first.run_id]
    # a planned point already knows its size and planned cost (from accounting)
    assert dry.plan[0]["N_total"] == config_counts(_config(s))["params"]["total"]
    assert dry.plan[0]["D"] == 1024 and first.flops > 0  # 1000 rounded to 2 steps of 512
    # a run directory without a summary: the sweep was killed while it trained
    fake_train(s_cfg := _config(s), out)
    (out / s_cfg.run_id() / "summary.json").unlink()
    res = sweep(s, db=db, out=out, progress=False, **FAKES)
    assert res.runs[0].action == "resumed" and res.runs[0].status == "finished"
    assert calls(log)[-1] == {"run_id": first.run_id, "resume": True, "pid": os.getpid()}


def _config(s):
    from scalelab.study import expand

    return expand(s)[0].config


def test_epochs_budget_uses_the_probe_for_the_eta(tmp_path, log):
    seen = []

    def probe(cfg):
        seen.append(cfg.data)
        return 1234

    s = spec(
        sizes=[
            {"name": "a", "n_layer": 1, "d_model": 16},
            {"name": "b", "n_layer": 1, "d_model": 32},
        ],
        epochs=[1, 2],
    )
    res = sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", progress=False, dry_run=True,
                **{**FAKES, "data_probe": probe})  # fmt: skip
    assert seen == []  # a dry run reads no data
    res = sweep(
        s,
        db=tmp_path / "r.db",
        out=tmp_path / "runs",
        progress=False,
        **{**FAKES, "data_probe": probe},
    )
    assert len(seen) == 1  # one data config, tokenized once for all runs
    assert all(o.status == "finished" for o in res.runs)


def test_progress_view_renders(tmp_path, log, capsys):
    s = spec(sizes=[{"name": "a", "n_layer": 1, "d_model": 16}], tokens=[1000, 2000])
    sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", progress=True, **FAKES)
    text = capsys.readouterr().out
    assert "done" in text and "loss" in text


def test_bad_arguments(tmp_path):
    s = spec(tokens=[100])
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", workers=0)
    with pytest.raises(ConfigError, match=r"unknown key model\.d_modl"):
        sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", overrides=["model.d_modl=3"], **FAKES)


@pytest.mark.parametrize(
    ("study", "override", "axis"),
    [
        ({"sizes": [{"name": "a", "n_layer": 1, "d_model": 16}]}, "model.d_model=64", "study.sizes"),
        ({"sizes": [{"name": "a", "n_layer": 1, "d_model": 16}], "tokens": [100]},
         "train.tokens=5000", "the study's data budgets"),
        ({"params": [3e3], "seeds": [0, 1]}, "train.seed=7", "study.seeds"),
        ({"params": [3e3], "grid": {"train.lr": [1e-3, 3e-3]}}, "train.lr=0.01", "study.grid"),
        ({"params": [3e3], "arch": ["transformer"]}, "model.arch=glu", "study.arch"),
    ],
)  # fmt: skip
def test_a_shared_override_of_a_per_run_key_is_refused(tmp_path, study, override, axis):
    """`--set model.d_model=64` on a ladder of explicit sizes would be replaced by each
    size's own width: an error naming the axis, not a sweep of the unchanged ladder."""
    with pytest.raises(ConfigError, match=rf"sets {override.split('=')[0]} per run \({axis}"):
        sweep(spec(**study), db=tmp_path / "r.db", out=tmp_path / "runs",
              overrides=[override], dry_run=True, **FAKES)  # fmt: skip
    # a key no axis sets is still shared by every run
    res = sweep(spec(**study), db=tmp_path / "r.db", out=tmp_path / "runs",
                overrides=["train.warmup=0.1"], dry_run=True, **FAKES)  # fmt: skip
    assert all(c["train"]["warmup"] == 0.1 for c in _configs(res))


def test_parallel_workers(tmp_path, log):
    s = spec(
        sizes=[
            {"name": "a", "n_layer": 1, "d_model": 16},
            {"name": "b", "n_layer": 1, "d_model": 32},
        ],
        tokens=[1000, 2000],
    )
    res = sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", workers=2, progress=False, **FAKES)
    assert res.trained == 4 and all(o.status == "finished" for o in res.runs)
    assert len({c["pid"] for c in calls(log)} - {os.getpid()}) >= 1  # trained in workers
    assert len(load_points(tmp_path / "r.db")) == 4


KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from study_fakes import fake_probe, fake_train
from scalelab.study import study_from_dict, sweep
s = study_from_dict({{"study": {{"name": "k", "sizes": [{{"name": "a", "n_layer": 1, "d_model": 16}}, {{"name": "b", "n_layer": 1, "d_model": 32}}], "tokens": [1000]}},
                      "model": {{"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16}}}})
sweep(s, db={db!r}, out={out!r}, progress=False, trainer=fake_train, data_probe=fake_probe)
"""


def test_killed_sweep_continues_where_it_stopped(tmp_path, log, monkeypatch):
    db, out = str(tmp_path / "r.db"), str(tmp_path / "runs")
    env = {**os.environ, "FAKE_TRAIN_SLEEP": "0.2"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT.format(here=str(HERE), db=db, out=out)],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until the first run ended and the second started
            if (
                len(calls(log)) >= 2
                and len(
                    Path(out, calls(log)[1]["run_id"], "metrics.jsonl").read_text().splitlines()
                )
                >= 2
            ):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the sweep never reached its second run")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first, second = calls(log)[0]["run_id"], calls(log)[1]["run_id"]
    assert (Path(out) / first / "summary.json").is_file()
    assert not (Path(out) / second / "summary.json").is_file()
    s = study_from_dict({"study": {"name": "k", "sizes": [{"name": "a", "n_layer": 1, "d_model": 16}, {"name": "b", "n_layer": 1, "d_model": 32}], "tokens": [1000]},
                         "model": {"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16}})  # fmt: skip
    res = sweep(s, db=db, out=out, progress=False, **FAKES)
    assert [o.action for o in res.runs] == ["skipped", "resumed"]
    assert calls(log)[-1]["run_id"] == second and calls(log)[-1]["resume"] is True
    metrics = [
        json.loads(x) for x in (Path(out) / second / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["step"] for m in metrics] == list(range(1, 11))  # continued, not restarted
    assert len(load_points(db)) == 2


def test_eta_from_the_flops_left():
    from scalelab.runner.progress import Monitor

    # (FLOPs per token, tokens) of five runs: three model sizes, two budgets
    shape = {"a": (1e5, 1e4), "b": (2e5, 1e4), "c": (1e5, 4e4), "d": (4e5, 2e4), "e": (4e5, 4e4)}
    planned = {k: fpt * tok for k, (fpt, tok) in shape.items()}
    per_token = {k: fpt for k, (fpt, _) in shape.items()}

    def seconds(k, frac=1.0):  # 2 s fixed + 10 us per token + 1 GFLOP/s
        fpt, tok = shape[k]
        return 2.0 + frac * (tok * 1e-5 + fpt * tok / 1e9)

    m = Monitor(planned, per_token, workers=1, show=False, title="t")
    assert m.eta() is None  # nothing measured yet
    m.run_ended("a", planned["a"], seconds("a"), "finished", True)
    # one run measured: its FLOP/s only
    rate = planned["a"] / seconds("a")
    assert m.eta() == pytest.approx(sum(planned[k] for k in "bcde") / rate)
    for k in "bc":
        m.run_ended(k, planned[k], seconds(k), "finished", True)
    # three runs: the fixed cost, the cost per token and the rate are recovered
    assert m.cost_model() == pytest.approx((2.0, 1e-5, 1e9), rel=1e-6)
    assert m.eta() == pytest.approx(seconds("d") + seconds("e"))
    # half of d done, its fixed cost already paid; two workers share the rest
    m.active["d"] = (Path("."), 0.0)
    m.active_done["d"] = planned["d"] / 2
    m.workers = 2
    assert m.eta() == pytest.approx((seconds("d", 0.5) - 2.0 + seconds("e")) / 2)
    # a run whose cost is unknown (an epochs budget before tokenizing) makes the ETA unknown
    assert Monitor({"x": None}, {}, workers=1, show=False, title="t").eta() is None


@pytest.mark.slow
def test_a_dying_worker_fails_its_run_only(tmp_path, log):
    s = spec(
        sizes=[{"name": "a", "n_layer": 1, "d_model": 16}],
        tokens=[1000],
        grid={"train.lr": [0.25, 1e-3, 2e-3]},
    )
    res = sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", workers=2, progress=False, **FAKES)
    by_lr = {o.axes["train.lr"]: o for o in res.runs}
    assert by_lr[0.25].status == "failed" and "worker process died" in by_lr[0.25].reason
    assert by_lr[1e-3].status == by_lr[2e-3].status == "finished"


@pytest.mark.slow
def test_a_neighbour_in_flight_when_a_worker_dies_is_not_blamed(tmp_path, log, monkeypatch):
    """The neighbours train slowly (0.3 s a step), so they are in the pool when the bad run
    kills its worker and the pool breaks under them. Each suspect then runs alone: only the
    run that dies alone is failed; the others resume and finish."""
    monkeypatch.setenv("FAKE_TRAIN_SLEEP", "0.3")
    s = spec(
        sizes=[{"name": "a", "n_layer": 1, "d_model": 16}],
        tokens=[1000],
        grid={"train.lr": [1e-3, 0.25, 2e-3]},
    )
    res = sweep(s, db=tmp_path / "r.db", out=tmp_path / "runs", workers=2, progress=False, **FAKES)
    by_lr = {o.axes["train.lr"]: o for o in res.runs}
    assert by_lr[0.25].status == "failed" and "worker process died" in by_lr[0.25].reason
    assert by_lr[1e-3].status == by_lr[2e-3].status == "finished"


def _configs(res):
    return [json.loads(row["config_json"]) for row in res.plan]
