"""Searches on a synthetic objective (no training): samplers, grid, pruning, resume, trends."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tune_fakes import LR, optimum_lr, run

from scalelab.errors import ConfigError
from scalelab.study import load_points
from scalelab.tune import best_trials, fit_hyperparameter
from scalelab.tune.storage import optuna_storage

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    ("sampler", "trials", "tol"),
    [("random", 30, 0.35), ("tpe", 30, 0.25), ("gp", 16, 0.25), ("cmaes", 30, 0.3)],
)
def test_samplers_find_the_optimum(tmp_path: Path, sampler: str, trials: int, tol: float) -> None:
    res = run(tmp_path, {"train.lr": LR}, sampler=sampler, trials=trials)
    (g,) = res.groups
    lr = g.best_params["train.lr"]
    # the bowl's minimum is 2.0 at lr = 3e-3: within tol decades of it
    assert abs(math.log10(lr) - math.log10(optimum_lr(64))) < tol, (sampler, lr)
    assert g.best_value == pytest.approx(2.2 + math.log10(lr / 3e-3) ** 2)  # + 1/10 + batch 32
    assert g.n_trials == trials


def test_grid_enumerates_exactly_the_grid(tmp_path: Path) -> None:
    space = {
        "train.lr": {"low": 1e-4, "high": 1e-2, "log": True, "n": 3},
        "train.batch_size": [8, 16],
    }
    res = run(tmp_path, space, sampler="grid")  # trials default to the grid's size
    seen = sorted(
        (round(t.params["train.lr"], 12), t.params["train.batch_size"]) for t in res.trials
    )
    assert seen == sorted((lr, b) for lr in (1e-4, 1e-3, 1e-2) for b in (8, 16))
    assert len({t.run_id for t in res.trials}) == 6
    again = run(tmp_path, space, sampler="grid", trials=50)  # capped at the grid; all done
    assert again.trials == [] and again.groups[0].n_trials == 6


def test_trials_are_points_of_kind_trial_and_best_per_size(tmp_path: Path) -> None:
    run(tmp_path, {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True, "n": 7}},
        sizes=(32, 64, 128, 256), sampler="grid")  # fmt: skip
    pts = load_points(tmp_path / "r.db", kind="trial")
    assert len(pts) == 28 and set(pts["kind"]) == {"trial"} and "train.lr" in pts
    assert load_points(tmp_path / "r.db", kind="run").empty  # the ladder's fits see none
    best = best_trials(tmp_path / "r.db", "syn")
    assert list(best["size"]) == ["w32", "w64", "w128", "w256"]
    # the grid's nearest point to 3e-3 * 64 / width is the best of each size
    grid = [1e-4 * 10 ** (i / 2) for i in range(7)]
    for _, row in best.iterrows():
        want = min(grid, key=lambda g: abs(math.log10(g / optimum_lr(int(row["size"][1:])))))
        assert row["train.lr"] == pytest.approx(want)
        assert row["train.lr_lo"] <= row["train.lr"] <= row["train.lr_hi"]
    law = fit_hyperparameter(best, "train.lr", bootstrap=50)
    # the best grid values fall about as 1/width; N grows about as width^2 at 1 layer
    assert 0.3 < law.alpha < 0.8 and law.n_points == 4
    assert law.predict(float(best["N"].iloc[1])) == pytest.approx(best["train.lr"].iloc[1], rel=1.0)


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruners_stop_bad_trials(tmp_path: Path, pruner: str) -> None:
    res = run(tmp_path, {"train.lr": LR}, sampler="random", trials=16, pruner=pruner, startup=3)
    states = [t.state for t in res.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    pts = load_points(tmp_path / "r.db", kind="trial", status=None)
    pruned = pts[pts["reason"].fillna("").str.startswith("pruned")]
    assert len(pruned) == states.count("PRUNED")
    assert (pruned["status"] == "stopped_early").all() and (pruned["step"] < 10).all()
    best = best_trials(tmp_path / "r.db")
    assert best["pruned"].iloc[0] == states.count("PRUNED")


def test_optuna_state_lives_in_the_store_file(tmp_path: Path) -> None:
    run(tmp_path, {"train.lr": LR}, sampler="random", trials=3)
    import optuna

    (summary,) = optuna.get_all_study_summaries(optuna_storage(tmp_path / "r.db"))
    assert summary.study_name.startswith("syn/") and summary.n_trials == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.db", "runs"] or not any(
        p.suffix == ".log" for p in tmp_path.iterdir()
    )


def test_two_workers_share_the_search(tmp_path: Path) -> None:
    res = run(tmp_path, {"train.lr": LR}, sampler="tpe", trials=6, workers=2)
    assert len(res.trials) == 6 and res.groups[0].n_trials == 6


SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from tune_fakes import fake_train
from tune_fakes import study
from scalelab.tune import tune
tune(study(), tune_spec={{"sampler": "grid", "space": {{"train.lr": {{"low": 1e-4, "high": 1e-2, "log": True, "n": 5}}}}}},
     db={db!r}, out={out!r}, trainer=fake_train, progress=False)
"""


def test_killed_tune_resumes_without_repeating_a_finished_trial(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    script = SCRIPT.format(here=str(HERE), db=str(tmp_path / "r.db"), out=str(tmp_path / "runs"))
    env = {**os.environ, "FAKE_TRAIN_LOG": str(log), "FAKE_TRAIN_SLEEP": "0.05"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    # kill -9 in the middle of the third trial (2 finished, 1 with a checkpoint)
    deadline = time.time() + 60
    while time.time() < deadline:
        calls = log.read_text().splitlines() if log.is_file() else []
        if len(calls) >= 3:
            time.sleep(0.2)
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(first) == 3
    killed = first[-1]["run_id"]
    assert not (tmp_path / "runs" / killed / "summary.json").exists()
    env.pop("FAKE_TRAIN_SLEEP")
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    calls = [json.loads(x)["run_id"] for x in log.read_text().splitlines()]
    # every grid point trained once, except the killed one, which resumed once
    assert len(set(calls)) == 5
    assert calls.count(killed) == 2 and len(calls) == 6
    assert calls[3] == killed  # the interrupted trial is asked again first
    import optuna

    storage = optuna_storage(tmp_path / "r.db")
    (s,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=s.study_name, storage=storage).trials
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 5 and len({t.params["train.lr"] for t in complete}) == 5
    metrics = (tmp_path / "runs" / killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == list(range(1, 11))  # continued, not redone


def test_a_dead_worker_does_not_stop_the_search(tmp_path: Path, monkeypatch) -> None:
    """One trial's worker dies mid-run: the search goes on in a new pool, the trial is asked
    again with its values and its run resumes from its checkpoint; nothing is lost."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(log))  # spawned workers inherit these
    monkeypatch.setenv("FAKE_TRAIN_DIE_AT", f"4:{tmp_path / 'died'}")
    monkeypatch.setenv("FAKE_TRAIN_SLEEP", "0.02")
    grid = {"train.lr": {**LR, "n": 4}}
    res = run(tmp_path, grid, sampler="grid", trials=4, workers=2)
    assert (tmp_path / "died").exists()  # a worker really died
    assert res.groups[0].n_trials == 4 and [t.state for t in res.trials].count("COMPLETE") == 4
    calls = [json.loads(x)["run_id"] for x in log.read_text().splitlines()]
    assert len(set(calls)) == 4  # four grid points, each one run
    killed = (tmp_path / "died").read_text()
    assert calls.count(killed) == 2  # asked again with its values, in a new pool...
    metrics = (tmp_path / "runs" / killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == list(range(1, 11))  # ...and resumed
    import optuna

    storage = optuna_storage(tmp_path / "r.db")
    (s,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=s.study_name, storage=storage).trials
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert interrupted and all(t.state.name == "FAIL" for t in interrupted)
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4


@pytest.mark.parametrize(
    ("space", "match"),
    [
        ({"train.lr": {"low": 1e-2, "high": 1e-3}}, "low .* must be below high"),
        ({"train.lr": {"low": 0, "high": 1e-3, "log": True}}, "log range needs low > 0"),
        ({"train.lrr": {"low": 1e-4, "high": 1e-3}}, "did you mean"),
        ({"train.batch_size": {"low": 1.5, "high": 8}}, "integer key"),
        ({"train.lr": []}, "empty list"),
        ({"train.lr": {"low": 1e-4, "high": 1e-3, "lg": True}}, "unknown key"),
        ({"train.lr": {"low": -1.0, "high": 1e-3}}, "train.lr must be positive"),
    ],
)
def test_bad_spaces_are_config_errors(tmp_path: Path, space: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run(tmp_path, space, sampler="random", trials=1)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_tune_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not one of grid, random, tpe, gp, cmaes"):
        run(tmp_path, {"train.lr": LR}, sampler="bayes")
    with pytest.raises(ConfigError, match="needs its number of points"):
        run(tmp_path, {"train.lr": LR}, sampler="grid")
    with pytest.raises(ConfigError, match="pruner"):
        run(tmp_path, {"train.lr": LR}, pruner="asha")


def test_sampler_comparison_at_equal_trials(tmp_path: Path) -> None:
    from scalelab.tune.trends import sampler_comparison

    space = {"train.lr": {"low": 1e-5, "high": 1e-1, "log": True, "n": 9}}
    run(tmp_path, space, sampler="grid")
    run(tmp_path, space, sampler="tpe", trials=9, startup=3)
    cmp = sampler_comparison(tmp_path / "r.db", "syn")
    assert sorted(cmp["sampler"]) == ["grid", "tpe"] and set(cmp["size"]) == {"w64"}
    assert (cmp["trials"] == 9).all() and (cmp["to_within"] <= 9).all()
    grid = cmp[cmp["sampler"] == "grid"].iloc[0]
    assert grid["train.lr"] == pytest.approx(10**-2.5, rel=1e-9)  # the point nearest 3e-3


def test_a_branched_study_is_not_tuned(tmp_path: Path) -> None:
    from tune_fakes import study

    from scalelab.tune import tune

    s = study()
    s["study"] = {**s["study"], "tokens": [1024, 2048], "budgets": "branches"}
    s["train"] = {}
    with pytest.raises(ConfigError, match="dedicated runs"):
        tune(s, tune_spec={"space": {"train.lr": LR}}, db=tmp_path / "r.db",
             out=tmp_path / "runs", progress=False)  # fmt: skip
    assert not (tmp_path / "runs").exists()


SHARED = """
import os, pathlib, sys, time
sys.path.insert(0, {here!r})
from tune_fakes import fake_train, study
from scalelab.tune import tune
pathlib.Path({ready!r} + str(os.getpid())).touch()
while not pathlib.Path({go!r}).exists():  # both start together
    time.sleep(0.01)
tune(study(), tune_spec={{"sampler": "random", "trials": 3, "space": {{"train.lr": {{"low": 1e-4, "high": 1e-2, "log": True}}}}}},
     db={db!r}, out={out!r}, trainer=fake_train, progress=False)
"""


def test_two_tunes_on_one_store_share_the_trial_budget(tmp_path: Path) -> None:
    """Two searches started at once on one store: 3 trials in all, not 3 each (they count
    and ask under one lock, and a trial the other is running counts)."""
    script = SHARED.format(
        here=str(HERE),
        db=str(tmp_path / "r.db"),
        out=str(tmp_path / "runs"),
        ready=str(tmp_path / "ready-"),
        go=str(tmp_path / "go"),
    )
    env = {**os.environ, "FAKE_TRAIN_SLEEP": "0.1"}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env) for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("ready-*"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    import optuna

    storage = optuna_storage(tmp_path / "r.db")
    (s,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=s.study_name, storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert len({t.user_attrs["driver"] for t in trials}) == 2  # both searches took part


def test_a_trial_of_another_host_is_left_alone_until_its_timeout(monkeypatch) -> None:
    """Cross-host: a running trial of this host whose pid is gone is interrupted (asked
    again); one of another host is left alone, with the reason, until it has run past
    SCALELAB_TUNE_FOREIGN_HOURS; one whose driver runs here now is its own."""
    import socket

    import optuna
    from optuna.trial import TrialState

    from scalelab.tune.search import _recover

    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()  # a pid that no longer runs
    here = socket.gethostname()
    ostudy = optuna.create_study()
    drivers = [f"{here}:{done.pid}", f"{here}:{os.getpid()}", f"not-{here}:{os.getpid()}"]
    for d in drivers:
        ostudy.ask().set_user_attr("driver", d)
    said: list[str] = []
    monkeypatch.delenv("SCALELAB_TUNE_FOREIGN_HOURS", raising=False)
    assert _recover(ostudy, said.append) == 1  # the dead pid's trial only
    assert len(said) == 1 and f"running on not-{here} left alone" in said[0]
    running = [t.user_attrs["driver"] for t in ostudy.get_trials(states=[TrialState.RUNNING])]
    assert running == drivers[1:]
    monkeypatch.setenv("SCALELAB_TUNE_FOREIGN_HOURS", "1e-9")  # past its timeout
    said.clear()
    assert _recover(ostudy, said.append) == 1
    assert f"of not-{here} taken as interrupted" in said[0]
    running = [t.user_attrs["driver"] for t in ostudy.get_trials(states=[TrialState.RUNNING])]
    assert running == drivers[1:2]  # the live local driver's trial is never touched
