"""Generation with the key-value cache against the same model without it; goal >= 3x.

Both paths sample the same tokens (greedy here, checked) from one transformer: with the cache
a step feeds one token; without it, every step recomputes the whole prefix (what any
architecture without ``forward_cached`` does). Each path runs ``--repeats`` times, interleaved,
and the medians are compared, so a burst of load on a shared machine hits both alike. Prints
the wall times, the FLOPs each path counted, the ratio and the load average before and after;
exit status 1 if the ratio misses the goal.

    .venv/bin/python benchmarks/generate_cache.py                  # 128 new tokens, batch 8
    .venv/bin/python benchmarks/generate_cache.py --new-tokens 256 --d-model 256
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from scalelab.config import ModelConfig
from scalelab.models import build_model
from scalelab.models.generate import generate

GOAL = 3.0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16, help="prompt length")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(
        n_layer=args.n_layer,
        d_model=args.d_model,
        n_head=4,
        vocab_size=args.vocab,
        context=args.prompt + args.new_tokens,
    )
    model = build_model(cfg)
    prompts = torch.randint(0, args.vocab, (args.batch, args.prompt))
    print(
        f"transformer {args.n_layer}x{args.d_model}, vocab {args.vocab}, batch {args.batch}, "
        f"prompt {args.prompt}, {args.new_tokens} new tokens, {args.threads} thread(s); "
        f"load {load()}"
    )
    times: dict[bool, list[float]] = {True: [], False: []}
    results = {}
    generate(model, prompts, 4, temperature=0)  # warm-up
    for _ in range(args.repeats):
        for cached in (True, False):
            t = time.perf_counter()
            results[cached] = generate(
                model, prompts, args.new_tokens, temperature=0, use_cache=cached
            )
            times[cached].append(time.perf_counter() - t)
    if not torch.equal(results[True].tokens, results[False].tokens):
        print("the two paths generated different tokens")
        return 1
    fast, slow = statistics.median(times[True]), statistics.median(times[False])
    for cached, label in ((True, "with cache"), (False, "recomputed")):
        t = statistics.median(times[cached])
        print(
            f"{label:>11}: {t:7.3f} s median of {args.repeats} "
            f"({args.batch * args.new_tokens / t:8.0f} tokens/s), "
            f"{results[cached].flops:.3e} FLOPs counted"
        )
    ratio = slow / fast
    print(
        f"speed-up {ratio:.2f}x (goal >= {GOAL:g}x); FLOPs ratio "
        f"{results[False].flops / results[True].flops:.2f}; load {load()}"
    )
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
