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
    ap.add_argument("--first", type=int, default=1, help="the worker count to run first")
    args = ap.parse_args()
    tokens = [int(float(t)) for t in args.tokens.split(",")]
    import torch

    print(
        f"cores: {os.cpu_count()}, torch threads in-process (workers=1): {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        spec = study_from_dict(study(tokens, str(Path(tmp) / "cache")))
        from scalelab.data import load_tokens

        runs0 = __import__("scalelab.study", fromlist=["expand"]).expand(spec)
        cfg = runs0[0].config
        load_tokens(cfg.data, cfg.model.vocab_size)  # warm the cache for both settings
        walls = {}
        order = (1, args.workers) if args.first == 1 else (args.workers, 1)
        for workers in order:
            t0 = time.perf_counter()
            res = sweep(spec, db=Path(tmp) / f"w{workers}.db", out=Path(tmp) / f"runs{workers}",
                        workers=workers, progress=False)  # fmt: skip
            walls[workers] = time.perf_counter() - t0
            assert all(o.status == "finished" for o in res.runs), res.runs
            print(f"\nworkers={workers}: {len(res.runs)} runs in {walls[workers]:.1f} s")
            total = res.wall_seconds
            for t, n_done, eta in res.eta_history:
                left = total - t
                shown = "?" if eta is None else f"{eta:6.1f}"
                err = "" if eta is None or left <= 0 else f"  ({(eta - left) / left:+.0%})"
                print(
                    f"  after {n_done} runs, t={t:6.1f} s: ETA {shown} s, really left {left:6.1f} s{err}"
                )
        print(f"\nsequential / {args.workers} workers: {walls[1] / walls[args.workers]:.2f}x")


if __name__ == "__main__":
    main()
