"""Sweep throughput: the same small study run sequentially, in 2 worker processes and
(``--ray``) as 2 Ray tasks on a local Ray instance, and how well the FLOPs-based ETA
predicted the time each sweep took.

    .venv/bin/python benchmarks/sweep_workers.py [--workers 2] [--tokens 51200,102400]
        [--ray] [--plot docs/sweep-backends.png]

Each setting trains the study from scratch in its own temporary runs directory (the
token cache is shared and warmed first, so all pay the same). Prints wall seconds, the
ratio to the first setting, for each run's end the ETA shown against the time that was
really left, and whether the settings of one thread per run reached the same losses.
The Ray setting's time includes starting and stopping its local instance.
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
    ap.add_argument("--ray", action="store_true", help="Also run the study on a local Ray.")
    ap.add_argument("--plot", type=Path, help="Draw the wall times into this PNG.")
    args = ap.parse_args()
    tokens = [int(float(t)) for t in args.tokens.split(",")]
    import torch

    settings = [  # (label, workers, threads, backend)
        (f"workers=1, torch default threads ({torch.get_num_threads()})", 1, None, "local"),
        ("workers=1, threads=1", 1, 1, "local"),
        (f"workers={args.workers}, threads=1 each", args.workers, 1, "local"),
    ]
    if args.ray:
        settings.append((f"ray, {args.workers} tasks of 1 thread", args.workers, 1, "ray"))
    print(f"cores: {os.cpu_count()}; study: 3 sizes x {len(tokens)} budgets")
    with tempfile.TemporaryDirectory() as tmp:
        spec = study_from_dict(study(tokens, str(Path(tmp) / "cache")))
        from scalelab.data import load_tokens
        from scalelab.study import expand

        cfg = expand(spec)[0].config
        load_tokens(cfg.data, cfg.model.vocab_size)  # warm the cache for every setting
        walls = {}
        losses = {}
        for i, (label, workers, threads, backend) in enumerate(settings):
            t0 = time.perf_counter()
            res = sweep(spec, db=Path(tmp) / f"{i}.db", out=Path(tmp) / f"runs{i}",
                        workers=workers, threads=threads, backend=backend,
                        progress=False)  # fmt: skip
            walls[label] = time.perf_counter() - t0
            assert all(o.status == "finished" for o in res.runs), res.runs
            if threads == 1:
                losses[label] = [o.loss for o in res.runs]
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
        first, *rest = losses
        for label in rest:
            diff = max(abs(a - b) for a, b in zip(losses[first], losses[label], strict=True))
            print(f"losses of {label!r} against {first!r}: max |difference| {diff:.3g}")
        if args.plot:
            _plot(walls, args.plot)


def _plot(walls: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.6 * len(walls) + 1.2))
    labels = list(walls)[::-1]
    ax.barh(labels, [walls[k] for k in labels], color="#4c72b0")
    for y, k in enumerate(labels):
        ax.text(walls[k], y, f" {walls[k]:.0f} s", va="center")
    ax.set_xlabel("wall seconds for the whole study (lower is better)")
    ax.set_title(f"one study, {os.cpu_count()} cores: local processes and Ray tasks")
    ax.set_xlim(0, max(walls.values()) * 1.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
