"""The demo's picture for the docs (docs/demo.png), from a finished demo folder.

Left: the ladder's validation loss against N, one colour per token budget, with the fitted
law along each budget. Right: the ladder at the held-out model's D, the law at that D, the
prediction with its interval and the measured held-out loss. Reads ``DEMO/summary.json`` and
``DEMO/results.db``; trains nothing.

    python benchmarks/demo_figure.py demo docs/demo.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from scalelab.laws.law import Law
from scalelab.reporting import plots
from scalelab.results.points import load_points


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("demo", type=Path, help="a folder `scalelab demo` wrote")
    ap.add_argument("png", type=Path)
    args = ap.parse_args()
    s = json.loads((args.demo / "summary.json").read_text())
    law, h = Law.from_dict(s["law"]), s["holdout"]
    pts = load_points(args.demo / "results.db", study="demo", kind="run", one_per_run=True)
    grid = np.geomspace(pts["N"].min() / 1.5, h["N"] * 1.5, 100)
    fig, (left, right) = plots.figure(2)
    budgets = sorted(pts["D"].unique())
    for d, colour in zip(budgets, plots.colors(budgets, "tab10").values(), strict=True):
        row = pts[np.isclose(pts["D"], d)]
        left.plot(row["N"], row["loss"], "o", color=colour, label=f"tokens={plots.si(float(d))}")
        left.plot(grid, law.predict(N=grid, D=np.full_like(grid, d)), "-", color=colour, lw=1)
    left.set_title(f"Loss against N per data budget ({s['design']['budgets']})")
    plots.log_axes(left, values=[*pts["loss"], h["actual_loss"]])
    same = pts[np.isclose(pts["D"], h["D"], rtol=0.02)]
    right.plot(pts["N"], pts["loss"], "o", color="lightgrey", label="ladder (all D)")
    right.plot(
        same["N"], same["loss"], "o", color="tab:blue", label=f"ladder at D={plots.si(h['D'])}"
    )
    right.plot(grid, law.predict(N=grid, D=np.full_like(grid, h["D"])), "-", color="tab:blue",
               lw=1, label="fitted law at that D")  # fmt: skip
    lo, hi = h["predicted_interval"]
    p = h["predicted_loss"]
    right.errorbar([h["N"]], [p], yerr=[[p - lo], [hi - p]], fmt="s", color="crimson",
                   capsize=4, label="predicted (95% interval)")  # fmt: skip
    right.plot([h["N"]], [h["actual_loss"]], "*", ms=14, color="black",
               label=f"measured ({100 * h['relative_error']:+.2f}%)")  # fmt: skip
    right.set_title(f"Held-out model, {h['n_ratio']:.1f}x the largest fitted N")
    plots.log_axes(right, values=[*pts["loss"], h["actual_loss"], lo, hi])
    for ax in (left, right):
        ax.set_xlabel("N (non-embedding parameters)")
        ax.set_ylabel("validation loss (nats/token)")
        ax.legend(fontsize=7)
    print(plots.save(fig, args.png))


if __name__ == "__main__":
    main()
