"""The one pool's scheduling, on a fake backend (no processes): needs, suspects, deaths."""

from __future__ import annotations

from typing import Any

import pytest

from scalelab.errors import ScalelabError
from scalelab.runner.pool import MAX_POOL_CRASHES, Job, run_pool


class FakeBackend:
    """``slots`` jobs at once; the oldest job in flight ends at each wait. A job whose key
    is in ``kills`` takes its worker down (every job in flight dies with it)."""

    def __init__(self, slots: int, kills: set[str] = frozenset()):
        self.slots, self.kills = slots, set(kills)
        self.flight: dict[int, str] = {}
        self.next = 0
        self.started: list[str] = []
        self.concurrent: list[set[str]] = []  # the jobs in flight at each wait
        self.restarts = 0

    def submit(self, arg: Any) -> int:
        self.next += 1
        self.flight[self.next] = arg
        self.started.append(arg)
        return self.next

    def wait(self, handles, timeout):
        self.concurrent.append(set(self.flight.values()))
        h = min(handles)
        key = self.flight.pop(h)
        if key in self.kills:
            return [(h, "died", "killed")]
        return [(h, "ok", key)]

    def restart(self):
        self.restarts += 1
        self.flight.clear()

    def close(self, cancel):
        pass


def run(jobs, backend, done_badly=None):
    ended: list[str] = []
    failures: dict[str, str] = {}
    retries: list[str] = []
    run_pool(
        jobs,
        backend,
        start=lambda j: (j.key, j.key),
        finished=lambda j, arg, res: ended.append(res) or not res.startswith("bad"),
        failed=lambda j, arg, why: failures.__setitem__(j.key, why),
        retry=lambda j, arg: retries.append(j.key) or j,
        done_badly=done_badly,
    )
    return ended, failures, retries


def test_a_job_starts_only_after_its_needs():
    b = FakeBackend(slots=2)
    jobs = [Job("child", needs=("parent",)), Job("parent"), Job("other")]
    ended, failures, _ = run(jobs, b)
    assert b.started.index("parent") < b.started.index("child")
    assert ended.index("parent") < b.started.index("child") + 1
    assert not any("child" in c and "parent" in c for c in b.concurrent)
    assert sorted(ended) == ["child", "other", "parent"] and not failures


def test_a_job_whose_need_failed_fails_without_starting():
    b = FakeBackend(slots=2)
    jobs = [
        Job("bad-parent"),
        Job("child", needs=("bad-parent",)),
        Job("grandchild", needs=("child",)),
    ]
    _, failures, _ = run(jobs, b)
    assert "child" not in b.started and "grandchild" not in b.started
    assert "bad-parent" in failures["child"] and "child" in failures["grandchild"]
    # a need that failed before the pool started counts too
    b2 = FakeBackend(slots=1)
    _, failures2, _ = run([Job("x", needs=("old",))], b2, done_badly={"old": "diverged"})
    assert b2.started == [] and "diverged" in failures2["x"]


def test_suspects_run_alone_and_two_deaths_alone_fail():
    b = FakeBackend(slots=2, kills={"killer"})
    ended, failures, retries = run([Job("killer"), Job("innocent"), Job("late")], b)
    # the first death takes both jobs in flight: both are suspects, retried
    assert set(retries[:2]) == {"killer", "innocent"}
    # after that death a suspect never shares the pool
    assert b.concurrent[0] == {"killer", "innocent"}
    for c in b.concurrent[1:]:
        assert len(c) == 1 or not (c & {"killer", "innocent"})
    assert failures == {
        "killer": f"its worker process died {MAX_POOL_CRASHES} times (out of memory?)"
    }
    assert sorted(ended) == ["innocent", "late"]
    # deaths counted only while alone: killer died with a neighbour once, then alone twice
    assert b.started.count("killer") == 1 + MAX_POOL_CRASHES
    assert b.restarts == 1 + MAX_POOL_CRASHES


def test_needs_outside_the_pool_that_never_end_are_reported():
    b = FakeBackend(slots=1)
    jobs = [Job("a", needs=("b",)), Job("b", needs=("a",))]
    with pytest.raises(ScalelabError, match="not scheduled"):
        run(jobs, b)


class TickBackend:
    """Each job takes ``ticks[key]`` waits; one wait is one tick. A job whose key starts
    with ``bad`` ends with a result the caller counts as a failure."""

    def __init__(self, slots: int, ticks: dict[str, int]):
        self.slots, self.ticks = slots, ticks
        self.flight: dict[int, tuple[str, int]] = {}  # handle -> (key, tick it ends)
        self.now, self.next = 0, 0
        self.log: list[tuple[int, str, str]] = []  # (tick, "start" | "end", key)

    def submit(self, arg: Any) -> int:
        self.next += 1
        self.flight[self.next] = (arg, self.now + self.ticks[arg])
        self.log.append((self.now, "start", arg))
        return self.next

    def wait(self, handles, timeout):
        self.now += 1
        out = []
        for h in list(handles):
            key, end = self.flight[h]
            if end <= self.now:
                del self.flight[h]
                self.log.append((self.now, "end", key))
                out.append((h, "ok", key))
        return out

    def restart(self):
        self.flight.clear()

    def close(self, cancel):
        pass

    def tick(self, what: str, key: str) -> int:
        return next(t for t, w, k in self.log if w == what and k == key)


def run_passing(jobs, backend, passed):
    ended, failures = [], {}
    run_pool(
        jobs,
        backend,
        start=lambda j: (j.key, j.key),
        finished=lambda j, arg, res: ended.append(res) or not res.startswith("bad"),
        failed=lambda j, arg, why: failures.__setitem__(j.key, why),
        retry=lambda j, arg: j,
        passed=passed,
    )
    return ended, failures


def test_a_job_starts_once_its_need_is_passed_not_ended():
    # the parent keeps the branch's point after 2 of its 6 ticks (a WSD branch point)
    b = TickBackend(2, {"parent": 6, "filler": 3, "branch": 2})
    asked: list[tuple[str, str]] = []

    def passed(job: Job, need: str) -> bool:
        asked.append((job.key, need))
        return need == "parent" and b.now >= b.tick("start", "parent") + 2

    jobs = [Job("parent"), Job("filler"), Job("branch", needs=("parent",))]
    ended, failures = run_passing(jobs, b, passed)
    assert not failures and sorted(ended) == ["branch", "filler", "parent"]
    # it started when the filler's worker freed (tick 3), before the parent ended (tick 6)
    assert b.tick("start", "branch") == 3 < b.tick("end", "parent")
    assert ("branch", "parent") in asked
    # without the hook it waits for the parent's end
    b2 = TickBackend(2, {"parent": 6, "filler": 3, "branch": 2})
    run_passing(jobs, b2, None)
    assert b2.tick("start", "branch") == b2.tick("end", "parent") == 6


def test_a_need_that_fails_after_its_point_no_longer_blocks():
    # the parent passes the point at once but fails at its end, before a worker is free
    jobs = [Job("bad-parent"), Job("filler"), Job("branch", needs=("bad-parent",))]
    b = TickBackend(2, {"bad-parent": 4, "filler": 6, "branch": 1})
    ended, failures = run_passing(jobs, b, lambda job, need: b.now >= 1)
    assert "branch" in ended and "branch" not in failures
    assert b.tick("start", "branch") == 4
    # a need that failed before it passed the point still blocks
    b2 = TickBackend(2, {"bad-parent": 4, "filler": 6, "branch": 1})
    _, failures2 = run_passing(jobs, b2, lambda job, need: False)
    assert "bad-parent" in failures2["branch"]


def test_local_processes_start_every_worker_at_once():
    import multiprocessing

    from scalelab.runner.pool import LocalProcesses

    before = set(multiprocessing.active_children())
    local = LocalProcesses(abs, workers=2)
    try:
        # started now, not when a second job first finds no idle worker
        assert len(set(multiprocessing.active_children()) - before) == 2
        (fut,) = [local.submit(-3)]
        assert local.wait([fut], timeout=120) == [(fut, "ok", 3)]
    finally:
        local.close(cancel=False)
