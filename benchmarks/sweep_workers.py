"""Sweep throughput: the same small study run sequentially and in 2 worker processes,
and how well the FLOPs-based ETA predicted the time each sweep took.

    .venv/bin/python benchmarks/sweep_workers.py [--workers 2] [--tokens 51200,102400]

Each setting trains the study from scratch in its own temporary runs directory (the
token cache is shared and warmed first, so both pay the same). Prints wall seconds,
the ratio, and for each run's end the ETA shown against the time that was really left.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from scalelab.study import study_from_dict, sweep


def study(tokens: list[int], cache: str) -> dict:
    return {
        "study": {
            "name": "bench",
            "corpus": "markov:order=1,vocab=32,seed=0,tokens=400000",
            "tokens": tokens,
            "sizes": [
                {"name": "xs", "n_layer": 2, "d_model": 32, "n_head": 2},
                {"name": "s", "n_layer": 2, "d_model": 64, "n_head": 4},
                {"name": "m", "n_layer": 3, "d_model": 96, "n_head": 4},
            ],
        },
        "model": {"vocab_size": 34, "context": 64},
        "data": {"cache_dir": cache},
        "train": {
            "batch_size": 16,
            "lr": 3e-3,
            "eval_every": 50,
            "eval_batches": 4,
            "device": "cpu",
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokens", default="51200,102400")
    args = ap.parse_args()
    tokens = [int(float(t)) for t in args.tokens.split(",")]
    import torch

    settings = [  # (label, workers, threads)
        (f"workers=1, torch default threads ({torch.get_num_threads()})", 1, None),
        ("workers=1, threads=1", 1, 1),
        (f"workers={args.workers}, threads=1 each", args.workers, 1),
    ]
    print(f"cores: {os.cpu_count()}; study: 3 sizes x {len(tokens)} budgets")
    with tempfile.TemporaryDirectory() as tmp:
        spec = study_from_dict(study(tokens, str(Path(tmp) / "cache")))
        from scalelab.data import load_tokens
        from scalelab.study import expand

        cfg = expand(spec)[0].config
        load_tokens(cfg.data, cfg.model.vocab_size)  # warm the cache for every setting
        walls = {}
        for i, (label, workers, threads) in enumerate(settings):
            t0 = time.perf_counter()
            res = sweep(spec, db=Path(tmp) / f"{i}.db", out=Path(tmp) / f"runs{i}",
                        workers=workers, threads=threads, progress=False)  # fmt: skip
            walls[label] = time.perf_counter() - t0
            assert all(o.status == "finished" for o in res.runs), res.runs
            print(f"\n{label}: {len(res.runs)} runs in {walls[label]:.1f} s")
            total = res.wall_seconds
            for t, n_done, eta in res.eta_history:
                left = total - t
                if left <= 0:
                    continue
                shown = "?" if eta is None else f"{eta:6.1f}"
                err = "" if eta is None else f"  ({(eta - left) / left:+.0%})"
                print(
                    f"  after {n_done} runs, t={t:6.1f} s: ETA {shown} s, really left {left:6.1f} s{err}"
                )
        base = walls[settings[0][0]]
        print()
        for label, wall in walls.items():
            print(f"{label}: {wall:.1f} s ({base / wall:.2f}x the first)")


if __name__ == "__main__":
    main()
