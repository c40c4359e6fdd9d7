"""Idle share of the workers over a branched ladder, measured: branches that start once their
parent has kept the branch point (the pool now) against once their parent has finished.

Trains ``studies/markov-branches.toml`` (3 sizes, each one WSD parent and two branches) twice
into fresh directories with ``--workers`` worker processes: ``early`` as ``sweep`` does it,
and ``after parent`` with the pool's ``passed`` hook turned off. From the runs' start and
end stamps (``summary.json``): the sweep's span, the idle share ``1 - busy / (workers x
span)``, and how many branches started before their parent had ended. Losses are equal both
ways (the same runs); only the order in time differs.

    python benchmarks/branch_idle.py [--workers 2] [--params 3e4] [--json idle.json]
    python benchmarks/branch_idle.py --runs demo/runs    # a sweep already run (the demo's)

``--runs`` trains nothing: it reads the stamps of every finished run in a runs folder (e.g.
``make demo``'s ladder and held-out model, one pool) and prints the same measures.

``--params`` keeps only those sizes of the study (one size: one parent, two branches, the
case where a branch that waits for its parent's end leaves a worker idle longest).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from scalelab.runner import dispatch
from scalelab.study import sweep

STUDY = Path(__file__).resolve().parent.parent / "studies" / "markov-branches.toml"


def stamps(runs: Path, run_id: str) -> tuple[float, float]:
    s = json.loads((runs / run_id / "summary.json").read_text())
    a, b = dt.datetime.fromisoformat(s["started"]), dt.datetime.fromisoformat(s["finished"])
    return a.timestamp(), b.timestamp()


def measure(workers: int, early: bool, params: list[float] | None) -> dict[str, Any]:
    saved = dispatch.branch_point_passed
    if not early:  # the pool before it learnt the branch point: a branch waits for the end
        dispatch.branch_point_passed = lambda job, need: False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = Path(tmp) / "runs"
            load0 = os.getloadavg()[0]
            spec = tomllib.loads(STUDY.read_text())
            if params:
                spec["study"]["params"] = params
            res = sweep(spec, db=Path(tmp) / "r.db", out=runs, workers=workers, threads=1,
                        progress=False)  # fmt: skip
            assert all(r.status == "finished" for r in res.runs), res.runs
            spans = {r.run_id: stamps(runs, r.run_id) for r in res.runs}
            parents = {}
            for r in res.runs:
                cfg = json.loads((runs / r.run_id / "config.json").read_text())
                if cfg["train"].get("branch_of"):
                    parents[r.run_id] = cfg["train"]["branch_of"]
    finally:
        dispatch.branch_point_passed = saved
    out = shares(spans, parents, workers)
    out.update(loadavg_start=load0, loadavg_end=os.getloadavg()[0])
    return out


def shares(spans: dict[str, tuple[float, float]], parents: dict[str, str],
           workers: int) -> dict[str, Any]:  # fmt: skip
    """Span, busy seconds and idle share of runs by their (start, end) stamps."""
    start = min(a for a, _ in spans.values())
    span = max(b for _, b in spans.values()) - start
    busy = sum(b - a for a, b in spans.values())
    before = sum(spans[b][0] < spans[p][1] for b, p in parents.items())
    return {"span_seconds": span, "busy_seconds": busy, "idle_share": 1 - busy / (workers * span),
            "branches_started_before_parent_ended": before, "branches": len(parents)}  # fmt: skip


def read_runs(runs: Path, workers: int) -> dict[str, Any]:
    """The measures of every finished run in ``runs`` (a sweep that already ran)."""
    spans, parents = {}, {}
    for d in sorted(p for p in runs.iterdir() if (p / "summary.json").is_file()):
        if json.loads((d / "summary.json").read_text()).get("status") != "finished":
            continue
        spans[d.name] = stamps(runs, d.name)
        cfg = json.loads((d / "config.json").read_text())
        if cfg["train"].get("branch_of"):
            parents[d.name] = cfg["train"]["branch_of"]
    return {**shares(spans, parents, workers), "runs": len(spans)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--params", default=None, help="comma-separated sizes (default: all)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--runs", type=Path, default=None,
                    help="measure the finished runs of this folder instead of training")  # fmt: skip
    args = ap.parse_args()
    if args.runs is not None:
        m = read_runs(args.runs, args.workers)
        print(f"{args.runs}: {m['runs']} runs, span {m['span_seconds']:.0f} s, busy "
              f"{m['busy_seconds']:.0f} s, idle share {m['idle_share']:.1%} of "
              f"{args.workers} workers")  # fmt: skip
        return
    out = {}
    for label, early in (("after parent", False), ("early", True)):
        params = [float(p) for p in args.params.split(",")] if args.params else None
        m = out[label] = measure(args.workers, early, params)
        print(f"{label:12s}: span {m['span_seconds']:.0f} s, busy {m['busy_seconds']:.0f} s, "
              f"idle share {m['idle_share']:.1%}, {m['branches_started_before_parent_ended']}/"
              f"{m['branches']} branches started before their parent ended, load "
              f"{m['loadavg_start']:.1f} -> {m['loadavg_end']:.1f}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
