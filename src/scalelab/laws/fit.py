"""Fit a law to points: checks on the input, the robust fit, bootstrap and extrapolation.

``fit_law(df, "chinchilla")`` is the whole of ``scalelab fit``: it validates the
DataFrame (columns, positive N and D, finite losses, enough points for the form),
fits with the Huber objective of :mod:`scalelab.laws.robust`, refits ``bootstrap``
resamples for percentile intervals on every parameter, and runs the leave-largest-out
extrapolation check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError, did_you_mean
from scalelab.intervals import percentile_interval
from scalelab.laws.forms import FIXABLE, FORMS, GAO_FORMS, ONE_VARIABLE, Array, Form, make_form
from scalelab.laws.gao import fit_gao
from scalelab.laws.law import CI_LEVEL, Law
from scalelab.laws.options import RESAMPLING, VARIABLES
from scalelab.laws.published import resolve_law
from scalelab.laws.robust import DELTA, bootstrap, fit_form

SAME_SIZE_RTOL = 0.02  # values within 2% are one rung of a ladder (digitised data jitter)


def check_points(df: Any, needs: tuple[str, ...], what: str = "the fit") -> pd.DataFrame:
    """The columns ``needs`` + ``loss`` of ``df`` as floats, or a FitError saying what is wrong."""
    if not isinstance(df, pd.DataFrame):
        try:
            df = pd.DataFrame(df)
        except (TypeError, ValueError):
            raise FitError(f"{what} needs a table of points (a pandas DataFrame)") from None
    cols = (*needs, "loss")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "none"
        hint = ""
        if "unique_tokens" in missing:
            hint = " (the data-constrained law needs the unique tokens of each run's corpus)"
        raise FitError(
            f"{what} needs columns {', '.join(cols)}; missing {', '.join(missing)}{hint} "
            f"(columns present: {have})"
        )
    out = pd.DataFrame(index=df.index)
    for c in cols:
        try:
            out[c] = pd.to_numeric(df[c], errors="raise").astype(float)
        except (TypeError, ValueError):
            raise FitError(f"column {c!r} must be numeric") from None
    for c in cols:
        v = out[c].to_numpy()
        bad = ~np.isfinite(v)
        if bad.any():
            rows = ", ".join(map(str, out.index[bad][:5]))
            kind = "NaN or infinite"
            raise FitError(
                f"{int(bad.sum())} point(s) have a {kind} {c} (rows {rows}); "
                "drop them (df.dropna()) or rerun the failed runs"
            )
        nonpos = v <= 0
        if nonpos.any():
            rows = ", ".join(map(str, out.index[nonpos][:5]))
            raise FitError(
                f"{c} must be positive: {int(nonpos.sum())} point(s) have {c} <= 0 (rows {rows})"
            )
    return out


def _with_derived(df: pd.DataFrame, needs: tuple[str, ...]) -> pd.DataFrame:
    """Add C = 6ND when a law of compute is fitted to points that only carry N and D."""
    if not isinstance(df, pd.DataFrame):
        return df
    if "C" in needs and "C" not in df.columns and {"N", "D"} <= set(df.columns):
        df = df.assign(C=6.0 * pd.to_numeric(df["N"]) * pd.to_numeric(df["D"]))
    return df


def size_groups(values: Array, rtol: float = SAME_SIZE_RTOL) -> Array:
    """Label each value by its rung: sorted values closer than ``rtol`` share a label."""
    order = np.argsort(values)
    labels = np.empty(len(values), dtype=int)
    lab, prev = 0, None
    for i in order:
        if prev is not None and values[i] > prev * (1 + rtol):
            lab += 1
        labels[i] = lab
        prev = values[i]
    return labels


def _check_identifiable(form: Form, pts: pd.DataFrame) -> None:
    n_free = len(form.internal)
    if len(pts) <= n_free:
        raise FitError(
            f"the {form.name} form has {n_free} free parameters and needs at least "
            f"{n_free + 1} points; got {len(pts)}"
        )
    for c in form.inputs:
        if c == "unique_tokens":
            continue
        if len(np.unique(size_groups(pts[c].to_numpy()))) < 2:
            raise FitError(
                f"all points have the same {c} ({pts[c].iloc[0]:.4g}): the {form.name} form "
                f"cannot be fitted without variation in {c}; add runs at other values of {c} "
                "or fit a one-variable law (--form power --x N|D|C)"
            )


def _cols(pts: pd.DataFrame, form: Form) -> dict[str, Array]:
    return {c: pts[c].to_numpy() for c in form.inputs}


def _ci(samples: Array, names: tuple[str, ...], free: tuple[str, ...], level: float) -> dict:
    lo, hi = percentile_interval(samples, level)
    return {n: (float(lo[i]), float(hi[i])) for i, n in enumerate(names) if n in free}


def _fit_once(
    form: Form, pts: pd.DataFrame, delta: float, n_starts: int, init: Array | None = None
) -> tuple[Array, float]:
    feats = form.features(_cols(pts, form))
    logy = np.log(pts["loss"].to_numpy())
    if form.name == "slope":
        # ordinary least squares on the logs (Tay et al. 2022 fit straight lines)
        X = np.stack([np.ones_like(feats["lx"]), -feats["lx"]], axis=1)
        theta, *_ = np.linalg.lstsq(X, logy, rcond=None)
        return theta, float(np.sum((X @ theta - logy) ** 2))
    if init is not None:
        # the given starts replace the grid: refine each, keep the best
        best: tuple[Array, float] = (init[0], np.inf)
        for t0 in init:
            r = fit_form(form, feats, logy, delta=delta, n_starts=1, grid=t0[None, :])
            if r.objective < best[1]:
                best = (r.theta, r.objective)
        return best
    res = fit_form(form, feats, logy, delta=delta, n_starts=n_starts)
    if not np.isfinite(res.objective):
        raise FitError(
            f"the {form.name} fit found no finite objective from any start; "
            "check that the losses are in nats per token and that N, D are counts"
        )
    return res.theta, res.objective


def extrapolation_check(
    form: Form,
    pts: pd.DataFrame,
    delta: float = DELTA,
    n_starts: int = 8,
    by: str | None = None,
) -> dict[str, Any]:
    """Leave-largest-out: refit without the largest rung of ``by`` (N for laws of N and D,
    the form's variable otherwise) and report the relative error on the held-out points."""
    by = by or ("N" if "N" in form.inputs else form.inputs[0])
    vals = pts[by].to_numpy()
    labels = size_groups(vals)
    top = labels == labels.max()
    held, kept = pts[top], pts[~top]
    base: dict[str, Any] = {"by": by, "n_holdout": int(top.sum()), "n_fit": int((~top).sum())}
    try:
        _check_identifiable(form, kept)
    except FitError as e:
        return {**base, "skipped": f"too few points below the largest {by}: {e}"}
    theta, _ = _fit_once(form, kept, delta, n_starts)
    pred = np.exp(form.log_model(theta[None, :], form.features(_cols(held, form)))[0])
    actual = held["loss"].to_numpy()
    rel = (pred - actual) / actual
    return {
        **base,
        "threshold": float(vals[top].min()),
        "fit_max": float(vals[~top].max()),
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "mean_rel_error": float(np.mean(rel)),
        "points": [
            {by: float(v), "loss": float(a), "predicted": float(p)}
            for v, a, p in zip(vals[top], actual, pred, strict=True)
        ],
    }


def fit_law(
    df: Any,
    law: str = "chinchilla",
    *,
    x: str | None = None,
    bootstrap: int = 200,
    seed: int = 0,
    delta: float = DELTA,
    n_starts: int = 8,
    extrapolation: bool = True,
    base: Law | str | Mapping[str, float] | Path | None = None,
    level: float = CI_LEVEL,
    init: Mapping[str, float] | list[Mapping[str, float]] | None = None,
    fix: Mapping[str, float] | None = None,
    min_n: float | None = None,
    min_c: float | None = None,
    resample: str = "row",
    reward: str = "gold",
) -> Law:
    """Fit the form ``law`` to the points in ``df`` (columns ``N``, ``D``, ``loss``; ``C`` and
    ``unique_tokens`` where the form needs them; C defaults to 6ND).

    * ``law``: ``chinchilla`` (E + A/N^alpha + B/D^beta), ``kaplan`` (Kaplan et al. 2020,
      eq. 1.5), ``power`` (E + A/x^alpha, x in N, D, C), ``data-constrained`` (Muennighoff
      et al. 2023), ``bnsl`` (one-break broken power law in x), ``slope`` (log-log line in x).
    * ``bootstrap``: resamples refitted for the ``level`` percentile intervals (0: none).
    * ``base``: for ``data-constrained``, the Chinchilla parameters held fixed (a Law, a
      preset name such as ``"muennighoff2023"``, a dict or a FIT.json path). Without one,
      the base is first fitted to the single-epoch points (D <= unique_tokens).
    * ``init``: starting values (a dict of the free parameters, or a list of them) that
      replace the grid of initialisations, e.g. to follow a paper's own starts.
    * ``fix``: published parameters held at given values, e.g. ``{"E": 1.69}`` (a source's
      entropy rate, or another fit's E); the others are fitted.
    * ``min_n``, ``min_c``: fit only the points with N >= min_n and C >= min_c (Hoffmann et
      al. 2022 drop their smallest runs; Besiroglu et al. 2024, sec. 4, discuss why).
    * ``resample``: what the bootstrap resamples: ``"row"`` (points, as Besiroglu et al.
      2024) or ``"size"`` (whole model sizes: the runs of one size share a model and are
      not independent draws).
    * ``gao-bon``, ``gao-rl`` (Gao et al. 2022's reward-overoptimisation laws) fit a reward
      against d = sqrt(KL) instead of a loss: columns ``kl`` and ``{reward}_reward``
      (``reward``: gold or proxy); see :func:`scalelab.laws.gao.fit_gao`. Of the options
      above they take ``bootstrap``, ``seed``, ``level``, ``fix`` and ``extrapolation``.
    """
    if law not in FORMS:
        raise FitError(f"unknown law {law!r}{did_you_mean(law, FORMS)}; choose from {FORMS}")
    if law in GAO_FORMS:
        given = {
            "x": x,
            "base": base,
            "init": init,
            "min_n": min_n,
            "min_c": min_c,
            "resample": None if resample == "row" else resample,
        }
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise FitError(
                f"{', '.join(extra)} do not apply to the {law} law (a reward against sqrt(KL))"
            )
        return fit_gao(
            df,
            law,
            reward=reward,
            bootstrap=bootstrap,
            seed=seed,
            level=level,
            fix=fix,
            extrapolation=extrapolation,
        )
    if x is not None and x not in VARIABLES:
        raise FitError(f"x must be {', '.join(VARIABLES[:-1])} or {VARIABLES[-1]}, not {x!r}")
    if x is not None and law not in ONE_VARIABLE:
        raise FitError(
            f"x applies to the one-variable laws ({', '.join(ONE_VARIABLE)}), not to {law}"
        )
    if base is not None and law != "data-constrained":
        raise FitError(f"base applies to the data-constrained law, not to {law}")
    if bootstrap < 0:
        raise FitError(f"bootstrap must be >= 0, not {bootstrap}")
    if not delta > 0:
        raise FitError(f"delta (the Huber threshold) must be > 0, not {delta}")

    if resample not in RESAMPLING:
        raise FitError(f"resample must be one of {', '.join(RESAMPLING)}, not {resample!r}")
    df, subset = subset_points(df, min_n=min_n, min_c=min_c)

    fixed: dict[str, float] = {}
    if law == "data-constrained":
        if fix:
            raise FitError(
                "the data-constrained law holds its base law fixed: give base=, not fix="
            )
        fixed = _base_params(df, base, delta, n_starts)
    elif fix:
        fixed = check_fix(law, fix, x=x)
    form = make_form(law, x=x, fixed=fixed)
    pts = check_points(_with_derived(df, form.inputs), form.inputs, f"the {law} fit")
    _check_identifiable(form, pts)

    starts = _starts(form, init) if init is not None else None
    theta, objective = _fit_once(form, pts, delta, n_starts, starts)
    samples = None
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap > 0:
        groups = size_labels(pts, form) if resample == "size" else None
        samples = _bootstrap(form, pts, theta, bootstrap, seed, delta, groups)
        ci = _ci(samples, form.public, form.free, level)
    result = Law(
        form=law,
        params=dict(zip(form.public, map(float, form.to_public(theta)), strict=True)),
        objective=objective,
        ci=ci,
        extrapolation=extrapolation_check(form, pts, delta, n_starts) if extrapolation else None,
        x=getattr(form, "x", None) if law in ONE_VARIABLE else None,
        fixed=tuple(fixed),
        n_points=len(pts),
        delta=None if law == "slope" else delta,
        samples=samples,
        seed=seed if bootstrap > 0 else None,
        ci_level=level,
        subset=subset,
        resample=resample if bootstrap > 0 else None,
    )
    if law == "slope":
        result.notes = "objective: sum of squared log residuals (least squares on the logs)"
    return result


def _starts(form: Form, init: Mapping[str, float] | list[Mapping[str, float]]) -> Array:
    inits = [init] if isinstance(init, Mapping) else list(init)
    if not inits:
        raise FitError("init is empty: give a dict of starting values or a list of them")
    rows = []
    for d in inits:
        missing = [k for k in form.free if k not in d]
        if missing:
            raise FitError(f"init lacks {', '.join(missing)} (the {form.name} form's free params)")
        with np.errstate(all="ignore"):
            rows.append(form.from_public({**form.fixed, **d}))
    return np.array(rows)


def _bootstrap(
    form: Form,
    pts: pd.DataFrame,
    theta: Array,
    n: int,
    seed: int,
    delta: float,
    groups: Array | None = None,
) -> Array:
    feats = form.features(_cols(pts, form))
    logy = np.log(pts["loss"].to_numpy())
    if form.name == "slope":
        rng = np.random.default_rng(seed)
        X = np.stack([np.ones_like(feats["lx"]), -feats["lx"]], axis=1)
        out = np.empty((n, 2))
        for b in range(n):
            if groups is None:
                i = rng.integers(0, len(logy), len(logy))
            else:
                labels = np.unique(groups)
                pick = rng.choice(labels, size=labels.shape[0], replace=True)
                i = np.concatenate([np.flatnonzero(groups == g) for g in pick])
            out[b], *_ = np.linalg.lstsq(X[i], logy[i], rcond=None)
        return form.to_public(out)
    return form.to_public(bootstrap(form, feats, logy, theta, n, seed, delta, groups))


def size_labels(pts: pd.DataFrame, form: Form | None = None) -> Array:
    """The model-size rung of every point (N; a one-variable law of D or C: its variable),
    the unit that rolling-origin validation holds out and the size bootstrap resamples."""
    by = "N" if "N" in pts.columns else (form.inputs[0] if form is not None else "N")
    return size_groups(pts[by].to_numpy(dtype=float))


def check_fix(law: str, fix: Mapping[str, float], x: str | None = None) -> dict[str, float]:
    """``fix`` as floats, or a FitError naming what may be fixed."""
    if law not in FIXABLE:
        raise FitError(f"fix applies to {', '.join(FIXABLE)}, not to {law}")
    public = make_form(law, x=x).public
    unknown = [k for k in fix if k not in public]
    if unknown:
        raise FitError(
            f"the {law} law has no parameter {', '.join(map(repr, unknown))} to fix; "
            f"its parameters are {', '.join(public)}"
        )
    if len(fix) >= len(public):
        raise FitError(f"fix holds every parameter of the {law} law: leave one to fit")
    out: dict[str, float] = {}
    for k, v in fix.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            raise FitError(f"fix {k}={v!r}: the value must be a number") from None
        if not np.isfinite(out[k]):
            raise FitError(f"fix {k}={v!r}: the value must be finite")
    # a coefficient that the form holds as its log (E, A, B, ...) must be positive: probe
    # which coordinates are logs by where 1.5 lands
    base = make_form(law, x=x)
    ref = dict.fromkeys(public, 1.5)
    for k, v in out.items():
        moved = base.from_public({**ref, k: 2.5}) - base.from_public(ref)
        if np.isclose(moved[moved != 0][0], np.log(2.5 / 1.5)) and v <= 0:
            raise FitError(
                f"fix {k}={v:g}: {k} is a coefficient of the {law} law and must be positive"
            )
        if k in ("alpha", "beta") and v <= 0:  # L falls with N and D: the exponents are > 0
            raise FitError(
                f"fix {k}={v:g}: {k} is an exponent of the {law} law and must be positive "
                "(at 0 its term is a constant the fit cannot tell from E)"
            )
    return out


def subset_points(
    df: Any, *, min_n: float | None = None, min_c: float | None = None
) -> tuple[Any, dict[str, Any] | None]:
    """The points with N >= min_n and C >= min_c (C = 6ND where there is no C column), and
    what was kept, or a FitError when a bound leaves too little."""
    if min_n is None and min_c is None:
        return df, None
    df = check_frame(df)
    keep = np.ones(len(df), dtype=bool)
    subset: dict[str, Any] = {"n_points_given": len(df)}
    for name, col, bound in (("min_n", "N", min_n), ("min_c", "C", min_c)):
        if bound is None:
            continue
        if not (np.isfinite(bound) and bound > 0):
            raise FitError(f"{name} must be a positive number, not {bound}")
        if col == "C" and "C" not in df.columns and {"N", "D"} <= set(df.columns):
            vals = 6.0 * pd.to_numeric(df["N"]) * pd.to_numeric(df["D"])
        elif col in df.columns:
            vals = pd.to_numeric(df[col])
        else:
            raise FitError(
                f"{name} needs a column {col} in the points (columns: {list(df.columns)})"
            )
        keep &= vals.to_numpy(dtype=float) >= bound
        subset[name] = float(bound)
    subset["n_points_kept"] = int(keep.sum())
    if not keep.any():
        bounds = ", ".join(f"{k} = {subset[k]:.3g}" for k in ("min_n", "min_c") if k in subset)
        raise FitError(f"no point is at or above {bounds}: lower the bound")
    return df[keep], subset


def check_frame(df: Any) -> pd.DataFrame:
    if isinstance(df, pd.DataFrame):
        return df
    try:
        return pd.DataFrame(df)
    except (TypeError, ValueError):
        raise FitError("the fit needs a table of points (a pandas DataFrame)") from None


def _base_params(
    df: Any, base: Law | str | Mapping[str, float] | Path | None, delta: float, n_starts: int
) -> dict[str, float]:
    names = ("E", "A", "B", "alpha", "beta")
    if base is None:
        pts = check_points(df, ("N", "D", "unique_tokens"), "the data-constrained fit")
        single = pts[pts["D"] <= pts["unique_tokens"] * (1 + 1e-9)]
        if len(single) < 6:
            raise FitError(
                "the data-constrained fit needs base Chinchilla parameters: give base= "
                "(a preset such as 'muennighoff2023', or a chinchilla FIT.json), or at least "
                f"6 single-epoch points (D <= unique_tokens) to fit one; found {len(single)}"
            )
        b = fit_law(single, "chinchilla", bootstrap=0, delta=delta, n_starts=n_starts)
        b.extrapolation = None
        return {k: b.params[k] for k in names}
    if isinstance(base, str | Path):
        base = resolve_law(base)
    params = base.params if isinstance(base, Law) else dict(base)
    missing = [k for k in names if k not in params]
    if missing:
        raise FitError(f"the base law lacks {', '.join(missing)}; give a chinchilla law")
    return {k: float(params[k]) for k in names}
