"""How architectures scale: per-architecture slopes and the cross-architecture frontier
(after Tay et al. 2022, "Scaling Laws vs Model Architectures: How does Inductive Bias
Influence Scaling?"); the depth-vs-width protocol is :mod:`scalelab.analysis.depth_vs_width`.

Tay et al. summarise each architecture by the slope alpha of a straight line in log-log
space, log L = log k - alpha log x, with x the training FLOPs or the parameter count
(their Fig. 1 and Table 2): a larger alpha gains more from scale, whatever the offset k.
This module computes those slopes from a study's points with the laws' own fitters
(:func:`scalelab.laws.loglog_slope`, :func:`scalelab.laws.fit_law` for ``E + A x^-alpha``),
never by re-implementing them, and reports where fits are impossible instead of failing.

Choices a user should know:

* ``N`` is the non-embedding parameter count (Kaplan et al. 2020), except for
  mixture-of-experts models (``switch``), whose ``N`` is the *active* non-embedding count
  (the parameters one token passes through: what its compute scales with). Its total is
  kept as ``N_non_embedding``.
* Compute is ``C_exact``, the trainer's exact training FLOPs, by default: 6ND would hide
  exactly what distinguishes the architectures (Performer's features, the funnel's short
  sequence, mixture-of-softmaxes' K heads). ``compute="C"`` uses 6ND instead.
* ``quality`` names the column fitted (``loss`` by default; ``val_bpb`` works). Downstream
  tasks come from the store's ``tasks`` table: ``Comparison.downstream`` holds, per
  architecture and task, the log-log slope of the task's error against compute (Tay et
  al.'s downstream alpha_{U,D}) and N, and Gadre et al.'s fit against the loss, filled in
  by the downstream tasks' plug-in (:meth:`scalelab.plugin.Plugin.comparison`, which calls
  :func:`scalelab.tasks.analysis.add_downstream`) for a store path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.slopes import Slope, _distinct_x, slope
from scalelab.errors import FitError
from scalelab.laws import fit_law, pareto_frontier
from scalelab.plugin import plugins
from scalelab.results.points import load_points

# Architectures whose per-token compute follows the active, not the total, parameters.
SPARSE_ARCHS = frozenset({"switch"})
COMPUTE_AXES = ("C_exact", "C")


def _numbers(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)


def prepare_points(
    points: Any,
    *,
    study: str | None = None,
    sparse_n: str = "active",
    compute: str = "C_exact",
) -> pd.DataFrame:
    """The points of a store (a path) or a DataFrame (``load_points``' columns), with ``N``
    the non-embedding count (active non-embedding for sparse architectures), ``x_C`` the
    compute axis and ``N_kind`` saying which N each row uses. Only final points of
    finished runs; rows without a loss are dropped."""
    if compute not in COMPUTE_AXES:
        raise FitError(f"compute must be one of {', '.join(COMPUTE_AXES)}, not {compute!r}")
    if sparse_n not in ("active", "total"):
        raise FitError(f"sparse_n must be 'active' or 'total', not {sparse_n!r}")
    if isinstance(points, (str, Path)):
        df = load_points(points, study=study)
    else:
        df = pd.DataFrame(points).copy()
        if study is not None and "study" in df.columns:
            df = df[df["study"] == study]
    if "arch" not in df.columns:
        df["arch"] = "transformer"
    if "loss" not in df.columns:
        raise FitError("the comparison needs a 'loss' column (validation loss per point)")
    df = df[np.isfinite(_numbers(df["loss"]))].copy()
    if df.empty:
        where = f" of study {study!r}" if study else ""
        raise FitError(f"no finished points{where} to compare: run the study first")
    if "N_non_embedding" in df.columns:
        n = _numbers(df["N_non_embedding"])
        df["N_kind"] = "non_embedding"
        if sparse_n == "active" and {"N_total", "N_active"} <= set(df.columns):
            # Embeddings are always active, so active non-embedding = non-embedding minus
            # the parameters a token skips (the other experts).
            sparse = df["arch"].isin(SPARSE_ARCHS).to_numpy()
            skipped = _numbers(df["N_total"]) - _numbers(df["N_active"])
            n = np.where(sparse, n - skipped, n)
            df.loc[sparse, "N_kind"] = "active_non_embedding"
        df["N"] = n
    elif "N" not in df.columns:
        raise FitError("the comparison needs N (or N_non_embedding) for every point")
    else:
        df["N_kind"] = "N"
    if compute == "C_exact" and "C_exact" in df.columns and df["C_exact"].notna().all():
        df["x_C"] = _numbers(df["C_exact"])
    elif {"N", "D"} <= set(df.columns):
        df["x_C"] = 6.0 * _numbers(df["N"]) * _numbers(df["D"])
    else:
        raise FitError("the comparison needs C_exact, or N and D, for every point")
    return df.reset_index(drop=True)


@dataclass(frozen=True)
class PowerFit:
    """``quality = E + A x^-alpha`` for one architecture, or why it could not be fitted."""

    x: str
    params: dict[str, float] | None = None
    ci: dict[str, tuple[float, float]] | None = None
    n_points: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "params": self.params,
            "ci": {k: list(v) for k, v in (self.ci or {}).items()} or None,
            "n_points": self.n_points,
            "error": self.error,
        }


def power_fit(
    df: pd.DataFrame,
    x: str,
    *,
    quality: str = "loss",
    bootstrap: int = 200,
    seed: int = 0,
    label: str | None = None,
) -> PowerFit:
    """``quality = E + A x^-alpha`` (laws.fit_law, form ``power``) where the points allow it:
    three free parameters need at least four distinct sizes."""
    pts = df[[x, quality]].astype(float).rename(columns={x: "N", quality: "loss"})
    x = label or x
    n = len(pts)
    distinct = _distinct_x(pts["N"].to_numpy())
    if distinct < 4:
        return PowerFit(
            x,
            n_points=n,
            error=f"E + A x^-alpha has 3 parameters: needs 4 distinct {x} values, has {distinct}",
        )
    try:
        law = fit_law(pts, "power", x="N", bootstrap=bootstrap, seed=seed, extrapolation=False)
    except FitError as e:
        return PowerFit(x, n_points=n, error=str(e))
    params = {k: float(v) for k, v in law.params.items()}
    ci = {k: (float(v[0]), float(v[1])) for k, v in (law.ci or {}).items()}
    return PowerFit(x, params=params, ci=ci or None, n_points=n)


@dataclass(frozen=True)
class ArchScaling:
    """One architecture's scaling: slopes against compute and parameters, and power fits."""

    arch: str
    n_points: int
    n_kind: str
    vs_compute: Slope
    vs_params: Slope
    power_compute: PowerFit
    power_params: PowerFit
    loss_range: tuple[float, float]
    compute_range: tuple[float, float]
    params_range: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "n_points": self.n_points,
            "N": self.n_kind,
            "alpha_C": self.vs_compute.to_dict(),
            "alpha_N": self.vs_params.to_dict(),
            "power_C": self.power_compute.to_dict(),
            "power_N": self.power_params.to_dict(),
            "loss_range": list(self.loss_range),
            "compute_range": list(self.compute_range),
            "params_range": list(self.params_range),
        }


@dataclass(frozen=True)
class Handover:
    """Where the frontier passes from one architecture to another: between ``cost_before``
    (the last frontier point of ``before``) and ``cost_after`` (the first of ``after``)."""

    before: str
    after: str
    cost_before: float
    cost_after: float


@dataclass(frozen=True)
class Frontier:
    """The Pareto frontier over all architectures on one cost axis, and who holds it where."""

    cost: str
    points: pd.DataFrame  # arch, size, cost, quality of each frontier point, by cost
    regions: list[dict[str, Any]]  # {"arch", "from", "to", "n_points"}, by cost
    handovers: list[Handover]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cost": self.cost,
            "points": self.points.to_dict(orient="records"),
            "regions": self.regions,
            "handovers": [h.__dict__ for h in self.handovers],
        }


def frontier(
    df: pd.DataFrame, cost: str = "x_C", quality: str = "loss", *, label: str | None = None
) -> Frontier:
    """The lower-left frontier of (cost, quality) over every architecture's points
    (laws.pareto_frontier), with the contiguous cost regions each architecture holds and the
    handovers between them (Tay et al.'s "some models win at small compute and lose at
    large" read directly off the measured points)."""
    if df.empty:
        raise FitError("the frontier needs at least one point")
    pts = df[df[cost] > 0]
    front = pareto_frontier(pts, cost=cost, quality=quality)
    keep = [c for c in ("arch", "size", "run_id", cost, quality) if c in front.columns]
    front = front[keep].reset_index(drop=True)
    regions: list[dict[str, Any]] = []
    handovers: list[Handover] = []
    for arch, c in zip(front["arch"], front[cost], strict=True):
        if regions and regions[-1]["arch"] == arch:
            regions[-1]["to"] = float(c)
            regions[-1]["n_points"] += 1
            continue
        if regions:
            handovers.append(Handover(regions[-1]["arch"], str(arch), regions[-1]["to"], float(c)))
        regions.append({"arch": str(arch), "from": float(c), "to": float(c), "n_points": 1})
    return Frontier(label or cost, front, regions, handovers)


def crossover(a: Slope, b: Slope) -> float | None:
    """The x at which two fitted lines cross (log k_a - alpha_a lx = log k_b - alpha_b lx),
    or None where a line is missing or they are parallel. Beyond it the steeper one wins."""
    if None in (a.alpha, b.alpha, a.k, b.k) or math.isclose(a.alpha, b.alpha):  # type: ignore[arg-type]
        return None
    lx = (math.log(a.k) - math.log(b.k)) / (a.alpha - b.alpha)  # type: ignore[arg-type,operator]
    return float(math.exp(lx)) if -700 < lx < 700 else None


@dataclass
class Comparison:
    """The per-architecture analysis of one study's points."""

    quality: str
    compute: str
    archs: list[ArchScaling]
    frontier_compute: Frontier
    frontier_params: Frontier
    reference: str | None = "transformer"
    points: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    # per (arch, task): downstream error slopes (Tay et al.'s alpha_{U,D}) and Gadre et al.'s
    # fit against loss, from the store's tasks table (scalelab.tasks.analysis); None if none
    downstream: list[dict[str, Any]] | None = None

    def table(self) -> pd.DataFrame:
        """One row per architecture: alpha against compute and parameters with 95%
        intervals, the power-law fit's E and alpha, ranges; sorted by alpha_C."""
        rows = []
        for a in self.archs:
            pc = a.power_compute.params or {}
            pn = a.power_params.params or {}
            rows.append(
                {
                    "arch": a.arch,
                    "points": a.n_points,
                    "N": a.n_kind,
                    "alpha_C": a.vs_compute.alpha,
                    "alpha_C_lo": a.vs_compute.ci[0] if a.vs_compute.ci else None,
                    "alpha_C_hi": a.vs_compute.ci[1] if a.vs_compute.ci else None,
                    "alpha_N": a.vs_params.alpha,
                    "alpha_N_lo": a.vs_params.ci[0] if a.vs_params.ci else None,
                    "alpha_N_hi": a.vs_params.ci[1] if a.vs_params.ci else None,
                    "power_N_E": pn.get("E"),
                    "power_N_alpha": pn.get("alpha"),
                    "power_C_E": pc.get("E"),
                    "power_C_alpha": pc.get("alpha"),
                    "loss_min": a.loss_range[0],
                    "loss_max": a.loss_range[1],
                    "N_min": a.params_range[0],
                    "N_max": a.params_range[1],
                }
            )
        return pd.DataFrame(rows).sort_values("alpha_C", ascending=False, na_position="last")

    def crossovers(self, axis: str = "C") -> list[dict[str, Any]]:
        """For each architecture against the reference (the transformer): the x where
        their fitted lines cross, who is ahead below it, and whether it lies inside the
        measured range (a crossing far outside it is an extrapolation of a short line)."""
        ref = next((a for a in self.archs if a.arch == self.reference), None)
        if ref is None:
            return []
        out = []
        for a in self.archs:
            if a.arch == ref.arch:
                continue
            sa, sr = (a.vs_compute, ref.vs_compute) if axis == "C" else (a.vs_params, ref.vs_params)
            x = crossover(sa, sr)
            if x is None:
                continue
            rng = a.compute_range if axis == "C" else a.params_range
            rr = ref.compute_range if axis == "C" else ref.params_range
            lo, hi = max(rng[0], rr[0]), min(rng[1], rr[1])
            steeper = a.arch if sa.alpha > sr.alpha else ref.arch  # type: ignore[operator]
            other = ref.arch if steeper == a.arch else a.arch
            out.append(
                {
                    "arch": a.arch,
                    "x": x,
                    "ahead_below": other,
                    "ahead_above": steeper,
                    "inside_range": bool(lo <= x <= hi),
                }
            )
        return out

    def notes(self) -> list[str]:
        """What could not be fitted, per architecture, in words."""
        out = []
        for a in self.archs:
            for what in (a.vs_compute, a.vs_params, a.power_compute, a.power_params):
                if what.error:
                    kind = "alpha" if isinstance(what, Slope) else "E + A x^-alpha"
                    out.append(f"{a.arch}: {kind} vs {what.x}: {what.error}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality": self.quality,
            "compute": self.compute,
            "downstream": self.downstream,
            "archs": [a.to_dict() for a in self.archs],
            "frontier_compute": self.frontier_compute.to_dict(),
            "frontier_params": self.frontier_params.to_dict(),
            "crossovers_compute": self.crossovers("C"),
            "crossovers_params": self.crossovers("N"),
            "notes": self.notes(),
        }


def compare(
    points: Any,
    *,
    study: str | None = None,
    quality: str = "loss",
    compute: str = "C_exact",
    sparse_n: str = "active",
    archs: Sequence[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Compare the architectures of a study: ``points`` is a store path or a DataFrame of
    ``load_points`` rows. Each architecture gets alpha vs compute and vs N (log-log line,
    bootstrap interval), the ``E + A x^-alpha`` fits where there are enough sizes, and
    the frontiers over all of them. Slopes are always positive when quality improves
    with scale; a negative alpha means the architecture got worse as it grew."""
    df = prepare_points(points, study=study, sparse_n=sparse_n, compute=compute)
    if quality not in df.columns:
        raise FitError(f"no column {quality!r} in the points; columns: {', '.join(df.columns)}")
    if archs is not None:
        unknown = sorted(set(archs) - set(df["arch"]))
        if unknown:
            raise FitError(
                f"archs {', '.join(unknown)} have no points; present: "
                f"{', '.join(sorted(set(df['arch'])))}"
            )
        df = df[df["arch"].isin(archs)]
    # The three-parameter fits are iterative: 200 refits give their intervals already.
    nb = min(bootstrap, 200)
    results = []
    for arch, g in df.groupby("arch", sort=False):
        loss = g[quality].to_numpy(dtype=float)
        results.append(
            ArchScaling(
                arch=str(arch),
                n_points=len(g),
                n_kind=str(g["N_kind"].iloc[0]),
                vs_compute=slope(
                    g, "x_C", quality=quality, bootstrap=bootstrap, seed=seed, label=compute
                ),
                vs_params=slope(g, "N", quality=quality, bootstrap=bootstrap, seed=seed),
                power_compute=power_fit(
                    g, "x_C", quality=quality, bootstrap=nb, seed=seed, label=compute
                ),
                power_params=power_fit(g, "N", quality=quality, bootstrap=nb, seed=seed),
                loss_range=(float(loss.min()), float(loss.max())),
                compute_range=(float(g["x_C"].min()), float(g["x_C"].max())),
                params_range=(float(g["N"].min()), float(g["N"].max())),
            )
        )
    cmp = Comparison(
        quality=quality,
        compute=compute,
        archs=results,
        frontier_compute=frontier(df, "x_C", quality, label=compute),
        frontier_params=frontier(df, "N", quality, label="N"),
        points=df,
    )
    if isinstance(points, str | Path):  # the plug-ins' parts (downstream tasks' slopes)
        for plugin in plugins():
            plugin.comparison(cmp, points, study=study, bootstrap=bootstrap, seed=seed, archs=archs)
    return cmp


__all__ = [
    "ArchScaling",
    "Comparison",
    "Frontier",
    "Handover",
    "PowerFit",
    "Slope",
    "compare",
    "crossover",
    "frontier",
    "prepare_points",
    "slope",
]
