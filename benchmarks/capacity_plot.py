"""docs/capacity.png: the capacity calibration's bits against N, beside the published rates.

python benchmarks/capacity_plot.py runs/calibration.db --out docs/capacity.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from scalelab.apps.capacity_calibration import calibration_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--study", default="capacity-calibration")
    ap.add_argument("--out", default="docs/capacity.png")
    args = ap.parse_args()
    t = calibration_table(args.db, args.study)
    t["exp"] = t["exposures"].round(-1).astype(int)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.3))
    n = np.geomspace(t["N_non_embedding"].min() * 0.8, t["N_non_embedding"].max() * 1.25, 20)
    for rate, style, text in (
        (3.6, ":", "3.6 bits/param (Morris et al.)"),
        (2.0, "--", "2 bits/param (Allen-Zhu & Li, 1000 exp.)"),
        (1.0, "-.", "1 bit/param (Allen-Zhu & Li, 100 exp.)"),
    ):
        ax.plot(n, rate * n, style, color="grey", lw=1, label=text)
    offered = t[t["precision"] == "fp32"].drop_duplicates("N_non_embedding")
    ax.plot(offered["N_non_embedding"], offered["content_bits"], "s", mfc="none", color="k",
            label="content offered (attributes)")  # fmt: skip
    colors = {1000: "C0", 100: "C1"}
    for (exp, prec), g in t.groupby(["exp", "precision"]):
        if prec == "int8":
            continue
        g = g.sort_values("N_non_embedding")
        style = "o-" if prec == "fp32" else "x--"
        ax.plot(g["N_non_embedding"], g["bits"], style, color=colors.get(exp, "C2"),
                label=f"{exp} exposures, {prec}")  # fmt: skip
        if prec == "fp32":
            bx.plot(g["N_non_embedding"], g["bits_per_param_non_embedding"], "o-",
                    color=colors.get(exp, "C2"), label=f"{exp} exp., per non-embedding param")  # fmt: skip
            bx.plot(g["N_non_embedding"], g["bits_per_param_total"], "s--",
                    color=colors.get(exp, "C2"), label=f"{exp} exp., per parameter (total)")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N",
           ylabel="attribute bits stored", title="bits stored vs N (facts, 2x over-full)")  # fmt: skip
    ax.legend(fontsize=7)
    for rate in (2.0, 3.6):
        bx.axhline(rate, color="grey", lw=1, ls="--" if rate == 2 else ":")
    bx.axhspan(2 / 1.5, 2 * 1.5, color="grey", alpha=0.12, label="factor 1.5 of 2")
    bx.set(xscale="log", xlabel="non-embedding parameters N", ylabel="bits per parameter",
           title="bits per parameter, both counts (fp32)", ylim=(0, 4))  # fmt: skip
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(args.out)


if __name__ == "__main__":
    main()
