"""Fastfood against a dense projection: time of one theta_0 + P z (forward and backward) and
the bytes each holds, at growing D (d = 1,000). Target: Fastfood's memory stays O(D) (under
20 bytes per parameter) while the dense P grows as 4 D d bytes; the printed ratio is
dense / Fastfood, measured in the same run. Dense is skipped where P would exceed 2 GiB.

    .venv/bin/python benchmarks/intrinsic_projections.py [--d 1000]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from scalelab.intrinsic.projections import make_projection


def seconds(kind: str, D: int, d: int, repeats: int = 3) -> tuple[float, int]:
    P = make_projection(kind, D, d, seed=0)
    z = torch.randn(d, requires_grad=True)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        (P(z) ** 2).sum().backward()
        best = min(best, time.perf_counter() - t)
    return best, P.state_bytes()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ok = True
    print(
        f"{'D':>10} {'fastfood ms':>12} {'MiB':>8} {'dense ms':>10} {'MiB':>8} {'time x':>7} {'mem x':>7}"
    )
    for D in (10_000, 100_000, 1_000_000, 10_000_000):
        ff_s, ff_b = seconds("fastfood", D, args.d)
        ok &= ff_b < 20 * D * 2  # L <= 2 D rows of 16 bytes
        if 4 * D * args.d <= 2 * 2**30:
            de_s, de_b = seconds("dense", D, args.d)
            ratio = f"{de_s / ff_s:7.2f} {de_b / ff_b:7.1f}"
            dense = f"{de_s * 1e3:10.1f} {de_b / 2**20:8.1f}"
        else:
            dense, ratio = f"{'-':>10} {4 * D * args.d / 2**20:8.0f}", f"{'-':>7} {'-':>7}"
        print(f"{D:>10,} {ff_s * 1e3:12.1f} {ff_b / 2**20:8.1f} {dense} {ratio}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
