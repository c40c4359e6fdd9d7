"""Sweeps on Ray: each run of a study is one Ray task; the driver alone writes the store.

    scalelab sweep STUDY.toml --backend ray                  # a local Ray instance
    scalelab sweep STUDY.toml --backend ray --address auto   # the cluster `ray start` made here
    scalelab sweep STUDY.toml --backend ray --address HEAD:6379

Why Ray (Moritz et al. 2018) and not our own process pool: the field runs sweeps on Ray
clusters; it places each task where its resources are free (``num_cpus`` = the run's torch
threads, ``num_gpus`` = 1 when the cluster has GPUs, Ray then setting
``CUDA_VISIBLE_DEVICES``), restarts tasks whose worker died and spans many machines. Ray
Tune's trial runner is not used: a run of a study is already resumable on its own, and a
plain task keeps one code path with the local backend (:func:`_train_task`).

What each side does
-------------------
* **A task** (on any node) trains one run into ``RUNS/<run_id>/`` and measures its
  downstream tasks into the run directory; it writes nothing to the store and returns
  the run's record (config, summary, metrics) to the driver.
* **The driver** (the ``scalelab sweep`` process) records each returned run in the
  SQLite store: SQLite over a network file system is unsafe, and one writer needs no
  locking across machines.
* **Run directories** must live under a path every node sees at the same absolute
  path (NFS, Lustre, a cloud file system mount): a retried task resumes from the
  checkpoint there, and a later sweep skips what finished there. The driver passes the
  runs path made absolute; a task that cannot write it fails with the reason.
* **A task that dies** (its worker killed, its node lost) is retried by Ray
  (:data:`RAY_RETRIES` times); the retry finds the run directory and resumes from its
  last checkpoint, so only the steps since that checkpoint are trained twice. A run
  whose task died on every attempt is recorded as failed, and the study goes on.
* Without ``address`` a private local instance is started (``address="local"``: never a
  cluster found by chance) with this machine's CPUs and stopped when the sweep ends; if
  this process is already connected (``ray.init`` in a notebook) that connection is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError
from scalelab.plugin import plugin_refs, register_refs
from scalelab.runner.runtask import RunTask, measure_downstream, train_task

BACKENDS = ("local", "ray")  # where runs train: worker processes here, or Ray tasks
RAY_RETRIES = 2  # a task whose worker dies is run again this many times, then failed
CONNECT_TIMEOUT = 5.0  # seconds to wait for a cluster's address to accept a connection
PROBE_TIMEOUT = 30.0  # seconds for a trial ray.init to join it (Ray itself gives up at ~20)


def _need_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray backend needs Ray: pip install 'scalelab[ray]' (or --backend local)"
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in seconds, in one line, on an address nothing answers at (``ray.init`` itself
    retries an unreachable GCS for 20 s or more, measured with Ray 2.60). ``auto`` is left
    to Ray, which answers at once."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"--address {address!r} is not HOST:PORT, ray://HOST:PORT or auto "
            "(the address a head node's `ray start` prints)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({reason}): check the address (a head "
            "node's `ray start` prints it), or leave out --address for a local instance"
        ) from None


def check_backend(
    backend: str,
    address: str | None,
    devices: object = None,
    *,
    workers: int | None = None,
    threads: int | None = None,
) -> Resources | None:
    """The options of ``sweep`` and ``tune`` that say how and where runs train, checked
    before anything starts; for Ray also that it is installed, that the address answers
    (in seconds, in one line) and that a task of ``threads`` CPUs fits on one of its nodes.
    Returns what the Ray cluster offers (None for the local backend)."""
    for option, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}: {' or '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ConfigError("--address is the Ray cluster's: add --backend ray, or leave it out")
    if backend == "ray" or (workers or 1) > 1:
        plugin_refs()  # every plug-in must be importable by the workers or Ray tasks
    if backend == "ray" and devices is not None:
        raise ConfigError(
            "--device is for the local backend: on Ray a run gets one of the cluster's GPUs "
            "when it has any (Ray sets CUDA_VISIBLE_DEVICES)"
        )
    if backend == "local" and workers is not None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if cpus and workers > cpus:  # a process each: 1000 of them stall the machine
            raise ConfigError(
                f"--workers {workers} is more than the {cpus} CPUs this machine has: each "
                f"worker is a process that trains a run; give at most {cpus}"
            )
    if backend == "ray":
        found = preflight(address)
        check_fits(found, threads or 1)
        return found
    return None


@dataclasses.dataclass(frozen=True)
class Resources:
    """What a Ray cluster offers a task: the CPUs of its largest node, and its GPUs."""

    largest_node_cpus: float
    gpus: float
    where: str  # "the local instance" or "the cluster at ADDRESS"


def check_fits(found: Resources, threads: int, cuda: bool = False) -> None:
    """A task of ``threads`` CPUs (and one GPU with ``cuda``) that no node can place would
    wait forever: refused before any work, with what the cluster has."""
    most = found.largest_node_cpus
    if threads > most:
        raise ConfigError(
            f"--threads {threads}: each run is a Ray task of {threads} CPUs, and the largest "
            f"node of {found.where} has {most:g}; it could never start: give at most {most:g}"
        )
    if cuda and found.gpus < 1:
        raise ConfigError(
            f"the runs ask for train.device = 'cuda', and {found.where} has no GPU: leave "
            "train.device out (Ray gives a run a GPU when the cluster has one) or use a "
            "cluster with GPUs"
        )


def preflight(address: str | None) -> Resources:
    """What can be checked before a sweep starts: Ray is installed, a cluster at the
    address can be joined; returns what it offers (a new local instance: this machine)."""
    ray = _need_ray()
    if address is not None and address != "local":  # "local": a new instance, nothing to join
        _check_reachable(address)
        return _probe(address)
    if address is None and ray.is_initialized():  # the connection this process has
        return _resources(ray, "the connected Ray cluster")
    return Resources(float(_local_cpus(ray)), float(_local_gpus()), "the local Ray instance")


def _resources(ray: Any, where: str) -> Resources:
    alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    most = max((r.get("CPU", 0) for r in alive), default=0)
    return Resources(float(most), float(ray.cluster_resources().get("GPU", 0)), where)


def _local_cpus(ray: Any) -> int:
    """The CPUs a new local instance registers (Ray's own count: cgroup limits included)."""
    try:
        from ray._private.utils import get_num_cpus

        return int(get_num_cpus())
    except Exception:  # another Ray version: the CPUs this process may use
        return (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )


def _local_gpus() -> int:
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return 0
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0


_PROBE = """
import sys, json, logging, ray
ray.init(address=sys.argv[1], include_dashboard=False, logging_level=logging.ERROR)
alive = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
print(json.dumps({"cpu": max((r.get("CPU", 0) for r in alive), default=0),
                  "gpu": ray.cluster_resources().get("GPU", 0)}))
"""


def _probe(address: str) -> Resources:
    """Join the cluster once from a child process, quietly and with a deadline: an address
    that accepts connections but is no Ray head (a proxy, another server) makes
    ``ray.init`` retry for ~20 s while Ray's C++ client prints a warning a second, and a
    plain one-line error is what the user should see instead."""
    try:
        p = subprocess.run(
            [sys.executable, "-c", _PROBE, address],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"no Ray cluster answered at {address} within {PROBE_TIMEOUT:.0f} s: check the "
            "address (a head node's `ray start` prints it), or leave out --address"
        ) from None
    if p.returncode != 0:
        if "InvalidAuthToken" in p.stderr or "Unauthenticated" in p.stderr:
            # Ray sends a token to an address named explicitly only when told to (it would
            # hand the token to whoever listens there)
            raise ConfigError(
                f"the Ray cluster at {address} uses token authentication and refused this "
                "process: set RAY_AUTH_MODE=token, with the cluster's token in RAY_AUTH_TOKEN "
                "or ~/.ray/auth_token"
            )
        said = [_plain(x).strip() for x in p.stderr.splitlines() if "Error" in x]
        why = said[-1] if said else f"the trial connection exited with code {p.returncode}"
        raise ConfigError(
            f"cannot join a Ray cluster at {address} ({why[:300]}): check the address, or "
            "leave out --address for a local instance"
        )
    try:
        got = json.loads(p.stdout.strip().splitlines()[-1])
        return Resources(float(got["cpu"]), float(got["gpu"]), f"the cluster at {address}")
    except (ValueError, IndexError, KeyError, TypeError):
        raise ConfigError(
            f"the Ray cluster at {address} did not say what resources it has "
            f"({p.stdout.strip()[-200:]!r}): check that it is a Ray head node"
        ) from None


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[Any]:
    """Ray, connected: to ``address``, else to the connection this process already has,
    else to a private local instance (stopped on exit). Yields the ``ray`` module."""
    ray = _need_ray()
    if address is None and ray.is_initialized():
        yield ray
        return
    try:  # the address was checked by preflight (check_backend), before any work
        ray.init(
            address=address or "local",
            include_dashboard=False,
            log_to_driver=False,  # a task's own output would break the progress view
            logging_level=logging.ERROR,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = address or "a local instance"
        raise ConfigError(f"cannot connect to Ray at {where}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def capacity(ray: Any, threads: int, gpu: bool) -> int:
    """How many runs the cluster can train at once: its GPUs, or its CPUs over the
    threads of one run."""
    res = ray.cluster_resources()
    if gpu:
        return max(1, int(res.get("GPU", 0)))
    return max(1, int(res.get("CPU", 1) // threads))


def remote_runs(ray: Any, threads: int, workers: int | None) -> tuple[Any, int, str | None]:
    """A Ray task of one run (sweeps and searches alike; it calls the function it is given
    through :func:`with_plugins`): ``threads`` CPUs, or one
    GPU when the cluster has GPUs; retried when its worker dies, not when it raises (a run's
    own errors are recorded by the task). Returns (the remote function, how many to keep in
    flight: ``workers`` or the cluster's capacity, the device the task should train on)."""
    gpu = ray.cluster_resources().get("GPU", 0) > 0
    most = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
    if threads > most:  # Ray would hold the task forever: no node can ever place it
        raise ConfigError(
            f"--threads {threads}: each run is a Ray task of {threads} CPUs, and the largest "
            f"node of the cluster has {most:g}; it could never start: give at most {most:g}"
        )
    remote = ray.remote(with_plugins).options(
        num_cpus=threads,
        num_gpus=1 if gpu else 0,
        max_retries=RAY_RETRIES,
        retry_exceptions=False,
    )
    device = "cuda" if gpu else None  # the one device Ray makes visible to the task
    return remote, workers or capacity(ray, threads, gpu), device


def train_remotely(task: RunTask, threads: int, device: str | None) -> dict[str, Any]:
    """One run, inside a Ray task: train (resuming whatever a dead attempt left), measure
    downstream tasks into the run directory, return the run's record for the driver."""
    import torch

    from scalelab.results.records import FINISHED, read_run

    torch.set_num_threads(threads)
    run_dir = Path(task.out) / task.run_id
    resumed = run_dir.exists()  # a retried task finds what the dead one checkpointed
    trained = train_task(dataclasses.replace(task, resume=resumed), device)
    trained["resumed"] = resumed
    if trained["status"] == "busy":
        return trained
    rec = read_run(run_dir)
    if rec.status in FINISHED and any(task.after.values()):
        measure_downstream(run_dir, None, rec.status, task.after)  # the driver records them
    trained["record"] = rec
    return trained


def with_plugins(plugins: Sequence[str], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a Ray task, after registering the driver's ``plugins``
    (:func:`scalelab.plugin.plugin_refs`; the task's ``import scalelab`` registered the
    built-in ones only)."""
    register_refs(list(plugins))
    return fn(*args)


class RayTasks:
    """The pool's backend on Ray (:class:`scalelab.runner.pool.Backend`): each job one Ray
    task of ``fn(arg, threads, device, *extra)``, ``threads`` CPUs or one GPU (see
    :func:`remote_runs`), at most ``workers`` in flight (default: the cluster's capacity).
    Ray retries a task whose worker died; a task that raised, or died on every attempt,
    comes back as an ``error`` event with the reason."""

    def __init__(
        self,
        ray: Any,
        fn: Callable[..., Any],
        threads: int,
        workers: int | None,
        extra: Sequence[Any] = (),
    ):
        self.ray, self.threads, self.extra = ray, threads, tuple(extra)
        self.fn, self.plugins = fn, plugin_refs()  # each task runs the driver's plug-ins
        self.remote, self.slots, self.device = remote_runs(ray, threads, workers)
        self.refs: set[Any] = set()

    def submit(self, arg: Any) -> Any:
        ref = self.remote.remote(self.plugins, self.fn, arg, self.threads, self.device, *self.extra)
        self.refs.add(ref)
        return ref

    def wait(self, handles: Sequence[Any], timeout: float) -> list[tuple[Any, str, Any]]:
        done, _ = self.ray.wait(list(handles), num_returns=1, timeout=timeout)
        events: list[tuple[Any, str, Any]] = []
        for ref in done:
            self.refs.discard(ref)
            try:
                events.append((ref, "ok", self.ray.get(ref)))
            except self.ray.exceptions.RayError as e:
                events.append((ref, "error", ray_failure(e)))
        return events

    def restart(self) -> None:  # Ray restarts its own workers
        pass

    def close(self, cancel: bool) -> None:
        """A Ctrl-C cancels the tasks in flight; their runs resume on the next sweep."""
        if cancel:
            for ref in self.refs:
                self.ray.cancel(ref, force=True)
        self.refs.clear()


def ray_failure(e: BaseException) -> str:
    """Why a task's result never came: it raised (a RayTaskError carries the cause: not
    retried, it would raise again), or its worker or node died on every attempt."""
    ray = _need_ray()
    if isinstance(e, ray.exceptions.RayTaskError):
        lines = [_plain(x) for x in str(e).strip().splitlines() if x.strip()]
        cause = next((x for x in reversed(lines) if "Error" in x), lines[-1] if lines else "")
        return f"its Ray task raised: {cause.strip()[:300]}"
    first = _plain((str(e).strip().splitlines() or [type(e).__name__])[0])
    return f"its Ray task died {RAY_RETRIES + 1} times ({type(e).__name__}: {first[:200]})"


def _plain(text: str) -> str:
    """Ray's messages colour the task's name for a terminal; a reason in the store is text."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


__all__ = [
    "BACKENDS",
    "RAY_RETRIES",
    "RayTasks",
    "Resources",
    "capacity",
    "check_backend",
    "check_fits",
    "connect",
    "preflight",
    "ray_failure",
    "train_remotely",
]
