"""Before and after issue 21 on the same runs: the facts capacity floored per person (the old
measure) and averaged over the people before the floor (Allen-Zhu & Li's form, today's).

Both are read off one pass of the run's model over its training biographies, so the only
difference between the two columns is the form. Runs: every finished facts run of a store.

    python benchmarks/capacity_forms.py runs/calibration.db [--study NAME] [--runs runs] [--out forms.csv]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scalelab.data.corpora import open_corpus
from scalelab.data.facts import N_WORDS, FactsSource, attribute_choices
from scalelab.memorization.capacity import facts_bits
from scalelab.memorization.model_io import doc_logprobs
from scalelab.results.points import load_points
from scalelab.runs import open_run


def per_person_floor(lay, logp2: np.ndarray) -> tuple[float, float]:
    """The measure before issue 21: sum over people and attributes of max(0, log2 c - CE)."""
    bits = 0.0
    for a, name in enumerate(lay.attributes):
        pos = lay.attr[:, a, :]
        valid = pos >= 0
        ce = -np.where(valid, logp2[np.where(valid, pos, 0)], 0.0).sum(axis=1)
        bits += float(np.maximum(0.0, math.log2(attribute_choices(name)) - ce).sum())
    name_ce = -logp2[lay.name].sum(axis=1)
    names = float(np.maximum(0.0, math.log2(N_WORDS**2) - name_ce).sum())
    return bits, names


def compare(run_dir: Path) -> dict:
    run = open_run(run_dir)
    cfg, summary = run.cfg, run.summary
    src = open_corpus(cfg.data.corpus)
    assert isinstance(src, FactsSource)
    tokens, lay = src.layout("train", cfg.data.val_fraction)
    model = run.load_model(fork_rng=False)
    eos = src.tokenizer().eos_id
    lp = doc_logprobs(model, tokens, lay.start, lay.length - 1, bos=eos, context=cfg.model.context)
    new = facts_bits(lay, lp)
    old_bits, old_names = per_person_floor(lay, lp)
    n_ne = summary["params"]["non_embedding"]
    return {
        "run_id": summary["run_id"],
        "N_non_embedding": n_ne,
        "people": lay.people,
        "exposures": round(float(summary.get("epochs") or 0.0)),
        "lr": cfg.train.lr,
        "batch_size": cfg.train.batch_size,
        "content_bits": new.content_bits,
        "bits_before": old_bits,
        "bits_after": new.bits,
        "bits_per_param_before": old_bits / n_ne,
        "bits_per_param_after": new.bits / n_ne,
        "name_bits_before": old_names,
        "name_bits_after": new.name_bits,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--study", default=None)
    ap.add_argument("--runs", default=None, help="run directories (default: beside the db)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    pts = load_points(args.db, study=args.study)
    pts = pts[(pts["status"] == "finished") & pts["corpus"].str.startswith("facts:", na=False)]
    pts = pts[pts["kind"].isin(["run", "trial"])]
    rows = []
    for run_id in pts["run_id"].unique():
        run_dir = Path(args.runs or Path(args.db).parent) / run_id
        rows.append(compare(run_dir))
    table = pd.DataFrame(rows).sort_values(["N_non_embedding", "exposures", "lr", "batch_size"])
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
