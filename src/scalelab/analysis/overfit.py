"""When a bigger model stops being better: the data-constrained analysis of a store.

Runs at several sizes see the same number of tokens drawn from a shrinking unique share of
the corpus (``data.fraction``), so the share is repeated more and more often
(``studies/overfit.toml``). For each run:

* ``loss``: the validation loss at the end (early stopping *off*);
* ``best``: the best validation loss over its evaluations (early stopping *on*, ideally:
  the best checkpoint kept; a patience-k early stop on the same trajectory returns this or
  worse);
* ``gap``: validation minus training loss at the end (memorising the repeated share).

The **crossover** of two sizes is the unique-token count below which the larger one's loss
is worse than the smaller one's (interpolated in log unique tokens between the two shares
where the difference changes sign), with the difference at the smallest share: "by how
much". Finally the data-constrained law of Muennighoff et al. 2023 (eq. 5: repeated tokens
decay in value with constant R_D*, excess parameters with R_N*) is fitted to all runs, its
base Chinchilla terms to the single-epoch ones.

``python -m scalelab.apps.overfit runs/overfit.db`` prints it (:mod:`scalelab.apps.overfit`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import ScalelabError

STUDY = "overfit"


@dataclass
class Crossover:
    small: int  # N of the smaller model
    large: int
    metric: str  # "loss" (early stopping off) or "best" (on)
    unique_tokens: float | None  # below this the larger model is worse; None: never crosses
    larger_worse_at: list[float]  # unique-token counts where it is worse
    diff_at_smallest: float  # large - small at the smallest share (nats/token)
    rel_at_smallest: float  # that over the smaller model's loss

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OverfitAnalysis:
    runs: pd.DataFrame
    crossovers: list[Crossover]
    law: dict[str, Any] | None
    law_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": json.loads(self.runs.to_json(orient="records")),
            "crossovers": [c.to_dict() for c in self.crossovers],
            "law": self.law,
            "law_error": self.law_error,
            "notes": self.notes,
        }

    def describe(self) -> str:
        cols = ["N", "fraction", "unique_tokens", "epochs", "loss", "best", "train_loss", "gap"]
        lines = [self.runs[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}")]
        for c in self.crossovers:
            where = (
                f"below {c.unique_tokens:,.0f} unique tokens"
                if c.unique_tokens is not None
                else "never (in this range)"
            )
            lines.append(
                f"N={c.large:,} vs N={c.small:,} ({'early stopping' if c.metric == 'best' else 'final'}): "
                f"larger worse {where}; at the smallest share {c.diff_at_smallest:+.4f} nats "
                f"({c.rel_at_smallest:+.1%})"
            )
        if self.law:
            p, ci = self.law["params"], self.law.get("ci") or {}
            lines.append(
                f"data-constrained fit: R_D* = {p.get('R_D_star', float('nan')):.3g} "
                f"{tuple(round(x, 3) for x in ci.get('R_D_star', ()))}, "
                f"R_N* = {p.get('R_N_star', float('nan')):.3g} "
                f"{tuple(round(x, 3) for x in ci.get('R_N_star', ()))}"
            )
        elif self.law_error:
            lines.append(f"data-constrained fit failed: {self.law_error}")
        return "\n".join(lines + self.notes)


def _crossing(x: np.ndarray, diff: np.ndarray) -> float | None:
    """The x (unique tokens) below which ``diff`` (large - small) stays positive, interpolated
    in log x where it changes sign; None when the larger model is not worse at the smallest x;
    the largest x when it is worse everywhere measured."""
    order = np.argsort(x)[::-1]  # from the most unique data down
    x, diff = x[order], diff[order]
    if diff[-1] <= 0:
        return None
    i = len(x) - 1
    while i > 0 and diff[i - 1] > 0:
        i -= 1
    if i == 0:
        return float(x[0])
    t = diff[i - 1] / (diff[i - 1] - diff[i])  # diff[i - 1] <= 0 < diff[i]
    return float(math.exp(math.log(x[i - 1]) + t * (math.log(x[i]) - math.log(x[i - 1]))))


def overfit_analysis(
    db: str | Path, *, study: str = STUDY, bootstrap: int = 200, seed: int = 0
) -> OverfitAnalysis:
    from scalelab.laws import fit_law
    from scalelab.results.points import load_points

    pts = load_points(db)
    runs = pts[pts["study"] == study].copy()
    if runs.empty:
        raise ScalelabError(f"{db} holds no finished runs of study {study!r}: sweep it first")
    if "data.fraction" in runs.columns:
        runs["fraction"] = runs["data.fraction"].astype(float)
    else:
        runs["fraction"] = 1.0
    runs["best"] = runs["best_val_loss"].fillna(runs["loss"])
    runs["gap"] = runs["loss"] - runs["train_loss"]
    runs = runs.sort_values(["N", "fraction"]).reset_index(drop=True)
    sizes = sorted(runs["N"].unique())
    crossovers: list[Crossover] = []
    for i, small in enumerate(sizes):
        for large in sizes[i + 1 :]:
            a = runs[runs["N"] == small].set_index("fraction")
            b = runs[runs["N"] == large].set_index("fraction")
            common = sorted(set(a.index) & set(b.index))
            if len(common) < 2:
                continue
            u = a.loc[common, "unique_tokens"].to_numpy(float)
            for metric in ("loss", "best"):
                diff = b.loc[common, metric].to_numpy(float) - a.loc[common, metric].to_numpy(float)
                k = int(np.argmin(u))
                crossovers.append(
                    Crossover(
                        small=int(small),
                        large=int(large),
                        metric=metric,
                        unique_tokens=_crossing(u, diff),
                        larger_worse_at=[float(x) for x, d in zip(u, diff, strict=True) if d > 0],
                        diff_at_smallest=float(diff[k]),
                        rel_at_smallest=float(diff[k] / a.loc[common, metric].to_numpy(float)[k]),
                    )
                )
    law = law_error = None
    try:
        # every run of the store on this corpus and validation split: the study and its
        # single-epoch ladder
        same = pts[pts["corpus"] == runs["corpus"].iloc[0]]
        fitted = fit_law(same, "data-constrained", bootstrap=bootstrap, seed=seed)
        law = fitted.to_dict()
    except ScalelabError as e:
        law_error = str(e)
    cols = [
        "run_id", "N", "fraction", "unique_tokens", "D", "epochs", "loss", "best",
        "train_loss", "gap", "step",
    ]  # fmt: skip
    return OverfitAnalysis(runs[cols], crossovers, law, law_error)


__all__ = ["Crossover", "OverfitAnalysis", "overfit_analysis"]
