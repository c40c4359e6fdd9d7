"""What a keep-fraction study measured: loss, distance to the full-data run, effective data.

For every run trained on a selection (``kind = "select"`` in the store) at non-embedding
size N, seed s and D tokens:

* ``rel``: its validation loss over that of the run on the whole training split at the same
  N, seed and D, minus one (0.01 = 1% worse);
* ``D_eff / D``: the tokens a plain run of size N needs, under the Chinchilla law fitted to
  the store's plain runs (``kind = "run"``: the full-data runs and the ladder below them),
  to reach that loss (:func:`scalelab.laws.effective_d`), over the tokens it saw.
  Above 1: the selection trains better than that many fresh tokens of the corpus.

The seed claim ("a small well-chosen share trains as well as all of it") is then the smallest
keep fraction whose loss, averaged over seeds, is within 1% (and 5%) of the full-data loss.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.errors import ScalelabError

TOLERANCES = (0.01, 0.05)


@dataclass
class KeepAnalysis:
    """``runs``: one row per selected or full run (method, keep, N, seed, loss, rel, D_eff/D);
    ``table``: means over seeds per (method, keep, N); ``smallest``: per (method, N) the
    smallest keep within each tolerance; ``law``: the plain law's ``to_dict()`` or None."""

    runs: pd.DataFrame
    table: pd.DataFrame
    smallest: pd.DataFrame
    law: dict[str, Any] | None
    law_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def best_at(self, keep: float) -> dict[str, Any] | None:
        """The method with the lowest mean loss at ``keep`` (over sizes), with its mean
        effective-data multiplier per size."""
        rows = self.table[(self.table["keep"] - keep).abs() < 1e-9]
        if rows.empty:
            return None
        by_method = rows.groupby("method")["loss"].mean().sort_values()
        best = str(by_method.index[0])
        sub = rows[rows["method"] == best]
        return {
            "keep": keep,
            "method": best,
            "per_size": [
                {
                    "N": int(r.N),
                    "loss": float(r.loss),
                    "rel": float(r.rel),
                    "d_mult": None if pd.isna(r.d_mult) else float(r.d_mult),
                }
                for r in sub.itertuples()
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(df.to_json(orient="records"))

        return {
            "runs": records(self.runs),
            "table": records(self.table),
            "smallest": records(self.smallest),
            "best_at_0.3": self.best_at(0.3),
            "law": self.law,
            "law_error": self.law_error,
            "notes": self.notes,
        }

    def describe(self) -> str:
        lines = ["keep-fraction table (mean over seeds; rel = loss / full - 1):"]
        cols = ["method", "keep", "N", "n_seeds", "loss", "rel", "d_mult"]
        lines.append(self.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        lines.append("smallest keep within 1% / 5% of the full-data loss:")
        lines.append(self.smallest.to_string(index=False))
        best = self.best_at(0.3)
        if best:
            lines.append(f"best at keep 0.3: {best}")
        lines += self.notes
        return "\n".join(lines)


def _selection_info(db: str | Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(str(db)) as conn:
        rows = conn.execute(
            "SELECT run_id, extra_json FROM points WHERE kind = 'select' AND extra_json IS NOT NULL"
        ).fetchall()
    out = {}
    for run_id, extra in rows:
        sel = json.loads(extra).get("selection") or {}
        out[run_id] = sel
    return out


def keep_analysis(
    db: str | Path, *, study: str | None = None, bootstrap: int = 100
) -> KeepAnalysis:
    """The keep-fraction analysis of a store (see the module docstring)."""
    from scalelab.laws import effective_d, fit_law
    from scalelab.results.points import load_points

    pts = load_points(db, status=("finished", "stopped_early"))
    if study is not None:
        pts = pts[pts["study"].isin([study, "keep-ladder"])]
    plain = pts[pts["kind"] == "run"]
    selected = pts[pts["kind"] == "select"].copy()
    if selected.empty:
        raise ScalelabError(f"{db} holds no runs trained on a selection (data.select)")
    info = _selection_info(db)
    selected["method"] = [
        (lambda s: f"{s.get('method')}{'-' + s['order'] if s.get('order') else ''}")(
            info.get(r, {})
        )
        for r in selected["run_id"]
    ]
    selected["keep"] = [float(info.get(r, {}).get("keep", math.nan)) for r in selected["run_id"]]
    selected["kept_fraction"] = [
        float(info.get(r, {}).get("kept_fraction", math.nan)) for r in selected["run_id"]
    ]
    # the full-data run at the same size, seed and token budget
    full = plain.set_index(["N", "seed", "D"])["loss"]
    full = full[~full.index.duplicated()]
    selected["full_loss"] = [
        full.get((n, s, d), math.nan)
        for n, s, d in zip(selected["N"], selected["seed"], selected["D"], strict=True)
    ]
    selected["rel"] = selected["loss"] / selected["full_loss"] - 1.0

    law = None
    law_error = None
    try:
        fitted = fit_law(plain, "chinchilla", bootstrap=bootstrap, seed=0, extrapolation=False)
        law = fitted.to_dict()
        mults, los, his = [], [], []
        for r in selected.itertuples():
            e = effective_d(fitted, float(r.loss), float(r.N), D=float(r.D))
            m = e.multiplier
            ci = e.multiplier_ci
            mults.append(m if m is not None else math.nan)
            los.append(ci[0] if ci else math.nan)
            his.append(ci[1] if ci else math.nan)
        selected["d_mult"], selected["d_mult_lo"], selected["d_mult_hi"] = mults, los, his
    except ScalelabError as e:
        law_error = str(e)
        selected["d_mult"] = selected["d_mult_lo"] = selected["d_mult_hi"] = math.nan

    full_rows = plain[plain["D"].isin(selected["D"].unique())].copy()
    full_rows["method"], full_rows["keep"], full_rows["kept_fraction"] = "full", 1.0, 1.0
    full_rows["full_loss"], full_rows["rel"] = full_rows["loss"], 0.0
    full_rows["d_mult"] = full_rows["d_mult_lo"] = full_rows["d_mult_hi"] = math.nan
    cols = [
        "run_id", "method", "keep", "kept_fraction", "N", "seed", "D", "epochs", "loss",
        "train_loss", "full_loss", "rel", "d_mult", "d_mult_lo", "d_mult_hi",
    ]  # fmt: skip
    runs = pd.concat([selected[cols], full_rows[cols]], ignore_index=True)
    runs = runs.sort_values(["method", "N", "keep", "seed"]).reset_index(drop=True)

    table = (
        runs.groupby(["method", "keep", "N"], as_index=False)
        .agg(
            n_seeds=("seed", "nunique"),
            loss=("loss", "mean"),
            loss_sd=("loss", "std"),
            rel=("rel", "mean"),
            d_mult=("d_mult", "mean"),
            epochs=("epochs", "mean"),
            train_loss=("train_loss", "mean"),
        )
        .sort_values(["method", "N", "keep"])
        .reset_index(drop=True)
    )
    rows = []
    for (method, n), g in table[table["method"] != "full"].groupby(["method", "N"]):
        row: dict[str, Any] = {"method": method, "N": int(n)}
        for tol in TOLERANCES:
            ok = g[g["rel"] <= tol]
            row[f"within_{tol:.0%}"] = float(ok["keep"].min()) if len(ok) else None
        rows.append(row)
    smallest = pd.DataFrame(rows)
    notes = []
    if runs["full_loss"].isna().any():
        notes.append("some selected runs have no full-data run at their size, seed and budget")
    return KeepAnalysis(runs, table, smallest, law, law_error, notes)


__all__ = ["TOLERANCES", "KeepAnalysis", "keep_analysis"]
