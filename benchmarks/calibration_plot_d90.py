"""docs/calibration-d90.png: d90 of the copy task against N, old and fixed Fastfood on the
same runs, from the measured points in docs/calibration-d90.json (docs/calibration.md).

    python benchmarks/calibration_plot_d90.py docs/calibration-d90.json docs/calibration-d90.png

Each point is ``{"N": ..., "old": d90, "new": d90, "readme": d90}``; ``null`` is "no d in
the sweep reached the target", drawn as a triangle above the sweep's top (10,000).
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TOP = 10000
SERIES = (
    ("readme", {"color": "0.6", "marker": "s", "ls": ":"}, "README (older runs, old projection)"),
    ("old", {"color": "tab:red", "marker": "o", "ls": "--"}, "old projection (columns sqrt(D/L))"),
    ("new", {"color": "tab:blue", "marker": "o", "ls": "-"}, "fixed projection (unit columns)"),
)


def main() -> None:
    with open(sys.argv[1]) as f:
        runs = json.load(f)
    fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=150)
    for key, style, label in SERIES:
        found = [r for r in runs if r.get(key) is not None]
        ax.plot([r["N"] for r in found], [r[key] for r in found], label=label, **style)
        for r in runs:
            if key in r and r[key] is None:
                ax.scatter([r["N"]], [TOP * 1.15], marker="^", color=style["color"], zorder=3)
                ax.annotate(
                    "none <= 10,000",
                    (r["N"], TOP * 1.15),
                    textcoords="offset points",
                    xytext=(6, -3),
                    fontsize=7,
                    color=style["color"],
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (non-embedding parameters)")
    ax.set_ylabel("d90 (copy task, bisection to 25%)")
    ax.set_title("d90 against N, Fastfood before and after the fix")
    ns = [r["N"] for r in runs]
    ax.set_xticks(ns)
    ax.set_xticklabels([f"{n / 1000:.1f}k" for n in ns])
    ax.minorticks_off()
    ticks = [1000, 1500, 2000, 3000, 5000, 10000]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:,}" for t in ticks])
    ax.set_ylim(900, 14000)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(sys.argv[2])


if __name__ == "__main__":
    main()
