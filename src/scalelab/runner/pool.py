"""One crash-tolerant pool for everything that trains many runs (``sweep``, ``tune``).

:func:`run_pool` keeps a backend's slots busy with jobs, taken in the order given (the
caller orders them: :meth:`scalelab.study.graph.RunGraph.order`, longest first), and
decides what happens when one ends, raises or takes its worker down with it:

* **Needs.** A job starts only once every job it needs (``Job.needs``, keys of other jobs
  of this pool; a key that is not one was done before the pool started) has ended well.
  A job whose need failed fails too, with the reason, and never starts. A need may be
  *passed* before it ends (``passed(job, need)``: a WSD branch's parent has kept the
  branch's state, atomically and verified): the job then starts while its need still runs,
  and a need that fails after that point no longer blocks it (what it needs is on disk).
* **Suspects run alone.** When a worker dies, every job in flight may have killed it: each
  is started again (``retry``; its run resumes from its checkpoint) and runs alone until it
  ends, so a death is only ever counted against the job that was alone in the pool.
* **Two deaths alone fail.** A job whose worker dies :data:`MAX_POOL_CRASHES` times while
  it runs alone is failed with that reason; the rest of the pool goes on.

Backends, one interface (:class:`Backend`): :class:`InProcess` (this process, one job at a
time), :class:`LocalProcesses` (spawned worker processes on this machine) and
:class:`scalelab.runner.ray_backend.RayTasks` (one Ray task per job; Ray itself retries a
task whose worker died, so its deaths reach the pool as failures).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scalelab.errors import ScalelabError
from scalelab.plugin import plugin_refs, register_refs

MAX_POOL_CRASHES = 2  # a job whose worker dies this many times while alone is failed
PARENT_POLL_SECONDS = 1.0
WAIT_SECONDS = 0.5  # how often the pool wakes to let the caller poll its progress view


@dataclass(frozen=True)
class Job:
    """One thing to run: ``key`` names it (a run id, a search group); ``needs`` are the
    keys of the jobs that must have ended well before it starts; ``data`` is the caller's."""

    key: str
    data: Any = None
    needs: tuple[str, ...] = ()


# (handle, "ok" | "error" | "died", the result or the reason)
Event = tuple[Any, str, Any]


class Backend(Protocol):
    """Where jobs run. ``submit`` starts one (``arg`` is what the worker function takes) and
    returns a handle; ``wait`` returns the events of the handles that ended. A ``died``
    event means the worker died under the job; a backend whose one death takes every job
    in flight down (a process pool) reports it on each and starts afresh in ``restart``."""

    slots: int

    def submit(self, arg: Any) -> Any: ...

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Event]: ...

    def restart(self) -> None: ...

    def close(self, cancel: bool) -> None: ...


# -- worker processes ---------------------------------------------------------------------

_WORKER_DEVICE: str | None = None


def worker_device() -> str | None:
    """The device this worker process took from the pool's queue (None: the run's own)."""
    return _WORKER_DEVICE


def _exit_with_parent(parent: int) -> None:
    """Watch the pool's process from a daemon thread and end this worker when it dies.

    A worker whose parent was killed (kill -9 leaves no time to stop the pool) would finish
    its run and then wait forever for work that never comes, holding its memory. When the
    parent dies this process is re-parented, so ``getppid()`` changes: exit at once, mid-run.
    That is safe: checkpoints and summaries are written atomically, the run's lock dies with
    the process, and the next sweep resumes the run from its last checkpoint."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(
    devices: Any, threads: int, parent: int | None = None, plugins: Sequence[str] = ()
) -> None:
    """Pin the worker to ``threads`` torch threads (set before torch is imported, so its
    OpenMP/MKL pools start that size), take a device from the queue, if any, end with
    the pool's process ``parent``, and register the parent's ``plugins``
    (:func:`scalelab.plugin.plugin_refs`: ``import scalelab`` registered the built-in ones
    only)."""
    global _WORKER_DEVICE
    if parent is not None:
        _exit_with_parent(parent)
    if plugins:
        register_refs(list(plugins))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    if devices is not None:
        _WORKER_DEVICE = devices.get()


def _started() -> None:
    """A no-op job: the worker that runs it has started."""


class LocalProcesses:
    """``workers`` spawned processes (``spawn``: safe with CUDA and threads, unlike
    ``fork``) of ``threads`` torch threads each, running ``fn`` (importable by name).
    ``devices`` are dealt to the workers in turn. One dead worker breaks the whole pool
    (``BrokenProcessPool``): every job in flight then reports ``died``."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int,
        threads: int = 1,
        devices: Sequence[str] | None = None,
    ):
        self.fn, self.slots, self.threads, self.devices = fn, workers, threads, devices
        self.plugins = plugin_refs()  # the workers run this process's plug-ins
        self.ctx = multiprocessing.get_context("spawn")
        self.pool = self._new()

    def _new(self) -> cf.ProcessPoolExecutor:
        dq = None
        if self.devices:
            dq = self.ctx.Queue()
            for i in range(self.slots):
                dq.put(self.devices[i % len(self.devices)])
        pool = cf.ProcessPoolExecutor(
            self.slots,
            mp_context=self.ctx,
            initializer=init_worker,
            initargs=(dq, self.threads, os.getpid(), self.plugins),
        )
        # Start every worker now: a spawned pool starts one only when a job finds none idle,
        # and a worker's start (a new interpreter importing torch) took 40 to 70 s on the
        # loaded build machine, so a WSD branch that became ready while its parent ran
        # waited that long for its worker (docs/branches.md). Each no-op finds no idle worker
        # and starts one; they start while the first jobs run.
        for _ in range(self.slots):
            pool.submit(_started)
        return pool

    def submit(self, arg: Any) -> Any:
        return self.pool.submit(self.fn, arg)

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Event]:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        events: list[Event] = []
        for fut in done:
            try:
                events.append((fut, "ok", fut.result()))
            except cf.process.BrokenProcessPool:
                events.append((fut, "died", "its worker process died"))
        return events

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new()

    def close(self, cancel: bool) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


class InProcess:
    """One job at a time in this process (``workers = 1``): ``wait`` runs it. Nothing here
    survives a crash of this process; a later sweep resumes."""

    slots = 1

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.todo: dict[int, Any] = {}
        self.next = 0

    def submit(self, arg: Any) -> Any:
        self.next += 1
        self.todo[self.next] = arg
        return self.next

    def wait(self, handles: Sequence[Any], timeout: float) -> list[Event]:
        h = handles[0]
        return [(h, "ok", self.fn(self.todo.pop(h)))]

    def restart(self) -> None:
        pass

    def close(self, cancel: bool) -> None:
        self.todo.clear()


# -- the scheduler ----------------------------------------------------------------------------


def run_pool(
    jobs: Sequence[Job],
    backend: Backend,
    *,
    start: Callable[[Job], tuple[Any, str] | None],
    finished: Callable[[Job, Any, Any], bool],
    failed: Callable[[Job, Any, str], None],
    retry: Callable[[Job, Any], Job],
    poll: Callable[[], None] | None = None,
    restarted: Callable[[], None] | None = None,
    done_badly: Mapping[str, str] | None = None,
    passed: Callable[[Job, str], bool] | None = None,
) -> None:
    """Run ``jobs`` on ``backend``, at most ``backend.slots`` at once, in the given order
    as far as their needs allow.

    ``start(job) -> (arg, crash_key)`` prepares a job as it starts (None: it has nothing
    to run after all, and counts as ended well) (its worker's argument,
    and the key its deaths are counted against: its run id). ``finished(job, arg, result)``
    takes a result and says whether the job ended well (the jobs that need it may start).
    ``failed(job, arg, reason)`` takes a job that ends without a result (``arg`` is None
    when it never started). ``retry(job, arg)`` is called when a worker died under a job
    that may run again: it returns the job to start next, alone. ``poll`` is called each
    time the pool wakes; ``restarted`` after a dead worker's pool was replaced.
    ``done_badly`` (key -> why) are jobs outside the pool that ended badly before it
    started: the jobs that need them fail. ``passed(job, need)`` says whether ``job`` may
    start before its ``need`` has ended (asked each time the pool wakes, until it says yes;
    a yes is kept): a WSD branch once its parent has kept the state at its branch point, so
    that the branch does not wait for the rest of the parent's run (the tail where one worker
    idles, docs/branches.md).
    """
    queue = list(jobs)
    keys = {j.key for j in queue}
    ended_well: set[str] = set()
    ended_badly: dict[str, str] = dict(done_badly or {})
    in_flight: dict[Any, tuple[Job, Any, str]] = {}
    # Jobs in flight when a worker died: any of them may have killed it. Each runs alone
    # until it ends or dies again, so a death is counted only against a job that was alone.
    suspects: set[str] = set()
    crashes: dict[str, int] = {}

    def settled(job: Job, ok: bool, why: str = "") -> None:
        if ok:
            ended_well.add(job.key)
        else:
            ended_badly.setdefault(job.key, why)
        suspects.discard(job.key)

    passed_needs: set[tuple[str, str]] = set()  # (job, need): the need is passed for good

    def is_passed(job: Job, n: str) -> bool:
        if (job.key, n) not in passed_needs and passed is not None and passed(job, n):
            passed_needs.add((job.key, n))
        return (job.key, n) in passed_needs

    def blocked(job: Job) -> str | None:
        for n in job.needs:
            if n in ended_badly and not is_passed(job, n):
                return f"it needs run {n}, which did not finish ({ended_badly[n]})"
        return None

    def ready(job: Job) -> bool:
        return all(n in ended_well or n not in keys or is_passed(job, n) for n in job.needs)

    try:
        while queue or in_flight:
            while (job := next((j for j in queue if blocked(j)), None)) is not None:
                queue.remove(job)  # (its own dependents are then blocked in turn)
                why = blocked(job) or ""
                failed(job, None, why)
                settled(job, False, why)
            while queue and len(in_flight) < backend.slots:
                job = next((j for j in queue if ready(j)), None)
                if job is None:
                    break
                running = {j.key for j, _, _ in in_flight.values()}
                if in_flight and (job.key in suspects or running & suspects):
                    break
                queue.remove(job)
                started = start(job)
                if started is None:  # nothing to run after all (a search's budget is spent)
                    settled(job, True)
                    continue
                arg, crash_key = started
                in_flight[backend.submit(arg)] = (job, arg, crash_key)
            if not in_flight:
                if queue:  # nothing can start and nothing runs: needs that never end
                    left = ", ".join(j.key for j in queue)
                    raise ScalelabError(f"runs wait on runs that are not scheduled: {left}")
                break
            events = backend.wait(list(in_flight), WAIT_SECONDS)
            if poll is not None:
                poll()
            died: list[tuple[Job, Any, str]] = []
            for handle, kind, value in events:
                job, arg, crash_key = in_flight.pop(handle)
                if kind == "ok":
                    settled(job, finished(job, arg, value), "it failed")
                elif kind == "error":
                    failed(job, arg, str(value))
                    settled(job, False, str(value))
                else:
                    died.append((job, arg, crash_key))
            if not died:
                continue
            died += list(in_flight.values())  # a broken pool takes every job in it
            in_flight.clear()
            backend.restart()
            for job, arg, crash_key in died:
                if len(died) == 1:  # alone in the pool: this job killed its worker
                    crashes[crash_key] = crashes.get(crash_key, 0) + 1
                    if crashes[crash_key] >= MAX_POOL_CRASHES:
                        why = f"its worker process died {MAX_POOL_CRASHES} times (out of memory?)"
                        failed(job, arg, why)
                        settled(job, False, why)
                        continue
                again = retry(job, arg)
                suspects.add(again.key)
                queue.insert(0, again)
            if restarted is not None:
                restarted()
    except BaseException:
        backend.close(cancel=True)
        raise
    backend.close(cancel=False)


__all__ = [
    "MAX_POOL_CRASHES",
    "Backend",
    "InProcess",
    "Job",
    "LocalProcesses",
    "init_worker",
    "run_pool",
    "worker_device",
]
