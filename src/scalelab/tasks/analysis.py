"""Downstream accuracy against loss, compute and size (the ``downstream`` study's analysis).

* Against loss: Gadre et al. (2024, eq. 5) model a task's top-1 error as
  ``Err(L) = eps - k exp(-gamma L)``: error falls from ``eps`` (chance, at large loss)
  toward ``eps - k`` as the loss L (nats/token) falls. Fitted per task by least squares.
* Against compute and N: Tay et al. (2022)'s downstream slope alpha_{U,D} is the log-log
  slope of downstream quality against compute, per architecture; here of the *error*
  ``1 - accuracy`` (so alpha > 0 means the task improves with scale, as for the loss), with
  the laws' own fitter and bootstrap (:func:`scalelab.analysis.slopes.slope`).
* Where accuracy leaves chance: the smallest N whose Wilson interval lies wholly above the
  chance level (``None``: never, on this ladder).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.analysis.slopes import slope
from scalelab.errors import FitError


def downstream_points(db: str | Path, *, study: str | None = None) -> pd.DataFrame:
    """One row per (finished run, zero-shot task): the run's point columns (``arch``, ``N``,
    ``C_exact``, ``D``, ``loss``) and the task's ``accuracy``, ``lo``, ``hi``, ``chance``,
    ``n``, plus ``error`` = 1 - accuracy. Empty when no run was scored."""
    from scalelab.results import load_points
    from scalelab.tasks.results import load_task_results

    tasks = load_task_results(db)
    tasks = tasks[tasks["method"] == "zero-shot"]
    points = load_points(db, study=study, kind="run")
    if tasks.empty or points.empty:
        return pd.DataFrame()
    cols = ["run_id", "arch", "N", "N_non_embedding", "D", "C", "C_exact", "loss", "study"]
    merged = points[[c for c in cols if c in points.columns]].merge(
        tasks[["run_id", "task", "accuracy", "lo", "hi", "chance", "n"]], on="run_id"
    )
    merged["error"] = 1.0 - merged["accuracy"]
    return merged.sort_values(["task", "N"]).reset_index(drop=True)


def gadre_fit(loss: np.ndarray, error: np.ndarray) -> dict[str, Any]:
    """``Err(L) = eps - k exp(-gamma L)`` fitted to (loss, error); the parameters, the
    residual RMS, or ``error`` with the reason."""
    from scipy.optimize import curve_fit

    loss, error = np.asarray(loss, float), np.asarray(error, float)
    if len(np.unique(loss)) < 4:
        return {"fit_error": f"needs 4 or more distinct losses, has {len(np.unique(loss))}"}

    def form(L: np.ndarray, eps: float, log_k: float, gamma: float) -> np.ndarray:
        return eps - np.exp(log_k - gamma * L)

    best = None
    for gamma0 in (0.5, 1.0, 2.0, 4.0):  # a few starts: the exponential's scale is unknown
        p0 = (
            float(error.max()),
            math.log(max(1e-3, error.max() - error.min())) + gamma0 * float(loss.min()),
            gamma0,
        )
        try:
            with warnings.catch_warnings():  # no covariance at an exact fit: not needed here
                warnings.simplefilter("ignore")
                p, _ = curve_fit(form, loss, error, p0=p0, maxfev=20000)
        except (RuntimeError, ValueError):
            continue
        rms = float(np.sqrt(np.mean((form(loss, *p) - error) ** 2)))
        if best is None or rms < best[1]:
            best = (p, rms)
    if best is None:
        return {"fit_error": "the exponential did not converge from any start"}
    (eps, log_k, gamma), rms = best
    return {"eps": float(eps), "k": float(math.exp(log_k)), "gamma": float(gamma), "rms": rms}


def leaves_chance(g: pd.DataFrame) -> float | None:
    """The smallest N whose whole 95% interval is above chance, or None."""
    above = g[g["lo"] > g["chance"]]
    return float(above["N"].min()) if not above.empty else None


def downstream_summary(
    db: str | Path, *, study: str | None = None, bootstrap: int = 200, seed: int = 0
) -> list[dict[str, Any]]:
    """Per (architecture, task): points, accuracy range, where it leaves chance, the slopes
    of error against compute (alpha_C: Tay et al.'s alpha_{U,D}) and N, and Gadre et al.'s
    fit of error against loss."""
    df = downstream_points(db, study=study)
    out: list[dict[str, Any]] = []
    if df.empty:
        return out
    df = df.assign(x_C=df["C_exact"].where(df["C_exact"].notna(), df["C"]))
    for (arch, task), g in df.groupby(["arch", "task"], sort=True):
        g = g.sort_values("N")
        row: dict[str, Any] = {
            "arch": arch,
            "task": task,
            "n_points": len(g),
            "chance": float(g["chance"].iloc[0]),
            "accuracy": [float(a) for a in g["accuracy"]],
            "N": [float(n) for n in g["N"]],
            "leaves_chance_at_N": leaves_chance(g),
        }
        # a zero error has no logarithm: the slope is of the error floored at 1/(2n)
        err = g["error"].clip(lower=1.0 / (2 * g["n"].astype(float)))
        gg = g.assign(error=err)
        for key, x in (("alpha_C", "x_C"), ("alpha_N", "N")):
            s = slope(gg, x, quality="error", bootstrap=bootstrap, seed=seed)
            row[key] = s.alpha
            row[f"{key}_ci"] = list(s.ci) if s.ci else None
            if s.error:
                row[f"{key}_error"] = s.error
        row["gadre"] = gadre_fit(g["loss"].to_numpy(), g["error"].to_numpy())
        out.append(row)
    return out


def check_points(df: pd.DataFrame) -> None:
    if df.empty:
        raise FitError(
            "no run in this store has downstream results: score runs with `scalelab eval RUN "
            "--task T --db DB` or a study's tasks = [...]"
        )


def add_downstream(
    cmp: Any,
    db: str | Path,
    *,
    study: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    archs: Sequence[str] | None = None,
) -> Any:
    """Fill ``cmp.downstream`` (a :class:`scalelab.analysis.arch_compare.Comparison` of the store
    ``db``) with :func:`downstream_summary` per architecture and task (None if none)."""
    rows = downstream_summary(db, study=study, bootstrap=min(bootstrap, 200), seed=seed)
    cmp.downstream = [r for r in rows if archs is None or r["arch"] in archs] or None
    return cmp
