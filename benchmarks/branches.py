"""WSD branches against dedicated runs: final losses, fitted laws, tokens and time (issue 24).

For one corpus, one ladder (sizes x budgets) is trained three ways, each a study in one
store (runs of equal config are shared, so re-running continues where it stopped):

* ``cosine``: every (size, budget) from scratch, warmup + cosine (the demo's schedule);
* ``wsd``: every (size, budget) from scratch, warmup-stable-decay, ``--cooldown`` of each run;
* ``branches``: ``budgets = "branches"``: one WSD run per size to the largest budget, the
  smaller budgets branched off its stable phase, each training only its cooldown.

The WSD runs (``wsd``, ``branches`` and the WSD held-out model) share one warmup in tokens
(``train.warmup_tokens``, ``--warmup-tokens``; by default 5% of the largest budget, in whole
steps, as a branched study picks it: ``scalelab.study.branching.ladder_warmup``); the cosine
runs keep the demo's 5% of each run. docs/branches.md's tables were measured with
``--warmup-tokens 3072`` (5% of the smallest budget, the rule before).

The largest budget's WSD run and its parent differ only in ``train.save_at`` (same
trajectory), so the ``wsd`` ladder takes its largest budget from the parents. Then a
held-out model ``--holdout`` times the largest N, at the largest D, in cosine and in WSD,
and the Chinchilla form fitted on each ladder predicts it. Printed: the loss table, the
laws' parameters and held-out errors, the tokens each ladder trained, the sweeps' wall
time and the idle share of the workers (longest first), with the load average.

    python benchmarks/branches.py --corpus markov --out /tmp/br-markov --json markov.json
    python benchmarks/branches.py --corpus stdlib --out /tmp/br-stdlib --json stdlib.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from scalelab.laws import fit_law
from scalelab.study import load_points, study_from_dict, sweep
from scalelab.study.grid import expand

CORPORA = {  # spec, tokenizer, vocabulary
    "markov": ("markov:order=1,vocab=16,seed=0", "bytes", 18),
    "stdlib": ("python-stdlib", "bytes", 258),
}


def study(name: str, args: argparse.Namespace, params: list[float], tokens: list[int],
          **extra: Any) -> dict[str, Any]:  # fmt: skip
    corpus, tokenizer, vocab = CORPORA[args.corpus]
    train = {"batch_size": args.batch_size, "lr": 3e-3, "eval_every": 100, "eval_batches": 8,
             "precision": "fp32", **extra.pop("train", {})}  # fmt: skip
    return {
        "study": {
            "name": name,
            "corpus": corpus,
            "tokenizer": tokenizer,
            "params": params,
            "tokens": tokens,
            "seeds": [0],
            **extra,
        },
        "model": {"vocab_size": vocab, "context": args.context, "n_layer": 2},
        "train": train,
    }


def idle_share(runs_dir: Path, run_ids: list[str], workers: int) -> float | None:
    """1 - (busy worker-seconds) / (workers x span), from the runs' start and end stamps."""
    spans = []
    for rid in run_ids:
        s = json.loads((runs_dir / rid / "summary.json").read_text())
        if s.get("started") and s.get("finished"):
            a, b = dt.datetime.fromisoformat(s["started"]), dt.datetime.fromisoformat(s["finished"])
            spans.append((a.timestamp(), b.timestamp()))
    if not spans:
        return None
    span = max(b for _, b in spans) - min(a for a, _ in spans)
    busy = sum(b - a for a, b in spans)
    return 1.0 - busy / (workers * span) if span > 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="markov")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--params", default="1e4,2e4,4e4")
    ap.add_argument("--tokens", default="250000,500000,1000000")
    ap.add_argument("--holdout", type=float, default=4.0)
    ap.add_argument("--cooldown", type=float, default=0.2)
    ap.add_argument("--warmup-tokens", type=int, default=None,
                    help="the WSD runs' warmup (default: 5%% of the largest budget)")  # fmt: skip
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=50)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    params = [float(p) for p in args.params.split(",")]
    tokens = [int(float(t)) for t in args.tokens.split(",")]
    db, runs = args.out / "results.db", args.out / "runs"
    warm = args.warmup_tokens
    if warm is None:  # what the branched study picks itself (study.branching.ladder_warmup)
        plan = study("branches", args, params, tokens, budgets="branches", cooldown=args.cooldown)
        warm = expand(study_from_dict(plan))[0].config.train.warmup_tokens
    wsd = {"schedule": "wsd", "decay_fraction": args.cooldown, "warmup_tokens": warm}
    plans = {
        "branches": study(
            "branches",
            args,
            params,
            tokens,
            budgets="branches",
            cooldown=args.cooldown,
            train={"warmup_tokens": warm},
        ),
        "wsd": study("wsd", args, params, tokens[:-1], train=dict(wsd)),
        "cosine": study("cosine", args, params, tokens),
    }
    held_n = [args.holdout * max(params)]
    held = {
        "cosine": study("holdout-cosine", args, held_n, [max(tokens)]),
        "wsd": study("holdout-wsd", args, held_n, [max(tokens)], train=dict(wsd)),
    }
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "loadavg_start": os.getloadavg(), "ladders": {}}  # fmt: skip
    pts: dict[str, Any] = {}
    for name, plan in plans.items():
        t0 = time.perf_counter()
        res = sweep(plan, db=db, out=runs, workers=args.workers, threads=1, progress=False)
        wall = time.perf_counter() - t0
        p = load_points(db, study=name, kind="run")
        pts[name] = p[p["run_id"].isin({r.run_id for r in res.runs})]
        trained = [r for r in res.runs if r.action in ("trained", "resumed")]
        report["ladders"][name] = {
            "wall_seconds": wall,
            "trained_now": len(trained),
            "idle_share": idle_share(runs, [r.run_id for r in trained], args.workers)
            if trained
            else None,
            "run_seconds": float(pts[name]["wall_seconds"].sum()),
            "loadavg": os.getloadavg(),
        }
        print(f"{name}: {len(res.runs)} runs ({len(trained)} trained now) in {wall:.0f} s, "
              f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    # the wsd ladder's largest budget is the parents' trajectory
    b = pts["branches"]
    parents = b[b["technique"].isna() | (b["technique"] != "branch")]
    import pandas as pd

    pts["wsd"] = pd.concat([pts["wsd"], parents], ignore_index=True)
    held_pts = {}
    for name, plan in held.items():
        res = sweep(plan, db=db, out=runs, workers=1, threads=args.workers, progress=False)
        p = load_points(db, study=plan["study"]["name"], kind="run")
        held_pts[name] = p[p["run_id"].isin({r.run_id for r in res.runs})].iloc[0]
    # the loss table
    rows = []
    for name, p in pts.items():
        for _, r in p.iterrows():
            rows.append({"ladder": name, "size": r["size"], "N": int(r["N"]), "D": int(r["D"]),
                         "loss": float(r["loss"]), "seconds": float(r["wall_seconds"])})  # fmt: skip
    table = pd.DataFrame(rows).pivot_table(index=["N", "D"], columns="ladder", values="loss")
    table["branch-wsd"] = table["branches"] - table["wsd"]
    table["branch-cosine"] = table["branches"] - table["cosine"]
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    report["losses"] = [
        {"N": int(n), "D": int(d), **{k: float(v) for k, v in row.items()}}
        for (n, d), row in table.iterrows()
    ]
    # tokens each ladder trained itself (a branch: its cooldown only)
    for name, p in pts.items():
        own = 0
        for _, r in p.iterrows():
            s = json.loads((runs / r["run_id"] / "summary.json").read_text())
            own += (s.get("branch") or {}).get("trained_tokens", s["tokens"])
        report["ladders"].setdefault(name, {})["tokens_trained"] = own
    report["ladders"]["wsd"]["tokens_trained_without_parents"] = report["ladders"]["wsd"][
        "tokens_trained"
    ] - int(parents["D"].sum())
    # the laws, and the held-out predictions
    report["laws"] = {}
    for name, p in pts.items():
        law = fit_law(p, "chinchilla", bootstrap=args.bootstrap, seed=0)
        h = held_pts["cosine" if name == "cosine" else "wsd"]
        pred = float(law.predict(N=float(h["N"]), D=float(h["D"])))
        report["laws"][name] = {
            "params": {k: float(v) for k, v in law.params.items()},
            "holdout": {"N": float(h["N"]), "D": float(h["D"]), "actual": float(h["loss"]),
                        "predicted": pred, "relative_error": (pred - h["loss"]) / h["loss"]},
        }  # fmt: skip
        q = report["laws"][name]
        print(f"law on {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in q["params"].items())
              + f"; held-out {q['holdout']['actual']:.4f}, predicted {pred:.4f} "
              f"({100 * q['holdout']['relative_error']:+.2f}%)")  # fmt: skip
    for name, lad in report["ladders"].items():
        print(f"{name}: tokens trained {lad.get('tokens_trained', 0):,}, sweep wall "
              f"{lad.get('wall_seconds', 0):.0f} s, idle share {lad.get('idle_share')}")  # fmt: skip
    report["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
