"""The README's recorded "Small vs large" runs (studies/distillation.toml: 8 plain runs and
16 students, losses as the README's table gives them) put into a fresh store with their
exact N and the trainer's exact FLOP counts, then read by ``technique_table``: the
equal-total-compute baseline and verdict of every student (docs/calibration.md, section 1).
Run it with the old tree on PYTHONPATH for the "before" column.

    python benchmarks/calibration_distill_baseline.py STORE.db
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pandas as pd

from scalelab.accounting import count
from scalelab.config import ModelConfig
from scalelab.results.store import Store
from scalelab.techniques.small_large import technique_table

D = 489 * 16 * 128  # 1M tokens rounded up to whole steps of 16 x 128 (cancels in N_c)
WIDTHS = {"d24": 24, "d32": 32, "d48": 48, "d64": 64}
LOSS = {  # README, "Small vs large": alpha -> (seed 0, seed 1)
    "d24": {0.0: (2.5012, 2.5081), 0.5: (2.4572, 2.4726), 0.9: (2.4426, 2.4439)},
    "d32": {0.0: (2.4008, 2.4063), 0.5: (2.3582, 2.3608), 0.9: (2.3383, 2.3484)},
    "d48": {0.0: (2.3340, 2.2944), 0.5: (2.2860, 2.2505), 0.9: (2.2591, 2.2389)},
    "d64": {0.0: (2.2452, 2.2604), 0.5: (2.1973, 2.1389), 0.9: (2.1593, 2.1197)},
}


def counted(n_layer: int, d_model: int, n_head: int) -> dict[str, Any]:
    cfg = ModelConfig(n_layer=n_layer, d_model=d_model, n_head=n_head, vocab_size=258, context=128)
    return count(cfg, causal=True).to_dict()


def build(db: str) -> None:
    t = counted(4, 128, 4)
    t_n, t_fwd = t["params"]["non_embedding"], t["flops"]["forward_per_token"]
    with Store(db) as s:
        for name, width in WIDTHS.items():
            c = counted(2, width, 2)
            n, train = c["params"]["non_embedding"], c["flops"]["train_per_token"]
            for seed in (0, 1):
                base = {
                    "study": "distillation",
                    "status": "finished",
                    "arch": "transformer",
                    "budget": "1M",
                    "wall_seconds": 1.0,
                    "size": name,
                    "seed": seed,
                    "N_non_embedding": n,
                    "N_total": c["params"]["total"],
                    "D": D,
                }
                plain = f"{name}s{seed}"
                s.put_point(base | {"run_id": plain, "kind": "run", "loss": LOSS[name][0.0][seed]})
                for alpha in (0.5, 0.9):
                    extra = {
                        "scratch_run_id": plain,
                        "alpha": alpha,
                        "teacher_run_id": "T",
                        "teacher_N_non_embedding": t_n,
                        "teacher_loss": 1.457,
                        "teacher_forward_flops_per_token": t_fwd,
                        "C_student": train * D,
                        "C_teacher": t_fwd * D,
                        "C_total": (train + t_fwd) * D,
                    }
                    s.put_point(
                        base
                        | {
                            "run_id": f"{plain}a{alpha}",
                            "kind": "distilled",
                            "technique": "distill",
                            "parent_run_id": "T",
                            "loss": LOSS[name][alpha][seed],
                            "extra_json": json.dumps(extra),
                        }
                    )


def main() -> None:
    db = sys.argv[1]
    build(db)
    table, law = technique_table(db, bootstrap=200)
    print("law", law.form, {k: round(float(v), 4) for k, v in law.params.items()})
    d = table[table["kind"] == "distilled"].sort_values(["N", "seed", "alpha"])
    cols = [
        "size",
        "seed",
        "alpha",
        "N",
        "loss",
        "twin_loss",
        "multiplier",
        "multiplier_lo",
        "N_at_total_compute",
        "plain_loss_at_total_compute",
        "wins_at_total_compute",
    ]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(d[cols].to_string(index=False))


if __name__ == "__main__":
    main()
