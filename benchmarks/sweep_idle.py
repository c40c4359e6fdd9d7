"""The idle share of a sweep's workers over the demo ladder, by the pool's own order.

Each run takes its planned FLOPs of its own (a WSD branch: its cooldown alone) over one
worker's rate; the runs start as :func:`scalelab.runner.pool.run_pool` starts them: in the
graph's order (:meth:`scalelab.study.graph.RunGraph.order`, longest chain first), a run only
after the runs it needs, whenever a worker is free. Printed for the demo's ladder, dedicated
and with ``budgets = "branches"``, in longest-first and in the grid's order: the makespan in
units of the longest run, and the idle share ``1 - busy / (workers x makespan)`` (the tail
where one worker waits for the last run of the other). Times proportional to FLOPs are an
idealisation (small runs pay a fixed start-up cost too); no training happens here.

    python benchmarks/sweep_idle.py [--workers 2]
"""

from __future__ import annotations

import argparse
import heapq

from scalelab.apps.demo import DemoDesign, _study
from scalelab.study import study_from_dict
from scalelab.study.branching import branch_needs
from scalelab.study.cost import config_counts, planned_flops
from scalelab.study.graph import build_graph


def simulate(order: list[str], needs: dict[str, tuple[str, ...]], cost: dict[str, float],
             workers: int) -> tuple[float, float]:  # fmt: skip
    """(makespan, idle share) of list scheduling ``order`` on ``workers`` with needs."""
    queue, done, running, now, busy = list(order), set(), [], 0.0, 0.0
    free = workers
    while queue or running:
        while free and queue:
            ready = next((k for k in queue if all(n in done for n in needs.get(k, ()))), None)
            if ready is None:
                break
            queue.remove(ready)
            heapq.heappush(running, (now + cost[ready], ready))
            busy += cost[ready]
            free -= 1
        now, k = heapq.heappop(running)
        done.add(k)
        free += 1
    return now, 1.0 - busy / (workers * now)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    d = DemoDesign()
    print(f"demo ladder: params {list(d.params)}, tokens {list(d.tokens)}, {args.workers} workers")
    for mode in ("dedicated", "branches"):
        design = DemoDesign(budgets=mode)
        spec = _study(design, "demo", 258, params=list(design.params), tokens=list(design.tokens))
        from scalelab.study.grid import expand

        runs = expand(study_from_dict(spec))
        configs = [r.config for r in runs]
        graph = build_graph(configs, branch_needs(configs))
        cost = {c.run_id(): float(planned_flops(c, config_counts(c), None, own=True) or 0.0)
                for c in configs}  # fmt: skip
        top = max(cost.values())
        for label, order in (
            ("longest first", graph.order(lambda c, cost=cost: cost[c.run_id()])),
            ("grid order", graph.order()),
        ):
            span, idle = simulate(order, graph.needs, cost, args.workers)
            print(f"  {mode:9s} {label:13s}: {len(runs)} runs, {sum(cost.values()) / 1e12:.2f} "
                  f"TFLOP, makespan {span / top:.2f}x the longest run, idle share {idle:.1%}")  # fmt: skip


if __name__ == "__main__":
    main()
