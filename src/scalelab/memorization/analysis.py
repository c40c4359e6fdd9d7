"""The capacity study's analysis: bits stored against N, and its slope with an interval.

Capacity at a size is the most a model of that size stores: for every (N, exposures,
precision) the corpus whose measured bits are largest (the corpora are chosen with content
below and above each size's expected capacity; a corpus below it is stored whole and
says only "at least this much"). Two fits on those points, each with a bootstrap over
the sizes (resampled with replacement, 95% percentile interval):

* ``bits_per_param``: the least-squares slope of bits against N through the origin
  (Allen-Zhu and Li's "2 bits per parameter" is this number for their models);
* ``exponent``: the slope of log bits against log N; 1 means capacity is linear in N.

And for extraction (:func:`extraction_slopes`): the share of canaries extracted per decade
of model size, of exposures and of prompt length (Carlini et al. 2022's log-linear trends).

``N`` is the non-embedding count by default (``n="total"`` for all parameters).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError

CI_LEVEL = 0.95
# Published references (bits per parameter): Allen-Zhu & Li 2024 (1000 exposures, GPT-2
# models on bioS), Morris et al. 2025 (GPT-style models on uniform random bits, bf16/fp32).
REFERENCE_BITS_PER_PARAM = {"Allen-Zhu & Li 2024": 2.0, "Morris et al. 2025": 3.6}


def capacity_points(db: str | Path, *, study: str | None = None) -> pd.DataFrame:
    """One row per capacity point in the store (``kind = 'capacity'``): the run's columns
    plus every field of its :class:`~scalelab.memorization.capacity.CapacityResult`."""
    from scalelab.results.points import load_points

    pts = load_points(db, study=study, kind="capacity")
    if pts.empty:
        return pts
    extra = _extras(db, list(pts["run_id"]))
    rows = [extra.get(r, {}) for r in pts["run_id"]]
    fields = pd.DataFrame(rows, index=pts.index)
    # the measurement's own fields win (``precision`` is the quantization here, not the
    # run's training precision; ``corpus`` the canonical spec)
    clash = [c for c in fields.columns if c in pts.columns and c not in ("run_id", "study")]
    return pd.concat([pts.drop(columns=clash), fields], axis=1)


def _extras(db: str | Path, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    from scalelab.results.store import Store, json_column

    with Store(db, create=False) as store:
        marks = ",".join("?" for _ in run_ids)
        rows = store.query(
            f"SELECT run_id, extra_json FROM points WHERE run_id IN ({marks})", run_ids
        )
    return {r["run_id"]: json_column(r["extra_json"], "extra_json", r["run_id"], db) for r in rows}


@dataclass(frozen=True)
class CapacityFit:
    """Bits against N for one (kind, precision, exposures) group."""

    kind: str
    precision: str
    exposures: float
    n: str  # "non_embedding" or "total"
    bits_per_param: float
    bits_per_param_ci: tuple[float, float]
    exponent: float
    exponent_ci: tuple[float, float]
    points: list[dict[str, float]]  # N, bits, corpus, content_bits (the capacity points)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _origin_slope(N: np.ndarray, bits: np.ndarray) -> float:
    return float((N * bits).sum() / (N * N).sum())


def _loglog(N: np.ndarray, bits: np.ndarray) -> float:
    ok = bits > 0
    if ok.sum() < 2 or len(np.unique(N[ok])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(N[ok]), np.log(bits[ok]), 1)[0])


def fit_capacity(
    df: pd.DataFrame,
    *,
    n: str = "non_embedding",
    bootstrap: int = 1000,
    seed: int = 0,
) -> list[CapacityFit]:
    """Fit every (kind, precision, exposures) group of capacity points (see module doc)."""
    col = {"non_embedding": "N_non_embedding", "total": "N_total"}.get(n)
    if col is None:
        raise FitError(f"n must be 'non_embedding' or 'total', got {n!r}")
    need = {col, "bits", "corpus_kind", "precision", "exposures", "corpus"}
    if df.empty or not need <= set(df.columns):
        raise FitError(
            "no capacity points to fit: run `scalelab capacity RUN --db DB` on trained runs"
        )
    fits = []
    df = df.assign(exposures_r=df["exposures"].round(0))
    for (kind, precision, exposures), g in df.groupby(["corpus_kind", "precision", "exposures_r"]):
        best = g.sort_values("bits").groupby(col, as_index=False).last().sort_values(col)
        N = best[col].to_numpy(float)
        bits = best["bits"].to_numpy(float)
        if len(N) < 2:
            continue
        rng = np.random.default_rng(seed)
        slopes, exps = [], []
        for _ in range(bootstrap):
            i = rng.integers(0, len(N), len(N))
            slopes.append(_origin_slope(N[i], bits[i]))
            exps.append(_loglog(N[i], bits[i]))
        lo, hi = (1 - CI_LEVEL) / 2 * 100, (1 + CI_LEVEL) / 2 * 100
        exps_ok = [e for e in exps if math.isfinite(e)]
        fits.append(
            CapacityFit(
                kind=str(kind),
                precision=str(precision),
                exposures=float(exposures),
                n=n,
                bits_per_param=_origin_slope(N, bits),
                bits_per_param_ci=(
                    float(np.percentile(slopes, lo)),
                    float(np.percentile(slopes, hi)),
                ),
                exponent=_loglog(N, bits),
                exponent_ci=(
                    (float(np.percentile(exps_ok, lo)), float(np.percentile(exps_ok, hi)))
                    if exps_ok
                    else (float("nan"), float("nan"))
                ),
                points=[
                    {
                        "N": float(r[col]),
                        "bits": float(r["bits"]),
                        "corpus": str(r["corpus"]),
                        "content_bits": float(r["content_bits"]),
                    }
                    for _, r in best.iterrows()
                ],
            )
        )
    if not fits:
        raise FitError("capacity needs points at 2 or more sizes in some group to fit a slope")
    return fits


def extraction_points(db: str | Path, *, study: str | None = None) -> pd.DataFrame:
    """One row per (run, source, repeats, k) of the ``memorization`` points in the store,
    with the run's ``N_non_embedding``."""
    from scalelab.results.points import load_points

    pts = load_points(db, study=study, kind="memorization")
    if pts.empty:
        return pd.DataFrame()
    extra = _extras(db, list(pts["run_id"]))
    rows = []
    for _, p in pts.iterrows():
        for r in extra.get(p["run_id"], {}).get("rows", []):
            rows.append({**r, "N_non_embedding": p["N_non_embedding"], "run_id": p["run_id"]})
    return pd.DataFrame(rows)


def loglinear_slope(x: Any, y: Any, *, bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Slope of y against log10 x (Carlini et al. 2022's log-linear trends), with a 95%
    bootstrap interval over the points."""
    x, y = np.log10(np.asarray(x, float)), np.asarray(y, float)
    if len(np.unique(x)) < 2:
        return {"slope": math.nan, "ci": (math.nan, math.nan), "n": len(x)}
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(bootstrap):
        i = rng.integers(0, len(x), len(x))
        if len(np.unique(x[i])) > 1:
            boots.append(np.polyfit(x[i], y[i], 1)[0])
    return {
        "slope": float(np.polyfit(x, y, 1)[0]),
        "ci": (float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))),
        "n": len(x),
    }


def extraction_slopes(mem: pd.DataFrame, bootstrap: int = 1000) -> dict[str, Any]:
    """Share of canaries extracted per decade of model size, of exposures and of prompt
    length (each at the others' largest values, so the share is away from 0)."""
    can = mem[mem["source"] == "canary"]
    if can.empty:
        return {}
    k, n, e = can["k"].max(), can["N_non_embedding"].max(), can["exposures"].max()
    out = {}
    by_e = can[(can["k"] == k) & (can["N_non_embedding"] == n)]
    out["per_decade_of_exposures"] = loglinear_slope(
        by_e["exposures"], by_e["share"], bootstrap=bootstrap
    )
    by_k = can[(can["exposures"] == e) & (can["N_non_embedding"] == n)]
    out["per_decade_of_prefix"] = loglinear_slope(by_k["k"], by_k["share"], bootstrap=bootstrap)
    by_n = can[(can["k"] == k) & (can["exposures"] == e)]
    out["per_decade_of_size"] = loglinear_slope(
        by_n["N_non_embedding"], by_n["share"], bootstrap=bootstrap
    )
    return out


__all__ = [
    "REFERENCE_BITS_PER_PARAM",
    "CapacityFit",
    "capacity_points",
    "extraction_points",
    "extraction_slopes",
    "fit_capacity",
    "loglinear_slope",
]
