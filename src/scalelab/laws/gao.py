"""Fitting Gao, Schulman & Hilton 2022's reward-overoptimisation laws to post-training points.

The forms (:class:`~scalelab.laws.forms.GaoBestOfN`, :class:`~scalelab.laws.forms.GaoRL`)
give the gold reward as a function of d = sqrt(KL). Points are rows with a ``kl`` column (nats,
KL(policy || initial policy)) and a reward column: ``gold_reward`` or ``proxy_reward`` (the
``posttrain`` points of the store carry both), or ``reward`` in a hand-made CSV.

* :func:`fit_gao` fits one curve (one policy, one reward model, one method) by least squares,
  with bootstrap percentile intervals (rows resampled) on every parameter and on the peak d*.
* :func:`fit_gao_curves` splits a table into its curves (method, task, policy, reward model)
  and fits each: the coefficients against the reward model's size, and each curve's
  predicted peak against the measured one (the d of the largest mean reward observed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.intervals import percentile_interval
from scalelab.laws.forms import GAO_FORMS, Array, Gao, make_form
from scalelab.laws.law import CI_LEVEL, Law
from scalelab.laws.options import REWARDS

METHOD = {"gao-bon": "bon", "gao-rl": "rl"}  # the posttrain point's ``method`` each form fits
# what makes one curve: the stage that produced it (one best-of-n sweep, one RL run), or,
# where the points do not say, its method, task, policy and reward model
CURVE_KEYS = ("method", "task", "parent_run_id", "reward_run_id", "stage")


def stage_of(run_id: str) -> str:
    """The stage a posttrain point belongs to, from its id: ``<stage>@<step>`` (an RL
    evaluation) or ``<stage>-n<n>`` (one n of a best-of-n sweep), as
    ``scalelab.posttrain.points`` names them; any other id is its own stage."""
    return re.sub(r"-n\d+$", "", str(run_id).split("@")[0])


def with_stage(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``stage`` column (from ``stage_run_id`` where the points carry one,
    else from ``run_id``), so that two RL runs of one policy against one reward model (with
    other KL coefficients, say) stay two curves."""
    if "stage" in df.columns:
        return df
    if "stage_run_id" in df.columns:
        return df.assign(stage=df["stage_run_id"].astype(str))
    if "run_id" in df.columns:
        return df.assign(stage=[stage_of(r) for r in df["run_id"]])
    return df


def reward_column(df: pd.DataFrame, reward: str) -> str:
    if reward not in REWARDS:
        raise FitError(f"reward must be one of {', '.join(REWARDS)}, not {reward!r}")
    for col in (f"{reward}_reward", "reward"):
        if col in df.columns:
            return col
    raise FitError(
        f"the Gao fit needs a column {reward}_reward (or reward) beside kl; "
        f"columns present: {', '.join(map(str, df.columns)) or 'none'}"
    )


def select_method(df: pd.DataFrame, form: str) -> pd.DataFrame:
    """The rows of the method ``form`` describes, where the points say their method."""
    if "method" not in df.columns:
        return df
    keep = df[df["method"].astype(str) == METHOD[form]]
    if keep.empty:
        have = ", ".join(sorted(map(str, df["method"].dropna().unique()))) or "none"
        raise FitError(
            f"the {form} law fits points of method {METHOD[form]!r}; the points have {have}"
        )
    return keep


def _points(df: Any, form: Gao, reward: str) -> tuple[Array, Array]:
    if not isinstance(df, pd.DataFrame):
        try:
            df = pd.DataFrame(df)
        except (TypeError, ValueError):
            raise FitError("the Gao fit needs a table of points (a pandas DataFrame)") from None
    if "kl" not in df.columns:
        raise FitError(
            f"the {form.name} fit needs a column kl (nats, KL to the initial policy); "
            f"columns present: {', '.join(map(str, df.columns)) or 'none'}"
        )
    col = reward_column(df, reward)
    try:
        kl = pd.to_numeric(df["kl"], errors="raise").to_numpy(dtype=float)
        y = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise FitError(f"columns kl and {col} must be numeric") from None
    bad = ~(np.isfinite(kl) & np.isfinite(y))
    if bad.any():
        raise FitError(
            f"{int(bad.sum())} point(s) have a NaN or infinite kl or {col}; drop them first"
        )
    if (kl < -1e-9).any():
        raise FitError(f"kl must be >= 0 (a KL divergence); {int((kl < -1e-9).sum())} are not")
    free = len(form.free)
    d_levels = np.unique(np.round(np.sqrt(np.maximum(kl, 0.0)), 9))
    if len(kl) <= free or len(d_levels) < free:
        raise FitError(
            f"the {form.name} law has {free} free parameters and needs at least {free + 1} "
            f"points at {free} or more distinct KLs; got {len(kl)} at {len(d_levels)}"
        )
    return np.maximum(kl, 0.0), y


def _solve(form: Gao, X: Array, y: Array) -> Array:
    """Least squares on the free columns; the fixed parameters' part moved to the left."""
    idx = [form.public.index(k) for k in form.free]
    fixed = form.from_public({**dict.fromkeys(form.public, 0.0), **form.fixed})
    rhs = y - X @ fixed
    sol, *_ = np.linalg.lstsq(X[:, idx], rhs, rcond=None)
    theta = fixed.copy()
    theta[idx] = sol
    return theta


def measured_peak(kl: Array, y: Array) -> tuple[float, float]:
    """(d, mean reward) at the KL whose points have the highest mean reward."""
    d = np.round(np.sqrt(kl), 9)
    levels = np.unique(d)
    means = np.array([y[d == v].mean() for v in levels])
    i = int(np.argmax(means))
    return float(levels[i]), float(means[i])


def fit_gao(
    df: Any,
    law: str = "gao-bon",
    *,
    reward: str = "gold",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = CI_LEVEL,
    fix: Mapping[str, float] | None = None,
    extrapolation: bool = True,
) -> Law:
    """Fit ``gao-bon`` or ``gao-rl`` to one curve's points (columns ``kl`` and
    ``{reward}_reward``; rows of other methods are left out when a ``method`` column says).

    The Law's ``params`` are alpha, beta, R0 and, derived, ``d_star`` (the predicted peak;
    absent where beta <= 0, a curve that never turns down), ``kl_star`` = d*^2 and the
    measured peak ``d_peak_measured``; its ``ci`` holds the bootstrap intervals of the fitted
    ones and of d_star (an upper end of inf: some refits have no peak). ``objective`` is the sum of
    squared residuals. ``extrapolation`` refits without the largest KL and reports the
    absolute error there (how well the curve's turn is predicted from before it).
    """
    if law not in GAO_FORMS:
        raise FitError(f"fit_gao fits {', '.join(GAO_FORMS)}, not {law!r}")
    if bootstrap < 0:
        raise FitError(f"bootstrap must be >= 0, not {bootstrap}")
    if isinstance(df, pd.DataFrame):
        df = with_stage(select_method(df, law))
        keys = [k for k in CURVE_KEYS if k in df.columns and df[k].nunique(dropna=False) > 1]
        if keys:
            raise FitError(
                f"the points hold several curves (they differ in {', '.join(keys)}): one law "
                "per curve; filter them, or fit them all with fit_gao_curves "
                "(`scalelab fit --form gao-...` does)"
            )
    fixed = _check_fix(law, fix)
    form = make_form(law, fixed=fixed)
    assert isinstance(form, Gao)
    kl, y = _points(df, form, reward)
    X = form.design({"kl": kl})
    theta = _solve(form, X, y)
    objective = float(np.sum((X @ theta - y) ** 2))
    d_meas, r_meas = measured_peak(kl, y)
    params = dict(zip(form.public, map(float, theta), strict=True))
    d_star = float(form.peak(theta[0], theta[1]))
    if np.isfinite(d_star):  # beta <= 0: the reward never turns down, no peak to name
        params.update(d_star=d_star, kl_star=d_star**2)
    params["d_peak_measured"] = d_meas
    samples = None
    no_peak = 0
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        rows = []
        for _ in range(bootstrap):
            i = rng.integers(0, len(y), len(y))
            rows.append(_solve(form, X[i], y[i]))
        samples = np.array(rows)
        lo, hi = percentile_interval(samples, level)
        ci = {k: (float(lo[j]), float(hi[j])) for j, k in enumerate(form.public) if k in form.free}
        peaks = form.peak(samples[:, 0], samples[:, 1])
        no_peak = int((~np.isfinite(peaks)).sum())
        if no_peak < len(peaks):  # the interval of the refits that have a peak
            plo, phi = percentile_interval(peaks[:, None], level)
            ci["d_star"] = (float(plo[0]), float(phi[0]))
    result = Law(
        form=law,
        params=params,
        objective=objective,
        ci=ci,
        extrapolation=_extrapolation(form, kl, y) if extrapolation else None,
        fixed=tuple(fixed),
        n_points=len(y),
        samples=samples,
        seed=seed if bootstrap > 0 else None,
        ci_level=level,
        resample="row" if bootstrap > 0 else None,
    )
    result.notes = (
        f"objective: sum of squared residuals of {reward} reward (least squares); "
        f"predicted peak d* = {d_star:.4g} (KL {d_star**2:.4g}), measured {d_meas:.4g} "
        f"(KL {d_meas**2:.4g}, reward {r_meas:.4g})"
    )
    if d_meas >= float(np.sqrt(kl.max())) - 1e-9:
        result.notes += " at the largest KL measured: no turn observed"
    if bootstrap > 0 and no_peak:
        result.notes += f"; {no_peak} of {bootstrap} bootstrap refits have no peak (beta <= 0)"
    return result


def _check_fix(law: str, fix: Mapping[str, float] | None) -> dict[str, float]:
    if not fix:
        return {}
    public = make_form(law).public
    out: dict[str, float] = {}
    for k, v in fix.items():
        if k not in public:
            raise FitError(
                f"the {law} law has no parameter {k!r} to fix; its parameters are "
                f"{', '.join(public)}"
            )
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise FitError(f"fix {k}={v!r}: the value must be a number") from None
        if not np.isfinite(out[k]):
            raise FitError(f"fix {k}={v!r}: the value must be finite")
    if len(out) >= len(public):
        raise FitError(f"fix holds every parameter of the {law} law: leave one to fit")
    return out


def _extrapolation(form: Gao, kl: Array, y: Array) -> dict[str, Any]:
    d = np.round(np.sqrt(kl), 9)
    top = d == d.max()
    base: dict[str, Any] = {"by": "kl", "n_holdout": int(top.sum()), "n_fit": int((~top).sum())}
    kept = np.unique(d[~top])
    if (~top).sum() <= len(form.free) or len(kept) < len(form.free):
        return {**base, "skipped": "too few KLs below the largest to refit"}
    X = form.design({"kl": kl})
    theta = _solve(form, X[~top], y[~top])
    pred = X[top] @ theta
    err = pred - y[top]
    return {
        **base,
        "threshold": float(kl[top].min()),
        "fit_max": float(kl[~top].max()),
        "mean_abs_error": float(np.mean(np.abs(err))),
        "max_abs_error": float(np.max(np.abs(err))),
        "points": [
            {"kl": float(k), "reward": float(a), "predicted": float(p)}
            for k, a, p in zip(kl[top], y[top], pred, strict=True)
        ],
    }


@dataclass
class GaoCurve:
    """One curve's fit: what identifies it (``key``), the reward model's size, the law."""

    key: dict[str, Any]
    reward_N: float | None
    law: Law

    def to_dict(self) -> dict[str, Any]:
        return {
            "curve": self.key,
            "reward_N": self.reward_N,
            "law": self.law.to_dict(samples=False),
        }


def fit_gao_curves(
    df: pd.DataFrame,
    law: str = "gao-bon",
    *,
    reward: str = "gold",
    bootstrap: int = 200,
    seed: int = 0,
    level: float = CI_LEVEL,
    fix: Mapping[str, float] | None = None,
) -> list[GaoCurve]:
    """Every curve of ``df`` (rows grouped by stage, method, task, policy and reward model,
    where those columns exist) fitted by :func:`fit_gao`, ordered by the reward model's size.
    Rows without a KL or the reward (a stage's summary point) are not curve points and are
    left out."""
    if law not in GAO_FORMS:
        raise FitError(f"fit_gao_curves fits {', '.join(GAO_FORMS)}, not {law!r}")
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise FitError(f"no points to fit the {law} law to")
    df = with_stage(select_method(df, law))
    # a stage's own summary point may carry no KL or reward (accuracy only): not a curve point
    col = reward_column(df, reward)
    if "kl" in df.columns:
        df = df[pd.to_numeric(df["kl"], errors="coerce").notna()]
        df = df[pd.to_numeric(df[col], errors="coerce").notna()]
        if df.empty:
            raise FitError(f"no {METHOD[law]} point has both a kl and a {col} to fit")
    keys = [k for k in CURVE_KEYS if k in df.columns]
    groups = df.groupby(keys, dropna=False, sort=True) if keys else [((), df)]
    out = []
    for values, part in groups:
        values = values if isinstance(values, tuple) else (values,)
        key = {k: (None if pd.isna(v) else v) for k, v in zip(keys, values, strict=True)}
        n = None
        if "reward_N" in part.columns and part["reward_N"].notna().any():
            n = float(pd.to_numeric(part["reward_N"]).dropna().iloc[0])
        try:
            fitted = fit_gao(
                part.drop(columns=keys),
                law,
                reward=reward,
                bootstrap=bootstrap,
                seed=seed,
                level=level,
                fix=fix,
            )
        except FitError as e:
            where = ", ".join(f"{k} {v}" for k, v in key.items())
            raise FitError(f"the curve of {where}: {e}") from None
        out.append(GaoCurve(key=key, reward_N=n, law=fitted))
    return sorted(out, key=lambda c: (c.reward_N is None, c.reward_N or 0.0))


def coefficient_trend(curves: list[GaoCurve], name: str, level: float = CI_LEVEL) -> dict[str, Any]:
    """The slope of a coefficient against log10 of the reward model's size over the curves,
    with a percentile interval from the curves' bootstrap refits (one refit of each curve per
    draw): Gao et al. find alpha_RL nearly flat and the others changing smoothly with log
    size (sec. 3.2, fig. 3). A slope whose interval covers 0 is consistent with no trend."""
    pts = [c for c in curves if c.reward_N and c.reward_N > 0]
    if len({c.reward_N for c in pts}) < 2:
        raise FitError("a trend against reward-model size needs curves at two or more sizes")
    x = np.log10([c.reward_N for c in pts])
    y = np.array([c.law.params[name] for c in pts])
    slope = float(np.polyfit(x, y, 1)[0])
    out: dict[str, Any] = {"coefficient": name, "slope_per_decade": slope, "n_curves": len(pts)}
    if all(c.law.samples is not None for c in pts):
        j = list(pts[0].law.functional_form.public).index(name)
        n = min(len(c.law.samples) for c in pts)  # type: ignore[arg-type]
        ys = np.stack([c.law.samples[:n, j] for c in pts], axis=1)  # type: ignore[index]
        slopes = np.polyfit(x, ys.T, 1)[0]
        lo, hi = percentile_interval(slopes[:, None], level)
        out["ci"] = (float(lo[0]), float(hi[0]))
    return out
