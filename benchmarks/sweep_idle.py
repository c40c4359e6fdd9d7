"""The idle share of a sweep's workers over the demo ladder, by the pool's own order.

Each run takes its planned FLOPs of its own (a WSD branch: its cooldown alone) over one
worker's rate; the runs start as :func:`scalelab.runner.pool.run_pool` starts them: in the
graph's order (:meth:`scalelab.study.graph.RunGraph.order`, longest chain first), a run only
after the runs it needs, whenever a worker is free; a WSD branch as soon as its parent has
passed (kept) its branch point, as the pool starts it (``early``), or only once its parent
has finished (``after parent``, the pool before it learnt that). Printed for the demo's
ladder, dedicated and with ``budgets = "branches"``, in longest-first and in the grid's
order, and, with ``--small``, for the 3 x 3 ladder of docs/branches.md: the makespan in
units of the longest run, and the idle share ``1 - busy / (workers x makespan)`` (the tail
where one worker waits for the last run of the other). Times proportional to FLOPs are an
idealisation (small runs pay a fixed start-up cost too); no training happens here.

    python benchmarks/sweep_idle.py [--workers 2] [--small]
"""

from __future__ import annotations

import argparse
import heapq

from scalelab.apps.demo import DemoDesign, _ladder_plan, _study
from scalelab.study import study_from_dict
from scalelab.study.branching import branch_needs
from scalelab.study.cost import config_counts, planned_flops
from scalelab.study.graph import build_graph


def simulate(order: list[str], needs: dict[str, tuple[str, ...]], cost: dict[str, float],
             workers: int, point: dict[str, float] | None = None) -> tuple[float, float]:  # fmt: skip
    """(makespan, idle share) of list scheduling ``order`` on ``workers`` with needs.
    ``point[run]``: the share of its need's run after which a branch may start (None: only
    after the need has ended)."""
    point = point or {}
    queue, done, running, now, busy = list(order), set(), [], 0.0, 0.0
    started: dict[str, float] = {}
    free = workers

    def ready_at(k: str) -> float | None:
        """When ``k`` may start (None: not yet known, a need has not started)."""
        t = 0.0
        for n in needs.get(k, ()):
            if n in done:
                continue
            if k in point and n in started:
                t = max(t, started[n] + point[k] * cost[n])
            else:
                return None
        return t

    while queue or running:
        while free and queue:
            ready = next((k for k in queue if (r := ready_at(k)) is not None and r <= now), None)
            if ready is None:
                break
            queue.remove(ready)
            started[ready] = now
            heapq.heappush(running, (now + cost[ready], ready))
            busy += cost[ready]
            free -= 1
        soon = [r for k in queue if (r := ready_at(k)) is not None and r > now]
        if free and soon and min(soon) < running[0][0]:
            now = min(soon)  # a branch point passed while every run goes on
            continue
        now, k = heapq.heappop(running)
        done.add(k)
        free += 1
    return now, 1.0 - busy / (workers * now)


def ladder(spec: dict, workers: int, mode: str, held: dict | None = None) -> None:
    """Print the makespan and idle share of ``spec``'s runs; with ``held`` (the demo's
    held-out study) also the demo as it was (the held-out model trained after the ladder,
    alone) and as it is (in the ladder's pool, ``sweep_studies``)."""
    from scalelab.study.grid import expand

    runs = expand(study_from_dict(spec))
    configs = [r.config for r in runs]
    if held is not None:
        (h,) = [r.config for r in expand(study_from_dict(held))]
        h_cost = float(planned_flops(h, config_counts(h), None, own=True) or 0.0)
        ladder(spec, workers, mode)
        graph = build_graph(configs, branch_needs(configs))
        cost = {c.run_id(): float(planned_flops(c, config_counts(c), None, own=True) or 0.0)
                for c in configs}  # fmt: skip
        point = _points(configs)
        span, idle = simulate(graph.order(lambda c: cost[c.run_id()]), graph.needs, cost,
                              workers, point or None)  # fmt: skip
        busy = sum(cost.values()) + h_cost
        total = span + h_cost  # the held-out model after the ladder, on one worker
        print(f"  {mode:9s} + held-out after the ladder (the demo before): makespan "
              f"{total / h_cost:.2f}x the held-out run, idle share "
              f"{1 - busy / (workers * total):.1%}")  # fmt: skip
        configs = [*configs, h]
        runs = [*runs, h]  # counted below
        mode = f"{mode} + held-out in the pool (the demo now)"
    graph = build_graph(configs, branch_needs(configs))
    cost = {c.run_id(): float(planned_flops(c, config_counts(c), None, own=True) or 0.0)
            for c in configs}  # fmt: skip
    point = _points(configs)
    top = max(cost.values())
    for label, order in (
        ("longest first", graph.order(lambda c, cost=cost: cost[c.run_id()])),
        ("grid order", graph.order()),
    ):
        starts = [("after parent", None), ("early", point)] if point else [("", None)]
        for when, pts in starts:
            span, idle = simulate(order, graph.needs, cost, workers, pts)
            print(f"  {mode:9s} {label:13s} {when:12s}: {len(runs)} runs, "
                  f"{sum(cost.values()) / 1e12:.4g} TFLOP, makespan {span / top:.2f}x the "
                  f"longest run, idle share {idle:.1%}")  # fmt: skip


def _points(configs: list) -> dict[str, float]:
    """A branch: the share of its parent's run (in tokens) before its branch point."""
    by_id = {c.run_id(): c for c in configs}
    point = {}
    for c in configs:
        if c.train.branch_of is not None and c.train.branch_at is not None:
            parent = by_id[c.train.branch_of]
            point[c.run_id()] = c.train.branch_at / float(parent.train.tokens or 1)
    return point


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--small", action="store_true",
                    help="also the 3 x 3 Markov ladder of docs/branches.md")  # fmt: skip
    args = ap.parse_args()
    d = DemoDesign()
    print(f"demo ladder: params {list(d.params)}, tokens {list(d.tokens)}, {args.workers} workers")
    for mode in ("dedicated", "branches"):
        design = DemoDesign(budgets=mode)
        spec = _study(design, "demo", 258, params=list(design.params), tokens=list(design.tokens))
        largest, warmup = _ladder_plan(spec)
        held = _study(design, "demo-holdout", 258, warmup,
                      params=[design.holdout_factor * largest], tokens=[max(design.tokens)])  # fmt: skip
        ladder(spec, args.workers, mode, held)
    if args.small:
        print("3 x 3 Markov ladder (benchmarks/branches.py --corpus markov)")
        for mode in ("dedicated", "branches"):
            design = DemoDesign(budgets=mode, corpus="markov:order=1,vocab=16,seed=0",
                                params=(3e3, 1e4, 3e4), tokens=(65536, 131072, 262144),
                                context=64)  # fmt: skip
            spec = _study(design, "small", 18, params=list(design.params),
                          tokens=list(design.tokens))  # fmt: skip
            ladder(spec, args.workers, mode)


if __name__ == "__main__":
    main()
