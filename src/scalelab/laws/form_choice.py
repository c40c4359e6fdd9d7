"""Choose the law by how well it predicts the larger models: rolling-origin validation by
model size, with bootstrap prediction intervals and their measured coverage.

A scaling law is used to predict a model larger than any trained, so the form is chosen
by that use, as time series are validated by rolling origin (Hyndman & Athanasopoulos,
*Forecasting: Principles and Practice*, sec. 5.10, "time series cross-validation"):

* the model sizes are the rungs of N (``size_groups``); for each of the ``holdout``
  largest sizes s (at least ``min_fit_sizes`` smaller sizes left), every candidate form is
  fitted on the sizes below s only and scored by its mean absolute relative error on the
  points at s;
* a form's score is the mean of those errors over the held-out sizes; the chosen form has
  the lowest, ties going to the form with fewer free parameters, then to the earlier one
  in ``forms``; it is refitted on every point. A tie is a score within one standard error
  of the best, the standard error of the paired per-point differences in absolute error
  (the one-standard-error rule of Breiman et al. 1984, sec. 3.4.3, made paired): a form
  nested in another (tied in free) fits no worse on the smaller sizes, and only an
  extrapolation that is better beyond the noise should buy the extra parameter;
* on every split each prediction gets a bootstrap prediction interval: the fit points are
  resampled by model size (whole sizes, since the runs of one size share a model and are
  not independent draws), each resample refitted, and to each refit's prediction a log
  residual of the split's fit is added (a prediction interval for one new run, not only
  for the mean: Davison & Hinkley 1997, Bootstrap Methods, alg. 6.4). The share of held-out
  points inside their ``level`` interval is the interval's measured coverage; below
  ``level`` the intervals are too narrow and the output says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.intervals import percentile_interval
from scalelab.laws.fit import (
    _check_identifiable,
    _cols,
    _fit_once,
    _with_derived,
    check_fix,
    check_frame,
    check_points,
    fit_law,
    size_groups,
    subset_points,
)
from scalelab.laws.forms import FORMS, Array, Form, make_form
from scalelab.laws.law import Law
from scalelab.laws.robust import DELTA, bootstrap

DEFAULT_FORMS = ("chinchilla", "chinchilla-tied", "overtrain")
SELECTABLE = ("chinchilla", "chinchilla-tied", "overtrain", "kaplan")  # laws of N and D
LEVEL = 0.9
TIE = 1e-4  # mean errors closer than 0.01 percentage point are a tie, whatever the noise


@dataclass
class Selection:
    """The outcome of :func:`select_law`.

    * ``law``: the chosen form refitted on every point (its ``selection`` holds this table).
    * ``table``: one row per form and held-out size: ``form``, ``held_out_N``, ``n_fit``,
      ``n_held``, ``mean_abs_rel_error``, ``max_abs_rel_error``, ``mean_rel_error``,
      ``covered`` (held-out points inside their interval), ``note`` (why a fit failed).
    * ``summary``: one row per form: ``n_params``, ``mean_abs_rel_error`` (the score),
      ``coverage``, ``chosen``.
    """

    law: Law
    chosen: str
    table: pd.DataFrame
    summary: pd.DataFrame
    level: float = LEVEL
    holdout: int = 2
    bootstrap: int = 0
    notes: list[str] = field(default_factory=list)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        return self.law.predict(*args, **kwargs)

    @property
    def coverage(self) -> float:
        """The measured coverage of the chosen form's intervals over all splits."""
        row = self.summary[self.summary["form"] == self.chosen].iloc[0]
        return float(row["coverage"])

    def to_dict(self) -> dict[str, Any]:
        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {
                    k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for k, v in r.items()
                }
                for r in df.to_dict(orient="records")
            ]

        return {
            "chosen": self.chosen,
            "by": "N",
            "holdout": self.holdout,
            "level": self.level,
            "bootstrap": self.bootstrap,
            "resample": "size",
            "table": rows(self.table),
            "summary": rows(self.summary),
            "notes": list(self.notes),
        }


def select_law(
    points: Any,
    forms: Sequence[str] = DEFAULT_FORMS,
    holdout: int = 2,
    *,
    fix: Mapping[str, float] | None = None,
    min_n: float | None = None,
    min_c: float | None = None,
    bootstrap: int = 200,
    level: float = LEVEL,
    seed: int = 0,
    delta: float = DELTA,
    n_starts: int = 8,
    min_fit_sizes: int = 3,
) -> Selection:
    """Choose among ``forms`` the one that best predicts the ``holdout`` largest model sizes
    from the smaller ones (rolling origin), refit it on everything and return it with the
    selection table (see the module's docstring).

    ``bootstrap`` resamples (by model size) give the prediction intervals on every split
    and the chosen law's parameter intervals (0: no intervals, no coverage). ``fix`` holds
    parameters at given values in every form that has them; ``min_n``/``min_c`` fit a
    subset, as in :func:`scalelab.laws.fit_law`.
    """
    forms = _check_forms(forms)
    if holdout < 1:
        raise FitError(f"holdout must be >= 1 (model sizes held out), not {holdout}")
    if not 0 < level < 1:
        raise FitError(f"level must be between 0 and 1, not {level}")
    if bootstrap < 0:
        raise FitError(f"bootstrap must be >= 0, not {bootstrap}")
    df, _ = subset_points(check_frame(points), min_n=min_n, min_c=min_c)
    specs = {f: make_form(f, fixed=_fix_for(f, fix)) for f in forms}
    if fix:
        unused = [k for k in fix if not any(k in make_form(f).public for f in forms)]
        if unused:
            raise FitError(f"no candidate form has a parameter {', '.join(unused)} to fix")
    needs = tuple(dict.fromkeys(c for s in specs.values() for c in s.inputs))
    pts = check_points(_with_derived(df, needs), needs, "the law selection")
    labels = size_groups(pts["N"].to_numpy())
    n_sizes = int(labels.max()) + 1
    k = min(holdout, n_sizes - min_fit_sizes)
    if k < 1:
        raise FitError(
            f"the points have {n_sizes} model sizes; choosing a law by extrapolation needs at "
            f"least {min_fit_sizes + 1} ({min_fit_sizes} to fit, 1 to predict): add sizes or "
            "fit a named form (--form chinchilla)"
        )
    notes = []
    if k < holdout:
        notes.append(f"held out {k} size(s), not {holdout}: {min_fit_sizes} must remain to fit")

    same = _same_as_tied(specs, pts, fix)
    if same:
        notes.append(
            "overtrain: C = 6ND at every point, so it is chinchilla-tied reparametrised "
            "(Gadre et al. 2024, eq. 4 from eq. 3) and scored as the same law"
        )
    rng = np.random.default_rng(seed)
    rows = []
    errors: dict[str, list[Array]] = {name: [] for name in specs}  # per held-out point
    for j in range(n_sizes - k, n_sizes):
        fit_pts, held = pts[labels < j], pts[labels == j]
        split_seed = int(rng.integers(2**31))
        done: dict[str, tuple[dict[str, Any], Array]] = {}
        for name, form in sorted(specs.items(), key=lambda kv: kv[0] == "overtrain"):
            if same and name == "overtrain":
                row, rel = done["chinchilla-tied"]
                rows.append(row | {"form": name})
                errors[name].append(np.abs(rel))
                continue
            row, rel = _score_split(
                form,
                fit_pts,
                held,
                labels[labels < j],
                bootstrap,
                level,
                split_seed,
                delta,
                n_starts,
            )
            done[name] = (row, rel)
            rows.append(row | {"form": name})
            errors[name].append(np.abs(rel))
    order = {name: i for i, name in enumerate(specs)}
    rows.sort(key=lambda r: (r["held_out_N"], order[r["form"]]))
    table = pd.DataFrame(rows)[
        [
            "form",
            "held_out_N",
            "n_fit",
            "n_held",
            "mean_abs_rel_error",
            "max_abs_rel_error",
            "mean_rel_error",
            "covered",
            "note",
        ]
    ]
    summary = _summarise(table, specs, bootstrap)
    chosen = _choose(summary, {f: np.concatenate(e) for f, e in errors.items()})
    summary["chosen"] = summary["form"] == chosen
    cov = float(summary.loc[summary["chosen"], "coverage"].iloc[0])
    if bootstrap > 0 and np.isfinite(cov) and cov < level:
        notes.append(
            f"the {level:.0%} intervals of {chosen} held {cov:.0%} of the held-out points: "
            "below nominal, so they are too narrow; widen them or add model sizes"
        )
    law = fit_law(
        df,
        chosen,
        fix=_fix_for(chosen, fix) or None,
        bootstrap=bootstrap,
        seed=seed,
        delta=delta,
        n_starts=n_starts,
        level=level,
        resample="size",
    )
    if min_n is not None or min_c is not None:
        # the subset was taken above; say so on the law as fit_law would have
        _, law.subset = subset_points(check_frame(points), min_n=min_n, min_c=min_c)
    # the refit's log residuals: predict_interval(run=True), the interval checked above
    law.residuals = np.log(pts["loss"].to_numpy()) - np.log(
        law.functional_form.predict(law.params, _cols(pts, law.functional_form))
    )
    sel = Selection(law, chosen, table, summary, level, k, bootstrap, notes)
    law.selection = sel.to_dict()
    return sel


def _same_as_tied(specs: Mapping[str, Form], pts: pd.DataFrame, fix: Any) -> bool:
    """Whether the over-training form is the tied one here: both candidates, C = 6ND at
    every point, and nothing fixed but E (which both share). Then its fits are not redone."""
    if not {"overtrain", "chinchilla-tied"} <= set(specs) or set(fix or {}) - {"E"}:
        return False
    six_nd = 6.0 * pts["N"].to_numpy() * pts["D"].to_numpy()
    return bool(np.allclose(pts["C"].to_numpy(), six_nd, rtol=1e-9, atol=0.0))


def _check_forms(forms: Sequence[str]) -> tuple[str, ...]:
    if isinstance(forms, str):
        forms = [f.strip() for f in forms.split(",") if f.strip()]
    forms = tuple(dict.fromkeys(forms))
    if not forms:
        raise FitError(f"give at least one form to choose from: {', '.join(SELECTABLE)}")
    bad = [f for f in forms if f not in SELECTABLE]
    if bad:
        what = "unknown" if any(f not in FORMS for f in bad) else "not a law of N and D"
        raise FitError(
            f"cannot choose among {', '.join(bad)} ({what}): the candidates are laws of N and "
            f"D, {', '.join(SELECTABLE)}"
        )
    return forms


def _fix_for(form: str, fix: Mapping[str, float] | None) -> dict[str, float]:
    if not fix:
        return {}
    public = make_form(form).public
    mine = {k: v for k, v in fix.items() if k in public}
    return check_fix(form, mine) if mine else {}


def _score_split(
    form: Form,
    fit_pts: pd.DataFrame,
    held: pd.DataFrame,
    groups: Array,
    n_boot: int,
    level: float,
    seed: int,
    delta: float,
    n_starts: int,
) -> tuple[dict[str, Any], Array]:
    actual = held["loss"].to_numpy()
    out: dict[str, Any] = {
        "held_out_N": float(held["N"].median()),
        "n_fit": len(fit_pts),
        "n_held": len(held),
        "mean_abs_rel_error": np.nan,
        "max_abs_rel_error": np.nan,
        "mean_rel_error": np.nan,
        "covered": np.nan,
        "note": "",
    }
    try:
        _check_identifiable(form, fit_pts)
        theta, _ = _fit_once(form, fit_pts, delta, n_starts)
    except FitError as e:
        out["note"] = str(e)
        return out, np.full(len(held), np.nan)
    feats = form.features(_cols(fit_pts, form))
    held_feats = form.features(_cols(held, form))
    logy = np.log(fit_pts["loss"].to_numpy())
    pred = np.exp(form.log_model(theta[None, :], held_feats)[0])
    rel = (pred - actual) / actual
    out |= {
        "mean_abs_rel_error": float(np.mean(np.abs(rel))),
        "max_abs_rel_error": float(np.max(np.abs(rel))),
        "mean_rel_error": float(np.mean(rel)),
    }
    if n_boot > 0:
        lo, hi = prediction_interval(
            form, feats, logy, theta, held_feats, groups, n_boot, level, seed, delta
        )
        out["covered"] = int(np.sum((actual >= lo) & (actual <= hi)))
    return out, rel


def prediction_interval(
    form: Form,
    feats: Mapping[str, Array],
    logy: Array,
    theta: Array,
    at: Mapping[str, Array],
    groups: Array,
    n_boot: int,
    level: float,
    seed: int = 0,
    delta: float = DELTA,
) -> tuple[Array, Array]:
    """The ``level`` bootstrap prediction interval of the loss at ``at``: refits on the
    fit points resampled by ``groups`` (model sizes), each prediction times exp of a log
    residual of the fit drawn at random (Davison & Hinkley 1997, alg. 6.4)."""
    thetas = bootstrap(form, feats, logy, theta, n_boot, seed, delta, groups=groups)
    with np.errstate(all="ignore"):
        logp = form.log_model(thetas, at)  # [B, n]
    resid = logy - form.log_model(theta[None, :], feats)[0]
    rng = np.random.default_rng(seed + 1)
    logp = logp + resid[rng.integers(0, resid.shape[0], logp.shape)]
    with np.errstate(over="ignore"):
        return percentile_interval(np.exp(logp), level)


def _summarise(table: pd.DataFrame, specs: Mapping[str, Form], n_boot: int) -> pd.DataFrame:
    rows = []
    for name, form in specs.items():
        t = table[table["form"] == name]
        failed = t["mean_abs_rel_error"].isna().any()
        held = int(t["n_held"].sum())
        rows.append(
            {
                "form": name,
                "n_params": len(form.internal),
                "mean_abs_rel_error": np.inf if failed else float(t["mean_abs_rel_error"].mean()),
                "max_abs_rel_error": np.inf if failed else float(t["max_abs_rel_error"].max()),
                "coverage": (
                    float(t["covered"].sum() / held) if n_boot > 0 and not failed else np.nan
                ),
            }
        )
    return pd.DataFrame(rows)


def _choose(summary: pd.DataFrame, errors: Mapping[str, Array]) -> str:
    """The best-scoring form, or a simpler one whose score is within the noise of it."""
    scores = summary["mean_abs_rel_error"].to_numpy()
    if not np.isfinite(scores).any():
        raise FitError("no candidate form could be fitted on the smaller model sizes")
    best = str(summary["form"].iloc[int(np.argmin(scores))])
    tied = []
    for name, score in zip(summary["form"], scores, strict=True):
        d = errors[name] - errors[best]  # paired: the same held-out points
        se = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
        if np.isfinite(score) and score - scores.min() <= max(TIE, se):
            tied.append(name)
    cands = summary[summary["form"].isin(tied)]
    # fewer free parameters first; among equals, the order the forms were given
    return str(cands.sort_values("n_params", kind="stable")["form"].iloc[0])
