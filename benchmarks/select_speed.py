"""Time of ``scalelab select`` on the whole standard library; target under a minute each for
``random``, ``dedup`` and ``perplexity`` (the reference model's forward over every training
token included) on 2 cores.

Wall and CPU seconds are printed (on a shared machine the CPU time over the cores used is what
idle cores would take). Reference measured in the same run: reading every training token of the cached corpus and
hashing it (SHA-256), the floor of any method that looks at all the data. Prints seconds,
the ratio to that floor, what each method found, and exit status 1 if one misses the target.
The perplexity reference is a tiny run trained here first (its training is not timed).

    .venv/bin/python benchmarks/select_speed.py [--corpus python-stdlib] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 60.0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", default="python-stdlib")
    p.add_argument("--out", default=None, help="Where the reference run and selections go.")
    a = p.parse_args()
    from scalelab.accounting import size_for
    from scalelab.config import DataConfig, RunConfig, TrainConfig
    from scalelab.data import load_tokens
    from scalelab.select import select
    from scalelab.train import train

    out = Path(a.out or tempfile.mkdtemp(prefix="select-bench-"))
    data_cfg = DataConfig(corpus=a.corpus, tokenizer="bytes")
    data = load_tokens(data_cfg, 258)  # built once, not timed
    t = time.perf_counter()
    hashlib.sha256(bytes(memoryview(data.train.view("uint8")))).hexdigest()
    floor = time.perf_counter() - t
    cfg = RunConfig(
        model=size_for(5e3, vocab_size=258, context=128),
        data=data_cfg,
        train=TrainConfig(batch_size=16, tokens=40_000, eval_every=1000, checkpoint_every=1000),
    )
    ref = out / "reference"
    s = train(cfg, ref, resume=(ref / cfg.run_id()).exists(), progress=False)
    print(
        f"corpus {a.corpus}: {len(data.train):,} training tokens; {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}; floor (read + SHA-256) {floor:.3f} s"
    )
    print(f"reference run {s.run_id}: N = {s.params['non_embedding']:,} non-embedding")
    failed = False
    for method, kwargs in (
        ("random", {"keep": 0.3}),
        ("dedup", {}),
        ("perplexity", {"keep": 0.3, "reference": ref / s.run_id}),
    ):
        t, cpu = time.perf_counter(), time.process_time()
        sel = select(a.corpus, method, out=out / f"{method}.json", **kwargs)  # type: ignore[arg-type]
        wall = time.perf_counter() - t
        # CPU seconds of every thread of this process: on a machine shared with other jobs
        # wall time is mostly waiting; CPU time / cores is what 2 idle cores would take
        cpu = time.process_time() - cpu
        ok = wall < TARGET_S
        failed |= not ok
        found = ""
        if method == "dedup":
            found = (
                f"; {sel.extra['duplicates']} duplicates in {len(sel.extra['clusters'])} "
                f"clusters, {1 - sel.kept_fraction:.1%} of the tokens"
            )
        print(
            f"{method:10s} {wall:7.1f} s wall, {cpu:7.1f} s CPU ({wall / floor:,.1f}x the floor)  "
            f"{'ok' if ok else 'MISSES'} < {TARGET_S:.0f} s{found}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
