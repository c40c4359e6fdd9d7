"""Column norms of the Fastfood projection as the subspace trainer builds it
(``make_projection("fastfood", D, d)``): mean, min and max over d columns x 3 seeds, beside
sqrt(D / L), the norm a column had before the fix (docs/calibration.md, section 2).

    python benchmarks/calibration_fastfood_norms.py [--d 64] [D ...]
"""

from __future__ import annotations

import argparse

import torch

from scalelab.intrinsic.projections import make_projection

DEFAULT_D = (2049, 4095, 4096, 17420, 29812, 54004, 97160, 184880)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("D", nargs="*", type=int, default=list(DEFAULT_D))
    ap.add_argument("--d", type=int, default=64)
    args = ap.parse_args()
    for D in args.D:
        norms = []
        for seed in range(3):
            P = make_projection("fastfood", D, args.d, seed=seed)
            eye = torch.eye(args.d)
            cols = torch.stack([P(eye[i]) for i in range(args.d)], 1)
            norms.append(cols.norm(dim=0))
        n = torch.cat(norms)
        L = 1 << (D - 1).bit_length()
        print(
            f"D={D:>9,} L={L:>9,} mean {n.mean():.3f} min {n.min():.3f} max {n.max():.3f} "
            f"sqrt(D/L) {(D / L) ** 0.5:.3f}"
        )


if __name__ == "__main__":
    main()
