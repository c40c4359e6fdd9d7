"""The Ray backend on a local 2-CPU Ray instance: the same losses as the local backend,
a killed worker loses nothing, the driver alone writes the store, bad addresses fail fast."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.study import load_points, study_from_dict, sweep
from study_fakes import fake_probe, fake_train

ray = pytest.importorskip("ray")
HERE = Path(__file__).parents[1]  # tests/: where study_fakes.py lives

# four real runs: two sizes x two seeds, fp32 so that losses compare bit for bit
REAL = {
    "study": {
        "name": "ray4",
        "corpus": "markov:order=1,vocab=16,seed=0,tokens=60000",
        "tokens": [6400],
        "sizes": [
            {"name": "xs", "n_layer": 1, "d_model": 16, "n_head": 2},
            {"name": "s", "n_layer": 2, "d_model": 32, "n_head": 2},
        ],
        "seeds": [0, 1],
    },
    "model": {"vocab_size": 18, "context": 32},
    "train": {
        "batch_size": 8,
        "lr": 1e-2,
        "eval_every": 10,
        "eval_batches": 2,
        "device": "cpu",
        "precision": "fp32",
    },
}

FAKE = {
    "study": {
        "name": "rayk",
        "sizes": [{"name": f"m{i}", "n_layer": 1, "d_model": 16 + 8 * i} for i in range(4)],
        "tokens": [1000],
    },
    "model": {"n_layer": 1, "n_head": 2, "vocab_size": 64, "context": 16},
}


def _rows(db: Path) -> list[tuple[str, str, float | None]]:
    with sqlite3.connect(db) as c:
        return sorted(c.execute("SELECT run_id, status, loss FROM points"))


def test_ray_gives_the_local_backends_losses(tmp_path):
    local = sweep(
        study_from_dict(REAL), db=tmp_path / "l.db", out=tmp_path / "l", progress=False, threads=1
    )
    remote = sweep(
        study_from_dict(REAL),
        db=tmp_path / "r.db",
        out=tmp_path / "r",
        progress=False,
        threads=1,
        backend="ray",
    )
    assert [o.status for o in remote.runs] == ["finished"] * 4, remote.runs
    assert [o.run_id for o in remote.runs] == [o.run_id for o in local.runs]
    # one thread each, fp32, the same data order: the same numbers, not merely close ones
    assert [o.loss for o in remote.runs] == [o.loss for o in local.runs]
    assert _rows(tmp_path / "r.db") == _rows(tmp_path / "l.db")
    # the run directories hold the same record (the store rebuilds from them alone)
    for o in remote.runs:
        a = json.loads((tmp_path / "l" / o.run_id / "summary.json").read_text())
        b = json.loads((tmp_path / "r" / o.run_id / "summary.json").read_text())
        assert a["val_loss"] == b["val_loss"] and a["step"] == b["step"]
    assert not ray.is_initialized()  # the sweep's private instance is stopped
    # a second sweep on Ray trains nothing
    again = sweep(
        study_from_dict(REAL), db=tmp_path / "r.db", out=tmp_path / "r", progress=False,
        backend="ray",
    )  # fmt: skip
    assert again.skipped == 4 and again.trained == 0


def _calls(log: Path) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_a_killed_ray_worker_loses_nothing_and_its_run_resumes(tmp_path, monkeypatch):
    log = tmp_path / "calls.jsonl"
    # set before the sweep starts its Ray instance: its workers inherit the environment (Ray
    # workers do not see the sys.path pytest set up, so the fake trainer's folder goes here)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(log))
    monkeypatch.setenv("FAKE_TRAIN_SLEEP", "0.4")
    out, db = tmp_path / "runs", tmp_path / "r.db"
    killed: dict[str, object] = {}

    def killer() -> None:
        # the third run starts once a slot freed (two CPUs): kill its worker mid-run, after
        # its third checkpoint, when at least one other run has finished
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            calls = _calls(log)
            if len(calls) >= 3:
                victim = calls[2]
                ckpt = out / victim["run_id"] / "checkpoint.json"
                try:
                    step = json.loads(ckpt.read_text())["step"]
                except (OSError, ValueError):
                    step = 0
                if step >= 3:
                    finished = [
                        c["run_id"] for c in calls if (out / c["run_id"] / "summary.json").exists()
                    ]
                    killed.update(victim, step=step, finished=finished)
                    os.kill(victim["pid"], signal.SIGKILL)
                    return
            time.sleep(0.05)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = sweep(
        study_from_dict(FAKE),
        db=db,
        out=out,
        progress=False,
        backend="ray",
        trainer=fake_train,
        data_probe=fake_probe,
    )
    t.join(timeout=5)
    assert killed, f"the killer never found a run to kill: {_calls(log)} {res.runs}"
    assert killed["finished"], "no run had finished before the kill"
    assert [o.status for o in res.runs] == ["finished"] * 4, res.runs
    calls = _calls(log)
    victim = str(killed["run_id"])
    mine = [c for c in calls if c["run_id"] == victim]
    assert len(mine) == 2, calls  # killed once, retried once
    assert mine[1]["resume"] is True and mine[1]["pid"] != mine[0]["pid"]
    by_id = {o.run_id: o for o in res.runs}
    assert by_id[victim].action == "resumed"
    # it continued from its checkpoint: every step once, none trained twice after it
    steps = [
        json.loads(x)["step"] for x in (out / victim / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 11))
    # the runs that had finished were not trained again, and all four are in the store
    for run_id in killed["finished"]:  # type: ignore[attr-defined]
        assert sum(c["run_id"] == run_id for c in calls) == 1
    assert len(load_points(db)) == 4 and {r[1] for r in _rows(db)} == {"finished"}


def test_bad_ray_options_fail_in_one_line(tmp_path):
    study = study_from_dict(FAKE)
    t0 = time.monotonic()
    with pytest.raises(
        ConfigError, match=r"cannot reach a Ray cluster at 127\.0\.0\.1:1 .*leave out --address"
    ):
        sweep(study, db=tmp_path / "r.db", out=tmp_path / "runs", backend="ray",
              address="127.0.0.1:1", progress=False)  # fmt: skip
    assert time.monotonic() - t0 < 10  # not Ray's own minutes of retries
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match=r"cannot join a Ray cluster at auto .*running Ray"):
        sweep(study, db=tmp_path / "r.db", backend="ray", address="auto", progress=False)
    with pytest.raises(ConfigError, match="not HOST:PORT"):
        sweep(study, db=tmp_path / "r.db", backend="ray", address="nowhere", progress=False)
    with pytest.raises(ConfigError, match="add --backend ray"):
        sweep(study, db=tmp_path / "r.db", address="127.0.0.1:6379", progress=False)
    with pytest.raises(ConfigError, match="unknown backend 'slurm': local or ray"):
        sweep(study, db=tmp_path / "r.db", backend="slurm", progress=False)
    with pytest.raises(ConfigError, match="--device is for the local backend"):
        sweep(study, db=tmp_path / "r.db", backend="ray", devices=["cpu"], progress=False)


def test_an_address_that_is_not_a_ray_head_fails_in_one_line(tmp_path, monkeypatch):
    """Something listens, but it is no Ray head: the trial connection's deadline ends it."""
    import socket

    from scalelab.runner import ray_backend

    monkeypatch.setattr(ray_backend, "PROBE_TIMEOUT", 4.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port} (within 4 s|\()"):
            sweep(study_from_dict(FAKE), db=tmp_path / "r.db", backend="ray",
                  address=f"127.0.0.1:{port}", progress=False)  # fmt: skip
        assert time.monotonic() - t0 < 15


@pytest.mark.slow
def test_a_sweep_joins_an_existing_cluster_and_leaves_it_running(tmp_path):
    """`ray start --head` makes a cluster; `--address HOST:PORT` joins it, the driver
    disconnects at the end and the cluster keeps running."""
    import shutil
    import socket
    import subprocess
    import tempfile

    with socket.socket() as s:  # a free port for the head
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # the cluster's workers inherit the environment of `ray start`, not the driver's; no
    # token authentication, which a driver naming the address would have to be told about
    # before it imports Ray (see the next test)
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "RAY_AUTH_MODE": "disabled"}
    # Ray's socket paths must stay under 108 bytes: a short folder, not pytest's tmp_path
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray_cli, "start", "--head", f"--port={port}", "--num-cpus=2", "--block",
         "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        res = sweep(
            study_from_dict(FAKE),
            db=tmp_path / "r.db",
            out=tmp_path / "runs",
            progress=False,
            backend="ray",
            address=f"127.0.0.1:{port}",
            trainer=fake_train,
            data_probe=fake_probe,
        )
        assert [o.status for o in res.runs] == ["finished"] * 4, res.runs
        assert not ray.is_initialized()  # the driver disconnected...
        assert head.poll() is None  # ...and the cluster it joined is still up
        assert len(load_points(tmp_path / "r.db")) == 4
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_a_cluster_that_wants_a_token_is_told_in_one_line(monkeypatch):
    """What Ray 2.60's driver prints when a head with token authentication refuses it
    (observed with `ray start --head` and RAY_AUTH_MODE unset) becomes advice."""
    import subprocess

    from scalelab.runner import ray_backend

    said = (
        "[2026-11-29 13:03:46,307 W 21917 21917] gcs_client.cc:210: Failed to get cluster ID "
        "from GCS server: Unauthenticated: RPC error: InvalidAuthToken: Authentication token "
        "is missing or incorrect\nConnectionError: Failed to connect to Ray cluster at x:1\n"
    )
    monkeypatch.setattr(ray_backend, "_check_reachable", lambda address: None)
    monkeypatch.setattr(
        ray_backend.subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout="", stderr=said),
    )
    with pytest.raises(ConfigError, match=r"token authentication .* RAY_AUTH_MODE=token"):
        ray_backend.preflight("10.1.2.3:6379")


def _holder(lock: Path) -> int | None:
    """The process that has ``lock`` open (the trainer holds its run's lock while it trains)."""
    target = str(lock.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the worker through /proc")
def test_a_real_run_killed_on_ray_resumes_to_the_uninterrupted_loss(tmp_path):
    """The real trainer: SIGKILL of the Ray worker training a run after its second
    checkpoint; the retried task resumes there and ends with the local backend's losses."""
    study = {
        **REAL,
        "study": {**REAL["study"], "tokens": [25600], "seeds": [0]},  # 100 steps per run
        "train": {**REAL["train"], "checkpoint_every": 10, "eval_every": 20},
    }
    local = sweep(
        study_from_dict(study), db=tmp_path / "l.db", out=tmp_path / "l", progress=False, threads=1
    )
    out = tmp_path / "r"
    killed: dict[str, object] = {}

    def killer() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for ckpts in out.glob("*/checkpoint*"):
                run_dir = ckpts.parent
                names = (re.fullmatch(r"step-(\d+)", p.name) for p in ckpts.iterdir())
                steps = [int(m.group(1)) for m in names if m]  # not a half-written .tmp
                if max(steps, default=0) >= 20 and not (run_dir / "summary.json").exists():
                    pid = _holder(run_dir / ".lock")
                    if pid is not None:
                        killed.update(run_id=run_dir.name, pid=pid, step=max(steps))
                        os.kill(pid, signal.SIGKILL)
                        return
            time.sleep(0.1)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    remote = sweep(
        study_from_dict(study), db=tmp_path / "r.db", out=out, progress=False, threads=1,
        backend="ray",
    )  # fmt: skip
    t.join(timeout=5)
    assert killed, "no run was killed"
    assert [o.status for o in remote.runs] == ["finished", "finished"], remote.runs
    by_id = {o.run_id: o for o in remote.runs}
    assert by_id[str(killed["run_id"])].action == "resumed"
    steps = [
        json.loads(x)["step"]
        for x in (out / str(killed["run_id"]) / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 100  # continued, no step logged twice
    for a, b in zip(local.runs, remote.runs, strict=True):
        assert a.run_id == b.run_id and b.loss == pytest.approx(a.loss, rel=1e-6), (a, b)
    print(f"\nkilled {killed}; losses local {[o.loss for o in local.runs]}, "
          f"ray {[o.loss for o in remote.runs]}")  # fmt: skip


def test_a_branched_study_on_ray_gives_the_local_losses(tmp_path):
    """budgets = "branches" on Ray: each branch starts once its parent has kept the branch
    point (not necessarily after the parent ended), numbers as local."""
    s = json.loads(json.dumps(REAL))
    s["study"] = {**s["study"], "name": "ray-br", "tokens": [2560, 5120], "seeds": [0],
                  "budgets": "branches", "cooldown": 0.25}  # fmt: skip
    s["train"]["warmup"] = 0.0
    local = sweep(study_from_dict(s), db=tmp_path / "l.db", out=tmp_path / "l", progress=False,
                  threads=1)  # fmt: skip
    remote = sweep(study_from_dict(s), db=tmp_path / "r.db", out=tmp_path / "r", progress=False,
                   threads=1, backend="ray")  # fmt: skip
    assert [o.status for o in remote.runs] == ["finished"] * 4, remote.runs
    assert [o.loss for o in remote.runs] == [o.loss for o in local.runs]
    pts = load_points(tmp_path / "r.db")
    for _, b in pts[pts["technique"] == "branch"].iterrows():
        started = (tmp_path / "r" / b["run_id"] / "config.json").stat().st_mtime
        kept = tmp_path / "r" / b["parent_run_id"] / "branch_points"
        assert started >= max(f.stat().st_mtime for f in kept.rglob("*") if f.is_file())


def test_threads_beyond_every_node_are_refused_not_waited_on() -> None:
    """A task of more CPUs than any node has is never scheduled: refused before it waits."""
    from scalelab.errors import ConfigError
    from scalelab.runner.ray_backend import remote_runs

    class FakeRay:
        def cluster_resources(self) -> dict[str, float]:
            return {"CPU": 4.0}

        def nodes(self) -> list[dict[str, object]]:
            return [{"Alive": True, "Resources": {"CPU": 2.0}}] * 2  # 4 CPUs, 2 a node

        def remote(self, fn: object) -> object:
            raise AssertionError("no task may be made")

    with pytest.raises(ConfigError, match=r"--threads 3: .* largest node of the cluster has 2"):
        remote_runs(FakeRay(), 3, None)


def test_ray_threads_and_gpus_beyond_the_cluster_are_refused_before_any_work(tmp_path) -> None:
    """--threads beyond the largest node, and runs that ask for CUDA on a cluster without
    GPUs, are refused before the study's rows or run directories are written."""
    from scalelab.runner.ray_backend import _local_cpus, _local_gpus

    cpus = _local_cpus(ray)
    with pytest.raises(ConfigError, match=rf"--threads {cpus + 1}: .* has {cpus}; it could never"):
        sweep(study_from_dict(FAKE), db=tmp_path / "t.db", out=tmp_path / "runs",
              progress=False, backend="ray", threads=cpus + 1)  # fmt: skip
    assert not any(tmp_path.iterdir())
    if _local_gpus() == 0:
        cuda = {**FAKE, "train": {"device": "cuda"}}
        with pytest.raises(ConfigError, match=r"train.device = 'cuda', and the .* has no GPU"):
            sweep(study_from_dict(cuda), db=tmp_path / "g.db", out=tmp_path / "runs",
                  progress=False, backend="ray", threads=1)  # fmt: skip
        assert not any(tmp_path.iterdir())


def test_check_fits_names_what_the_cluster_has() -> None:
    from scalelab.runner.ray_backend import Resources, check_fits

    two = Resources(2.0, 0.0, "the cluster at h:1")
    check_fits(two, 2)
    with pytest.raises(ConfigError, match=r"--threads 3: .* the cluster at h:1 has 2"):
        check_fits(two, 3)
    with pytest.raises(ConfigError, match=r"has no GPU"):
        check_fits(two, 1, cuda=True)
    check_fits(Resources(2.0, 1.0, "x"), 1, cuda=True)
