"""Compute-optimal allocation from a law: N and D for a budget, and the budget for a loss.

With C = 6ND (Kaplan et al. 2020, sec. 2.1) and L = E + A/N^alpha + B/D^beta, the optimum
has a closed form (Hoffmann et al. 2022, eq. 4):

    N_opt = G (C/6)^(beta/(alpha+beta)),  D_opt = G^-1 (C/6)^(alpha/(alpha+beta)),
    G = (alpha A / (beta B))^(1/(alpha+beta)),

so the optimal loss is L*(C) = E + K (C/6)^-gamma with gamma = alpha beta / (alpha+beta)
and K = A G^-alpha + B G^beta, which inverts to the compute needed for a target loss.
The tied form (alpha = beta) and Gadre et al. 2024's over-training form are Chinchilla
laws when C = 6ND (``as_chinchilla``) and use the same closed form. Other forms (Kaplan's,
the data-constrained law under a token budget) are minimised numerically along 6ND = C.

When the compute-optimal D exceeds the unique tokens U, tokens must repeat; the
data-constrained law of Muennighoff et al. 2023 (eq. 5) then gives the loss under
repetition and the allocation that is optimal given U. For a plain Chinchilla law the
repetition constants R_D*, R_N* are Muennighoff et al.'s (fitted on C4); say so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from scalelab.errors import ScalelabError
from scalelab.intervals import percentile_interval
from scalelab.laws.forms import R_D_STAR, R_N_STAR, DataConstrained, as_chinchilla
from scalelab.laws.law import Law
from scalelab.laws.published import published_law, resolve_law


class PlanError(ScalelabError):
    """A plan cannot be made from this law and these inputs (unreachable loss, wrong form)."""


_TWO_VARIABLE = ("chinchilla", "chinchilla-tied", "overtrain", "kaplan", "data-constrained")
_CLOSED_FORM = ("chinchilla", "chinchilla-tied", "overtrain", "data-constrained")


@dataclass
class Plan:
    """A compute-optimal allocation (``plan``) or the compute for a target loss."""

    law: str
    compute: float
    N: float
    D: float
    tokens_per_param: float
    loss: float
    loss_interval: tuple[float, float] | None = None
    N_interval: tuple[float, float] | None = None
    D_interval: tuple[float, float] | None = None
    target_loss: float | None = None
    compute_interval: tuple[float, float] | None = None
    unique_tokens: float | None = None
    epochs: float | None = None
    constrained: dict[str, Any] | None = None
    ci_level: float = 0.95
    warnings: list[str] = field(default_factory=list)
    # values named for N by fitted hyperparameter laws (``plan --hyper``; tune.trends)
    hyperparameters: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [_num(x) for x in v]
            elif isinstance(v, float):
                d[k] = _num(v)
        return d


def _num(x: Any) -> Any:
    return float(x) if x is not None and np.isfinite(x) else None


def _law_name(law: Law) -> str:
    return law.name or f"fitted {law.form}"


# -- optimum along 6ND = C --------------------------------------------------------------------
def chinchilla_optimum(params: Mapping[str, float], C: Any) -> tuple[Any, Any]:
    """N_opt, D_opt of the Chinchilla form at compute C (Hoffmann et al. 2022, eq. 4)."""
    A, B, al, be = (float(params[k]) for k in ("A", "B", "alpha", "beta"))
    c6 = np.asarray(C, dtype=float) / 6.0
    if min(A, B, al, be) <= 0:
        # no interior optimum (a bootstrap refit can land on a flat or rising term):
        # NaN, which intervals skip, rather than a complex power
        return np.full_like(c6, np.nan), np.full_like(c6, np.nan)
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    return G * c6 ** (be / (al + be)), c6 ** (al / (al + be)) / G


def chinchilla_compute_for_loss(params: Mapping[str, float], target: float) -> float:
    """The compute at which the optimal loss E + K (C/6)^-gamma equals ``target``."""
    E, A, B, al, be = (params[k] for k in ("E", "A", "B", "alpha", "beta"))
    if target <= E:
        return float("inf")
    G = (al * A / (be * B)) ** (1.0 / (al + be))
    gamma = al * be / (al + be)
    K = A * G**-al + B * G**be
    return float(6.0 * ((target - E) / K) ** (-1.0 / gamma))


def _numeric_optimum(loss_at: Callable[[Any, Any], Any], C: float) -> tuple[float, float]:
    """argmin over N of loss_at(N, C/(6N)): a log-spaced scan, then bounded Brent."""
    hi = np.log(C / 6.0)  # D >= 1 token
    grid = np.linspace(0.0, hi, 2001)
    with np.errstate(all="ignore"):
        vals = np.asarray(loss_at(np.exp(grid), C / (6.0 * np.exp(grid))), dtype=float)
    vals = np.where(np.isfinite(vals), vals, np.inf)
    i = int(np.argmin(vals))
    lo_b, hi_b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]

    def f(ln: float) -> float:
        n = np.exp(ln)
        return float(np.asarray(loss_at(np.array([n]), np.array([C / (6.0 * n)])))[0])

    if hi_b > lo_b:
        res = minimize_scalar(f, bounds=(lo_b, hi_b), method="bounded", options={"xatol": 1e-10})
        ln = float(res.x) if res.fun <= vals[i] else grid[i]
    else:
        ln = grid[i]
    n = float(np.exp(ln))
    return n, C / (6.0 * n)


def _dc_params(law: Law) -> tuple[dict[str, float], str]:
    """Parameters of the data-constrained law to apply to ``law`` under a token budget."""
    if law.form == "data-constrained":
        return dict(law.params), _law_name(law)
    ref = published_law("muennighoff2023").params
    p = as_chinchilla(law.form, law.params)
    p[R_D_STAR], p[R_N_STAR] = ref[R_D_STAR], ref[R_N_STAR]
    return p, "muennighoff2023 (R_D*, R_N*) on this law's base"


def _dc_loss(params: Mapping[str, float], U: float) -> Callable[[Any, Any], Any]:
    form = DataConstrained(fixed={k: params[k] for k in ("E", "A", "B", "alpha", "beta")})

    def loss_at(N: Any, D: Any) -> Any:
        N = np.atleast_1d(np.asarray(N, dtype=float))
        D = np.atleast_1d(np.asarray(D, dtype=float))
        return form.predict(params, {"N": N, "D": D, "unique_tokens": np.full_like(D, U)})

    return loss_at


def _optimum(law: Law, params: Mapping[str, float], C: float) -> tuple[float, float]:
    if law.form in _CLOSED_FORM:
        n, d = chinchilla_optimum(as_chinchilla(law.form, params), C)
        return float(n), float(d)
    form = law.functional_form

    def loss_at(N: Any, D: Any) -> Any:
        return form.predict(params, {"N": np.atleast_1d(N), "D": np.atleast_1d(D)})

    return _numeric_optimum(loss_at, C)


def _interval(
    values: list[float], level: float, *, keep_infinite: bool = False
) -> tuple[float, float] | None:
    lo, hi = percentile_interval(values, level, keep_infinite=keep_infinite)
    return None if np.isnan(lo) else (lo, hi)


def _check_law(law: Law) -> None:
    if law.form not in _TWO_VARIABLE:
        raise PlanError(
            f"a plan needs a law of both N and D ({', '.join(_TWO_VARIABLE)}); "
            f"the {law.form} law depends on {law.x or 'one variable'} only"
        )


def plan(
    law: Law | str,
    compute: float | None = None,
    *,
    target_loss: float | None = None,
    unique_tokens: float | None = None,
    level: float | None = None,
) -> Plan:
    """The compute-optimal N and D for ``compute`` FLOPs (C = 6ND), or, with ``target_loss``,
    the least compute that reaches that loss and its allocation.

    ``law``: a Law, a preset name (hoffmann2022, epoch2024, muennighoff2023, kaplan2020) or a
    FIT.json path. ``unique_tokens``: the unique tokens available; when the optimal D exceeds
    them, the plan adds the data-constrained allocation (Muennighoff et al. 2023) and a warning.
    """
    law = resolve_law(law)
    _check_law(law)
    if (compute is None) == (target_loss is None):
        raise PlanError("give exactly one of compute (FLOPs) or target_loss")
    if compute is not None and not (np.isfinite(compute) and compute > 0):
        raise PlanError(f"compute must be a positive number of FLOPs, not {compute}")
    if unique_tokens is not None and not (np.isfinite(unique_tokens) and unique_tokens > 0):
        raise PlanError(f"unique_tokens must be a positive token count, not {unique_tokens}")
    level = level or law.ci_level
    samples = law.sample_params()
    notes: list[str] = []

    compute_interval = None
    if target_loss is not None:
        compute = _compute_for(law, law.params, target_loss)
        if not np.isfinite(compute):
            floor = law.params.get("E")
            why = f" (its irreducible loss E = {floor:.4g})" if floor is not None else ""
            raise PlanError(
                f"no compute reaches loss {target_loss:g} under the {_law_name(law)} law{why}; "
                "choose a target above E"
            )
        if samples:
            cs = [_compute_for(law, p, target_loss) for p in samples]
            compute_interval = _interval(
                [c if np.isfinite(c) else np.inf for c in cs], level, keep_infinite=True
            )
            unreachable = sum(not np.isfinite(c) for c in cs)
            if unreachable:
                notes.append(
                    f"{unreachable} of {len(cs)} bootstrap refits cannot reach loss "
                    f"{target_loss:g} (their E is above it): the upper end is unbounded"
                )
    assert compute is not None
    N, D = _optimum(law, law.params, compute)
    if not (compute > 0 and N > 0 and D > 0 and np.isfinite(N) and np.isfinite(D)):
        raise PlanError(
            f"the {_law_name(law)} law gives no model size for "
            + (f"loss {target_loss:g}" if target_loss is not None else f"{compute:g} FLOPs")
            + " (outside the range it describes): choose a "
            + ("lower target loss" if target_loss is not None else "larger compute budget")
        )
    loss = float(law.predict(N=N, D=D))
    loss_iv = n_iv = d_iv = None
    if samples:
        form = law.functional_form
        cols = {"N": np.array([N]), "D": np.array([D]), "unique_tokens": np.array([D])}
        loss_iv = _interval([float(form.predict(p, cols)[0]) for p in samples], level)
        opts = [_optimum(law, p, compute) for p in samples]
        n_iv = _interval([o[0] for o in opts], level)
        d_iv = _interval([o[1] for o in opts], level)

    result = Plan(
        law=_law_name(law),
        compute=float(compute),
        N=N,
        D=D,
        tokens_per_param=D / N,
        loss=loss,
        loss_interval=loss_iv,
        N_interval=n_iv,
        D_interval=d_iv,
        target_loss=target_loss,
        compute_interval=compute_interval,
        unique_tokens=unique_tokens,
        epochs=None if unique_tokens is None else D / unique_tokens,
        ci_level=level,
        warnings=notes,
    )
    if not samples:
        result.warnings.append(
            f"the {_law_name(law)} law carries no bootstrap samples: no interval on the loss"
        )
    if unique_tokens is not None and unique_tokens < D:
        _constrain(result, law, samples, unique_tokens, level)
    return result


def _compute_for(law: Law, params: Mapping[str, float], target: float) -> float:
    if law.form in _CLOSED_FORM:
        return chinchilla_compute_for_loss(as_chinchilla(law.form, params), target)

    # numeric: the optimal loss falls monotonically with C; bisect on log C
    def best(logc: float) -> float:
        n, d = _optimum(law, params, float(np.exp(logc)))
        return float(
            law.functional_form.predict(params, {"N": np.array([n]), "D": np.array([d])})[0]
        )

    lo, hi = np.log(1e6), np.log(1e40)
    if best(hi) > target:
        return float("inf")
    if best(lo) <= target:
        return float(np.exp(lo))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if best(mid) > target else (lo, mid)
        if hi - lo < 1e-9:
            break
    return float(np.exp(hi))


def _constrain(result: Plan, law: Law, samples: list[dict[str, float]], U: float, level: float):
    """Add the data-constrained allocation when the optimal D exceeds the unique tokens."""
    C = result.compute
    epochs = result.D / U
    if law.form == "kaplan":
        result.warnings.append(
            f"the compute-optimal D = {result.D:.3g} tokens exceeds the {U:.3g} unique tokens "
            f"({epochs:.3g} epochs); Kaplan's law has no repetition term: no adjustment made"
        )
        return
    params, origin = _dc_params(law)
    loss_at = _dc_loss(params, U)
    n, d = _numeric_optimum(loss_at, C)
    loss = float(loss_at(n, d)[0])
    loss_naive = float(loss_at(result.N, result.D)[0])
    iv = None
    if samples:
        vals = []
        for p in samples:
            q = dict(p) if law.form == "data-constrained" else as_chinchilla(law.form, p)
            q.setdefault(R_D_STAR, params[R_D_STAR])
            q.setdefault(R_N_STAR, params[R_N_STAR])
            vals.append(float(_dc_loss(q, U)(n, d)[0]))
        iv = _interval(vals, level)
    result.constrained = {
        "N": n,
        "D": d,
        "tokens_per_param": d / n,
        "epochs": d / U,
        "loss": loss,
        "loss_interval": None if iv is None else list(iv),
        "loss_at_unconstrained_allocation": loss_naive,
        R_D_STAR: params[R_D_STAR],
        R_N_STAR: params[R_N_STAR],
        "repetition_from": origin,
    }
    result.warnings.append(
        f"the compute-optimal D = {result.D:.3g} tokens exceeds the {U:.3g} unique tokens "
        f"({epochs:.3g} epochs): with repetition (Muennighoff et al. 2023) the optimum moves "
        f"to N = {n:.3g}, D = {d:.3g} ({d / U:.3g} epochs), predicted loss {loss:.4f} "
        f"instead of {result.loss:.4f} with unique data"
    )
    if d / U > params[R_D_STAR]:
        result.warnings.append(
            f"{d / U:.3g} epochs is beyond R_D* = {params[R_D_STAR]:.1f}: repeated tokens "
            "there are worth little; more unique data would help more than more compute"
        )
