"""Searches on a local 2-CPU Ray instance: the same trials as the local backend, pruning
through the driver-side desk, one-line errors for a bad address."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tune_fakes import LR, run

from scalelab.errors import ConfigError
from scalelab.study import load_points

ray = pytest.importorskip("ray")
HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _workers_find_the_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's workers do not see the sys.path pytest set up; they inherit the environment."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def _by_params(res) -> dict[float, tuple[str, float | None]]:
    return {t.params["train.lr"]: (t.state, t.value) for t in res.trials}


def test_a_grid_search_on_ray_finds_the_local_backends_trials(tmp_path: Path) -> None:
    grid = {"train.lr": {**LR, "n": 6}}
    local = run(tmp_path / "l", grid, sampler="grid", trials=6)
    remote = run(tmp_path / "r", grid, sampler="grid", trials=6, backend="ray")
    assert len(remote.trials) == 6 and remote.groups[0].n_trials == 6
    assert _by_params(remote) == _by_params(local)  # every grid point, the same values
    assert remote.groups[0].best_params == local.groups[0].best_params
    pts = load_points(tmp_path / "r" / "r.db", kind="trial", status=None)
    assert len(pts) == 6 and set(pts["status"]) == {"finished"}
    assert not ray.is_initialized()


def test_pruning_on_ray_goes_through_the_driver_side_desk(tmp_path: Path) -> None:
    res = run(
        tmp_path, {"train.lr": LR}, sampler="random", trials=12, pruner="median", startup=3,
        backend="ray", workers=2,
    )  # fmt: skip
    states = [t.state for t in res.trials]
    assert "PRUNED" in states and "COMPLETE" in states, states
    pts = load_points(tmp_path / "r.db", kind="trial", status=None)
    pruned = pts[pts["reason"].fillna("").str.startswith("pruned by the median pruner")]
    assert len(pruned) == states.count("PRUNED") and (pruned["step"] < 10).all()
    # the desk wrote each trial's curve into Optuna's tables in the store file
    import optuna

    from scalelab.tune.storage import optuna_storage

    (name,) = [
        s.study_name for s in optuna.get_all_study_summaries(optuna_storage(tmp_path / "r.db"))
    ]
    trials = optuna.load_study(study_name=name, storage=optuna_storage(tmp_path / "r.db")).trials
    assert all(t.intermediate_values for t in trials)


def test_bad_ray_address_for_tune_is_one_error(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1"):
        run(tmp_path, {"train.lr": LR}, trials=2, backend="ray", address="127.0.0.1:1")
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "r.db").exists()


def test_a_trial_whose_ray_worker_dies_is_retried_and_resumes(tmp_path: Path, monkeypatch) -> None:
    """The first trial to reach step 4 kills its Ray worker: Ray retries the task, the trial's
    run resumes from its checkpoint, and the search ends with every trial complete."""
    import json

    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(log))  # set before Ray starts: workers inherit
    monkeypatch.setenv("FAKE_TRAIN_DIE_AT", f"4:{tmp_path / 'died'}")
    res = run(tmp_path, {"train.lr": {**LR, "n": 4}}, sampler="grid", trials=4, backend="ray")
    killed = (tmp_path / "died").read_text()  # the run whose worker died
    assert [t.state for t in res.trials].count("COMPLETE") == 4 and len(res.trials) == 4
    calls = [json.loads(x)["run_id"] for x in log.read_text().splitlines()]
    assert calls.count(killed) == 2 and len(set(calls)) == 4  # retried once, nothing else twice
    metrics = (tmp_path / "runs" / killed / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(m)["step"] for m in metrics] == list(range(1, 11))  # resumed at step 5
