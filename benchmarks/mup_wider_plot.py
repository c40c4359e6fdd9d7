"""The picture and table of docs/mup.md: final validation loss against width, muP at one
learning rate for each init scale found (mean over seeds, the bar their range) and SP at the
best of its learning-rate grid, from the runs of studies/mup-wider.toml,
studies/mup-wider-init.toml and studies/mup-wider-sp.toml.

    PYTHONPATH=src .venv/bin/python benchmarks/mup_wider_plot.py --runs runs --out docs/mup.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

Key = tuple[str, int, float, float]  # parametrization, width, lr, init_std


def collect(runs: Path, tokens: int) -> dict[Key, list[float]]:
    """(parametrization, width, lr, init_std) -> final val losses, over the finished runs of
    the 2-layer bytes set-up at ``tokens`` tokens."""
    out: dict[Key, list[float]] = defaultdict(list)
    for summary in sorted(runs.glob("*/summary.json")):
        s = json.loads(summary.read_text())
        c = json.loads((summary.parent / "config.json").read_text())
        m, t = c["model"], c["train"]
        same = (
            m["n_layer"] == 2
            and m["vocab_size"] == 258
            and m["context"] == 64
            and t["tokens"] == tokens
            and t["batch_size"] == 16
        )
        if same and s["status"] == "finished" and s["val_loss"] is not None:
            p = m.get("parametrization", "sp")
            key = (p, m["d_model"], round(t["lr"], 8), m["init_std"])
            out[key].append(s["val_loss"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("runs"))
    ap.add_argument("--out", type=Path, default=Path("docs/mup.png"))
    ap.add_argument("--lr", type=float, default=3.9e-3, help="muP's transferred rate")
    ap.add_argument("--tokens", type=int, default=262144)
    args = ap.parse_args()
    runs = collect(args.runs, args.tokens)
    inits = sorted({i for (p, _, lr, i) in runs if p == "mup" and abs(lr - args.lr) < 1e-9})
    mup = {
        i: {d: v for (p, d, lr, j), v in runs.items() if p == "mup" and j == i and abs(lr - args.lr) < 1e-9}
        for i in inits
    }  # fmt: skip
    sp: dict[int, tuple[float, float]] = {}  # width -> (best lr, loss), at the default init
    for (p, d, lr, i), v in runs.items():
        if p == "sp" and i == 0.02 and (d not in sp or statistics.mean(v) < sp[d][1]):
            sp[d] = (lr, statistics.mean(v))
    widths = sorted({d for series in mup.values() for d in series} | set(sp))
    head = " | ".join(f"muP init_std {i:g}: mean (seeds, range)" for i in inits)
    print(f"| width | {head} | SP best lr | SP loss |")
    print("|---" * (len(inits) + 3) + "|")
    for d in widths:
        cells = []
        for i in inits:
            v = mup[i].get(d, [])
            rng = f", {min(v):.3f} - {max(v):.3f}" if len(v) > 1 else ""
            cells.append(f"{statistics.mean(v):.3f} ({len(v)}{rng})" if v else "")
        s = f"{sp[d][0]:.3g} | {sp[d][1]:.3f}" if d in sp else " | "
        print(f"| {d} | {' | '.join(cells)} | {s} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, i in enumerate(inits):
        ws = sorted(mup[i])
        means = [statistics.mean(mup[i][d]) for d in ws]
        lo = [m - min(mup[i][d]) for d, m in zip(ws, means, strict=True)]
        hi = [max(mup[i][d]) - m for d, m in zip(ws, means, strict=True)]
        label = f"muP, lr {args.lr:g}, init_std {i:g}"
        ax.errorbar(ws, means, yerr=[lo, hi], marker="o", capsize=3, color=f"C{k}", label=label)
        for d in ws:
            ax.scatter([d] * len(mup[i][d]), mup[i][d], s=8, color=f"C{k}", alpha=0.4)
    if sp:
        wd = sorted(sp)
        ax.plot(wd, [sp[d][1] for d in wd], "s", color="C3", label="SP, best lr of its grid")
        for d in wd:
            ax.annotate(f"lr {sp[d][0]:.3g}", (d, sp[d][1]), textcoords="offset points",
                        xytext=(6, -10), fontsize=8, color="C3")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("width (d_model)")
    ax.set_ylabel("final validation loss (nats/byte)")
    ax.set_title("2 layers, 4 heads, bytes, 262k tokens; muP base width 32")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
