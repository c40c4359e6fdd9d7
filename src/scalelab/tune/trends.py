"""What a search found, per size, and how the best hyperparameters move with N.

``best_trials(db, study)`` is one row per group (size x budget x seed x grid point): the
best trial's value and parameters, how many trials ran, and the neighbourhood of the
optimum (the range of each parameter among trials within ``within`` of the best value:
a flat basin says the exact value matters little). ``fit_hyperparameter(best, "train.lr")``
fits ``h*(N) = k N^-alpha`` through the best values, the form DeepSeek LLM (2024, sec. 3.1:
eta_opt = 0.3118 C^-0.125, B_opt = 0.292 C^0.3271, against compute) and Porian et al.
(2024) fit, so a plan can name a learning rate for a size nobody tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError, FitError, StoreError


def trial_points(db: str | Path, study: str | None = None) -> Any:
    """Every trial of the store as a DataFrame (``load_points(kind="trial")``, every
    status), with its ``group``, ``trial`` number, whether it was ``pruned``, and one
    column per searched key (``train.lr``)."""
    import pandas as pd

    from scalelab.results.points import load_points
    from scalelab.results.store import Store, json_column

    df = load_points(db, study=study, kind="trial", status=None)
    with Store(db, create=False) as store:
        rows = store.query(
            "SELECT study, run_id, extra_json FROM points WHERE kind = 'trial'"
            + (" AND study = ?" if study else ""),
            (study,) if study else (),
        )
    extra = {
        (r["study"], r["run_id"]): json_column(
            r["extra_json"], "extra_json", f"{r['study']}/{r['run_id']}", db
        )
        for r in rows
    }
    info = [extra.get((s, r), {}) for s, r in zip(df["study"], df["run_id"], strict=True)]
    df["group"] = [e.get("group") for e in info]
    df["trial"] = [e.get("trial") for e in info]
    df["searched"] = [",".join(sorted(e.get("params", {}))) for e in info]
    df["pruned"] = df["reason"].fillna("").astype(str).str.startswith("pruned")
    return pd.DataFrame(df)


def best_trials(
    db: str | Path,
    study: str | None = None,
    *,
    metric: str = "loss",
    within: float = 0.01,
    sampler: str | None = None,
) -> Any:
    """One row per group (``sampler``: only that sampler's searches): ``size``, ``sampler``,
    ``N``, ``best`` (the lowest ``metric`` of a trial that
    ran to its end), the best trial's ``run_id`` and searched values (``train.lr``, ...),
    ``trials``, ``pruned``, ``near`` (trials within ``within`` relative of the best) and
    for each searched key ``KEY_lo``/``KEY_hi``: its range among those near trials."""
    import pandas as pd

    if not (math.isfinite(within) and within >= 0):
        raise ConfigError(f"--within must be a finite share >= 0 (0.01 is 1%), got {within}")
    df = trial_points(db, study)
    if sampler is not None:  # the searches of one sampler (the group name ends with it)
        df = df[df["group"].fillna("").str.endswith(f"/{sampler}")]
    if df.empty:
        raise StoreError(
            f"{db}: no trials{f' of study {study!r}' if study else ''}: run `scalelab tune`"
        )
    keys = sorted(
        {k for k in df.columns if "." in k and k.split(".")[0] in ("model", "data", "train")}
    )
    rows = []
    for group, g in df.groupby("group", sort=False):
        ok = g[(g["status"] == "finished") & ~g["pruned"] & g[metric].notna()]
        row: dict[str, Any] = {
            "group": group,
            "sampler": str(group).rsplit("/", 1)[-1],
            "study": g["study"].iloc[0],
            "size": g["size"].iloc[0],
            "budget": g["budget"].iloc[0],
            "N": g["N"].iloc[0],
            "trials": len(g),
            "pruned": int(g["pruned"].sum()),
            "failed": int((g["status"] == "failed").sum()),
        }
        if ok.empty:
            rows.append({**row, "best": None})
            continue
        best = ok.loc[ok[metric].idxmin()]
        near = ok[ok[metric] <= best[metric] * (1 + within)]
        row.update(best=float(best[metric]), run_id=best["run_id"], near=len(near))
        for k in keys:
            row[k] = best[k]
            row[f"{k}_lo"], row[f"{k}_hi"] = near[k].min(), near[k].max()
        rows.append(row)
    return pd.DataFrame(rows).sort_values("N", kind="stable").reset_index(drop=True)


@dataclass
class HyperparameterLaw:
    """``value*(N) = k N^-alpha`` through the best value per size (alpha > 0: it falls)."""

    key: str
    k: float
    alpha: float
    ci: dict[str, tuple[float, float]]
    n_points: int
    points: list[tuple[float, float]]  # (N, best value)

    def predict(self, N: float) -> float:
        return float(self.k * N ** (-self.alpha))

    @classmethod
    def from_dict(cls, d: Any) -> HyperparameterLaw:
        """A law as :meth:`to_dict` (and ``scalelab tuned --out``) writes it."""
        try:
            law = cls(
                key=str(d["key"]),
                k=float(d["k"]),
                alpha=float(d["alpha"]),
                ci={k: (float(v[0]), float(v[1])) for k, v in (d.get("ci") or {}).items()},
                n_points=int(d["n_points"]),
                points=[(float(n), float(v)) for n, v in d["points"]],
            )
        except (KeyError, TypeError, ValueError, IndexError):
            raise ConfigError(
                "not a fitted hyperparameter law (key, k, alpha, n_points, points), as "
                "`scalelab tuned` writes it with its fit and out options"
            ) from None
        if not (math.isfinite(law.k) and law.k > 0 and math.isfinite(law.alpha) and law.points):
            raise ConfigError(f"hyperparameter law for {law.key}: k > 0, a finite alpha and "
                              "its fitted points are needed")  # fmt: skip
        return law

    def name_at(self, N: float) -> dict[str, Any]:
        """The value this law names for a model of N parameters, with how far N lies outside
        the sizes it was fitted on (1: inside; 40: 40x beyond the nearest end)."""
        lo, hi = min(n for n, _ in self.points), max(n for n, _ in self.points)
        beyond = N / hi if hi < N else (lo / N if lo > N else 1.0)
        return {"key": self.key, "value": self.predict(N), "N": N, "fitted_N": [lo, hi],
                "extrapolation": beyond}  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "form": f"{self.key}*(N) = k N^-alpha",
            "k": self.k,
            "alpha": self.alpha,
            "ci": {k: list(v) for k, v in self.ci.items()},
            "n_points": self.n_points,
            "points": [list(p) for p in self.points],
        }


def load_hyperparameter_laws(path: str | Path) -> list[HyperparameterLaw]:
    """The laws ``scalelab tuned --fit KEY --out FILE`` wrote (a list, or one law)."""
    from scalelab.rundir import read_json

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"--hyper {str(path)!r} is not a file: give the JSON file `scalelab tuned` wrote"
        )
    try:
        data = read_json(path)
    except StoreError as e:
        raise ConfigError(f"--hyper: {e}") from None
    laws = [HyperparameterLaw.from_dict(d) for d in (data if isinstance(data, list) else [data])]
    if not laws:
        raise ConfigError(f"--hyper {str(path)!r} holds no law: fit one with `scalelab tuned`")
    return laws


def fit_hyperparameter(
    best: Any, key: str = "train.lr", *, bootstrap: int = 1000, seed: int = 0
) -> HyperparameterLaw:
    """Fit the best ``key`` against N (a straight line in log-log space, least squares,
    bootstrap interval): :func:`scalelab.laws.loglog_slope` on the rows of ``best_trials``
    (one per size; several budgets or seeds per size are fitted as they are)."""
    import pandas as pd

    from scalelab.laws import loglog_slope

    df = pd.DataFrame(best)
    if key not in df.columns:
        raise FitError(f"no searched key {key!r} in these trials; searched: "
                       f"{', '.join(c for c in df.columns if '.' in c and not c.endswith(('_lo', '_hi')))}")  # fmt: skip
    pts = df[df["best"].notna() & df[key].notna() & (df["N"] > 0)]
    pts = pts.assign(N=pts["N"].astype(float), value=pts[key].astype(float))
    if pts["N"].nunique() < 2:
        raise FitError(
            f"fitting {key} against N needs best values at 2 or more sizes, got {pts['N'].nunique()}"
        )
    if not (pts["value"] > 0).all():
        raise FitError(f"{key} must be positive to fit a power law")
    law = loglog_slope(pts, x="N", y="value", bootstrap=bootstrap, seed=seed)
    k, alpha = float(law.params["k"]), float(law.params["alpha"])
    ci = {name: (float(lo), float(hi)) for name, (lo, hi) in law.ci.items()} if law.ci else {}
    return HyperparameterLaw(
        key,
        k,
        alpha,
        ci,
        len(pts),
        [(float(n), float(v)) for n, v in zip(pts["N"], pts["value"], strict=True)],
    )


def sampler_comparison(db: str | Path, study: str, *, within: float = 0.01) -> Any:
    """Samplers side by side on each group of ``study`` (from Optuna's own record, in trial
    order): ``size``, ``sampler``, ``trials`` (complete), ``best``, the best ``params``, and
    ``to_within``: how many trials it took to come within ``within`` (relative) of its own
    best value (the first trial counts 1)."""
    import optuna
    import pandas as pd

    from scalelab.results.store import Store, json_column
    from scalelab.tune.storage import optuna_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with Store(db, create=False) as store:
        rows_ = store.query(
            "SELECT size, extra_json FROM points WHERE study = ? AND kind = 'trial'", (study,)
        )
    sizes = {
        json_column(r["extra_json"], "extra_json", f"{study} (size {r['size']})", db).get(
            "group"
        ): r["size"]
        for r in rows_
    }
    storage = optuna_storage(db)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        parts = summary.study_name.split("/")
        if len(parts) != 3 or parts[0] != study:
            continue
        base, sampler = parts[1], parts[2]
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
        if not trials:
            continue
        trials = sorted(trials, key=lambda t: t.number)
        best = min(trials, key=lambda t: t.value)
        reach = next(i + 1 for i, t in enumerate(trials) if t.value <= best.value * (1 + within))
        rows.append({"group": base, "size": sizes.get(summary.study_name),
                     "sampler": sampler, "trials": len(trials), "best": best.value,
                     **best.params, "to_within": reach})  # fmt: skip
    return pd.DataFrame(rows)


__all__ = [
    "HyperparameterLaw",
    "best_trials",
    "fit_hyperparameter",
    "sampler_comparison",
    "trial_points",
]
