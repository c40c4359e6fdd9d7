"""Two 1-thread processes (data parallel, gloo) against one 2-thread process, same run.

    .venv/bin/python benchmarks/ddp_threads.py [--d-model 256] [--steps 40]

One model where both make sense on a 2-core machine: wide enough that a second intra-op
thread helps a single process (matmuls of 256 x 1024), small enough to train in a minute.
Each setting trains the run from scratch (fp32, the same global batch of 16 x 128 tokens)
in its own temporary directory; prints each one's training tokens per second (the
trainer's ``tokens_per_second``: first step, setup and evaluations excluded), wall
seconds (process start to summary), the ratio, and the final losses side by side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from scalelab.config import load_run_config
from scalelab.train import train
from scalelab.train.distributed import train_distributed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_run_config(None, [
            "data.corpus=markov:order=1,vocab=64,seed=0,tokens=400000", "data.tokenizer=bytes",
            f"data.cache_dir={tmp}/cache", "model.vocab_size=260", "model.n_layer=4",
            f"model.d_model={args.d_model}", "model.n_head=4", "model.context=128",
            "train.batch_size=16", f"train.tokens={16 * 128 * args.steps}",
            f"train.eval_every={args.steps}", "train.eval_batches=2", "train.precision=fp32",
        ])  # fmt: skip
        results = {}
        os.environ["SCALELAB_THREADS"] = "2"
        t0 = time.perf_counter()
        one = train(cfg, f"{tmp}/one", progress=False)
        results["1 process x 2 threads"] = (one, time.perf_counter() - t0)
        os.environ["SCALELAB_THREADS"] = "1"
        t0 = time.perf_counter()
        two = train_distributed(cfg, f"{tmp}/two", nproc=2, threads=1, progress=False)
        results["2 processes x 1 thread"] = (two, time.perf_counter() - t0)
    for name, (s, wall) in results.items():
        print(f"{name:24s} {s.tokens_per_second:9.0f} tokens/s  wall {wall:6.1f} s  "
              f"val loss {s.val_loss:.6f}  threads {s.threads}")  # fmt: skip
    a, b = (results[k][0].tokens_per_second for k in results)
    print(f"ratio (2 x 1 thread) / (1 x 2 threads): {b / a:.2f}x tokens/s")


if __name__ == "__main__":
    main()
