"""The Must-show table of docs/posttrain.md: per task and policy size, the pretrain, SFT, DPO,
RPO, RL (grader) and best-of-n accuracy with intervals, from the stores of its commands.

    PYTHONPATH=src python benchmarks/posttrain_mustshow.py dyck=W1/rm.db,W2/posttrain.db \\
        sort=W3/posttrain.db add-rev=W4/posttrain.db

Each TASK=DB[,DB...] merges the stores (stage directories are read relative to each store's
folder, where the sweep recorded them).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.posttrain.analysis import stage_table
from scalelab.posttrain.points import load_posttrain

BON_NS = (1, 4, 16)
HEADER = (
    "| task | policy N | pretrain | SFT | DPO (lr 1e-6) | RPO (lr 1e-5) | RL (GRPO on the grader) "
    "| sampled (n = 1) | best-of-4 (RM) | best-of-16 (RM) |"
)


def cell(r: Any) -> str:
    if r is None:
        return ""
    lo, hi = 100 * r["accuracy_lo"], 100 * r["accuracy_hi"]
    return f"{100 * r['accuracy']:.1f} [{lo:.1f}, {hi:.1f}]"


def in_dir(f: Callable[[str], pd.DataFrame], db: str) -> pd.DataFrame:
    here = os.getcwd()
    os.chdir(Path(db).parent)  # stage dirs are recorded relative to the workdir
    try:
        return f(Path(db).name)
    finally:
        os.chdir(here)


def first(g: pd.DataFrame, mask: pd.Series) -> Any:
    m = g[mask]
    return None if m.empty else m.iloc[0]


def rows(task: str, dbs: list[str]) -> list[list[str]]:
    st = pd.concat([in_dir(stage_table, d) for d in dbs]).drop_duplicates("run_id")
    pts = pd.concat([in_dir(load_posttrain, d) for d in dbs]).drop_duplicates("run_id")
    st = st[(st["task"] == task) & st["method"].isin(["eval", "sft", "dpo", "rl"])]
    out = []
    for n, g in st.groupby("policy_N"):
        rpo = g["settings"].str.contains("loss=rpo")
        stages = [
            first(g, g["method"] == "eval"),
            first(g, g["method"] == "sft"),
            first(g, (g["method"] == "dpo") & ~rpo),
            first(g, (g["method"] == "dpo") & rpo),
            first(g, (g["method"] == "rl") & g["reward_N"].isna()),
        ]
        bon = pts[(pts["method"] == "bon") & (pts["policy_N"] == n) & (pts["task"] == task)]
        bons = [first(bon, bon["n"] == k) if "n" in bon else None for k in BON_NS]
        out.append([task, f"{int(n):,}", *map(cell, stages), *map(cell, bons)])
    return out


if __name__ == "__main__":
    print(HEADER)
    print("|---" * 10 + "|")
    for spec in sys.argv[1:]:
        task, dbs = spec.split("=")
        for r in rows(task, dbs.split(",")):
            print("| " + " | ".join(r) + " |")
