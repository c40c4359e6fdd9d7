"""Hoffmann et al. 2022's three ways to the compute-optimal allocation N_opt(C), D_opt(C).

* Approach 1 (sec. 3.1): the lowest-loss envelope. For each compute level, the point of
  least loss; fit N_opt = k_N C^a and D_opt = k_D C^b through those points. Points can be
  intermediate evaluations of runs (the store's curves) as well as final ones.
* Approach 2 (sec. 3.2): IsoFLOP profiles. For each compute budget, fit a parabola of loss
  against log N; its vertex is N_opt(C); then the same power-law fits.
* Approach 3 (sec. 3.3): the parametric Chinchilla law (:func:`scalelab.laws.fit_law`),
  whose optimum gives a = beta / (alpha + beta), b = alpha / (alpha + beta).

Each returns an :class:`Allocation` with bootstrap intervals on the exponents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.intervals import percentile_interval
from scalelab.laws.fit import _with_derived, check_points, fit_law, size_groups
from scalelab.laws.law import CI_LEVEL

BUDGET_RTOL = 0.05  # points within 5% of compute share an IsoFLOP budget


@dataclass
class Allocation:
    """N_opt = k_N C^a and D_opt = k_D C^b, with the per-compute optima they were fitted to."""

    approach: int
    a: float
    b: float
    k_N: float
    k_D: float
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    optima: pd.DataFrame | None = None
    extrapolation: dict[str, Any] | None = None
    objective: float | None = None  # residual sum of squares of the log N_opt fit
    ci_level: float = CI_LEVEL
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "k_N": self.k_N, "k_D": self.k_D}

    def predict(self, C: Any) -> tuple[Any, Any]:
        """(N_opt, D_opt) at compute C."""
        C = np.asarray(C, dtype=float)
        return self.k_N * C**self.a, self.k_D * C**self.b

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "form": f"approach{self.approach}",
            "params": self.params,
            "objective": self.objective,
            "ci": {k: list(v) for k, v in self.ci.items()},
            "ci_level": self.ci_level,
            "extrapolation": self.extrapolation,
            "notes": self.notes,
        }
        if self.optima is not None:
            d["optima"] = self.optima.to_dict(orient="records")
        return d


def _powerfit(C: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """log y = log k + a log C by least squares: (a, k, residual sum of squares)."""
    X = np.stack([np.ones_like(C), np.log(C)], axis=1)
    coef, *_ = np.linalg.lstsq(X, np.log(y), rcond=None)
    rss = float(np.sum((X @ coef - np.log(y)) ** 2))
    # a degenerate bootstrap resample (one budget drawn over and over) can put log k past
    # exp's range: k is then inf, and the interval helpers drop it, so no warning is owed
    with np.errstate(over="ignore"):
        k = float(np.exp(coef[0]))
    return float(coef[1]), k, rss


def _points(df: Any) -> pd.DataFrame:
    df = _with_derived(df, ("C",))
    pts = check_points(df, ("N", "D", "C"), "the allocation fit")
    return pts


def _isoflop_optima(pts: pd.DataFrame, budgets: np.ndarray) -> tuple[pd.DataFrame, list[str]]:
    rows, notes = [], []
    for lab in np.unique(budgets):
        g = pts[budgets == lab]
        if len(g) < 3 or len(np.unique(g["N"])) < 3:
            notes.append(f"budget {g['C'].median():.3g}: fewer than 3 model sizes, skipped")
            continue
        x = np.log(g["N"].to_numpy())
        p2, p1, p0 = np.polyfit(x, g["loss"].to_numpy(), 2)
        if not p2 > 0:
            notes.append(f"budget {g['C'].median():.3g}: loss is not convex in log N, skipped")
            continue
        xs = -p1 / (2 * p2)
        inside = bool(x.min() <= xs <= x.max())
        if not inside:
            notes.append(
                f"budget {g['C'].median():.3g}: the parabola's minimum lies outside the sizes "
                "trained (extrapolated)"
            )
        C = float(np.exp(np.mean(np.log(g["C"].to_numpy()))))
        n = float(np.exp(xs))
        rows.append(
            {
                "C": C,
                "N_opt": n,
                "D_opt": C / (6 * n),
                "loss_opt": float(p0 + p1 * xs + p2 * xs * xs),
                "n_points": len(g),
                "inside": inside,
            }
        )
    return pd.DataFrame(rows), notes


def _envelope_optima(pts: pd.DataFrame, n_bins: int) -> pd.DataFrame:
    lc = np.log(pts["C"].to_numpy())
    edges = np.linspace(lc.min(), lc.max(), n_bins + 1)
    idx = np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, n_bins - 1)
    rows = []
    for b in np.unique(idx):
        g = pts[idx == b]
        best = g.iloc[int(np.argmin(g["loss"].to_numpy()))]
        rows.append(
            {
                "C": float(best["C"]),
                "N_opt": float(best["N"]),
                "D_opt": float(best["D"]),
                "loss_opt": float(best["loss"]),
                "n_points": len(g),
            }
        )
    return pd.DataFrame(rows)


def _fit_allocation(
    approach: int, optima: pd.DataFrame, notes: list[str], min_optima: int = 2
) -> Allocation:
    if len(optima) < min_optima:
        raise FitError(
            f"approach {approach} found {len(optima)} compute-optimal point(s); it needs at "
            f"least {min_optima} compute budgets with 3 or more model sizes each"
        )
    C = optima["C"].to_numpy()
    a, kn, rss = _powerfit(C, optima["N_opt"].to_numpy())
    b, kd, _ = _powerfit(C, optima["D_opt"].to_numpy())
    return Allocation(approach, a, b, kn, kd, optima=optima, objective=rss, notes=notes)


def _extrapolate(alloc: Allocation, refit: Any) -> dict[str, Any] | None:
    """Fit without the largest compute level; relative error of N_opt predicted there."""
    opt = alloc.optima
    if opt is None or len(opt) < 3:
        return {"by": "C", "skipped": "fewer than 3 compute levels"}
    top = opt["C"] == opt["C"].max()
    sub = refit(opt[~top])
    n_pred, d_pred = sub.predict(opt.loc[top, "C"].to_numpy())
    n_act = opt.loc[top, "N_opt"].to_numpy()
    return {
        "by": "C",
        "threshold": float(opt.loc[top, "C"].min()),
        "n_holdout": int(top.sum()),
        "N_opt_rel_error": float(np.mean((n_pred - n_act) / n_act)),
        "D_opt_rel_error": float(
            np.mean((d_pred - opt.loc[top, "D_opt"].to_numpy()) / opt.loc[top, "D_opt"])
        ),
    }


def _ci(samples: list[tuple[float, ...]], level: float) -> dict[str, tuple[float, float]]:
    lo, hi = percentile_interval(np.asarray(samples, dtype=float).reshape(-1, 4), level)
    return {
        k: (float(lo[i]), float(hi[i]))
        for i, k in enumerate(("a", "b", "k_N", "k_D"))
        if np.isfinite(lo[i])
    }


def isoflop(
    df: Any,
    *,
    budget: str | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> Allocation:
    """Approach 2: a parabola in log N per compute budget, then N_opt, D_opt against C.

    Budgets are the values of column ``budget`` when given, else C (default 6ND) grouped
    within 5%. Bootstrap resamples points inside each budget."""
    pts = _points(df)
    if budget is not None:
        if budget not in df.columns:
            raise FitError(f"no column {budget!r} to group IsoFLOP budgets by")
        labels = pd.factorize(pd.Series(np.asarray(df[budget])).loc[pts.index])[0]
    else:
        labels = size_groups(pts["C"].to_numpy(), BUDGET_RTOL)
    optima, notes = _isoflop_optima(pts, labels)
    alloc = _fit_allocation(2, optima, notes)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        idx = np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == lab), size=int(np.sum(labels == lab)))
                for lab in np.unique(labels)
            ]
        )
        opt, _ = _isoflop_optima(pts.iloc[idx], labels[idx])
        if len(opt) >= 2:
            s = _fit_allocation(2, opt, [])
            samples.append((s.a, s.b, s.k_N, s.k_D))
    if samples:
        alloc.ci = _ci(samples, level)
    alloc.ci_level = level
    alloc.extrapolation = _extrapolate(alloc, lambda o: _fit_allocation(2, o, []))
    return alloc


def envelope(
    df: Any, *, n_bins: int = 20, bootstrap: int = 200, seed: int = 0, level: float = CI_LEVEL
) -> Allocation:
    """Approach 1: in each of ``n_bins`` log-spaced compute bins, the lowest-loss point
    (final or intermediate evaluations alike); then N_opt, D_opt against C."""
    pts = _points(df)
    if n_bins < 2:
        raise FitError(f"n_bins must be at least 2, not {n_bins}")
    alloc = _fit_allocation(1, _envelope_optima(pts, n_bins), [])
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(bootstrap):
        sub = pts.iloc[rng.integers(0, len(pts), len(pts))]
        opt = _envelope_optima(sub, n_bins)
        if len(opt) >= 2:
            s = _fit_allocation(1, opt, [])
            samples.append((s.a, s.b, s.k_N, s.k_D))
    if samples:
        alloc.ci = _ci(samples, level)
    alloc.ci_level = level
    alloc.extrapolation = _extrapolate(alloc, lambda o: _fit_allocation(1, o, []))
    return alloc


def parametric(
    df: Any, *, bootstrap: int = 200, seed: int = 0, level: float = CI_LEVEL
) -> Allocation:
    """Approach 3: the Chinchilla law's closed-form optimum (Hoffmann et al. 2022, eq. 4)."""
    law = fit_law(df, "chinchilla", bootstrap=bootstrap, seed=seed, level=level)

    def alloc_of(p: dict[str, float]) -> tuple[float, float, float, float]:
        al, be = p["alpha"], p["beta"]
        G = (al * p["A"] / (be * p["B"])) ** (1 / (al + be))
        a, b = be / (al + be), al / (al + be)
        return a, b, G * 6.0**-a, 6.0**-b / G

    a, b, kn, kd = alloc_of(law.params)
    out = Allocation(3, a, b, kn, kd, objective=law.objective, ci_level=level)
    if law.samples is not None:
        out.ci = _ci([alloc_of(p) for p in law.sample_params()], level)
    out.extrapolation = law.extrapolation
    return out
