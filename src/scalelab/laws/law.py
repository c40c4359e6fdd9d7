"""The ``Law`` dataclass: a fitted (or published) form with its uncertainty and checks.

``Law.to_dict()`` is the ``scalelab fit --json`` object and the FIT.json file that
``scalelab plan --law FIT.json`` reads. Its keys ``params``, ``objective``, ``ci`` and
``extrapolation`` are a contract (docs/internals.md, "Laws"); the other keys
(``form``, ``bootstrap``, ...) describe the fit well enough to rebuild the Law.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import atomic
from scalelab.errors import FitError, read_user_text
from scalelab.intervals import percentile_interval
from scalelab.laws.forms import FORMS, Array, Form, make_form

CI_LEVEL = 0.95


@dataclass
class Law:
    """A functional form with parameters, uncertainty and its fit report.

    * ``params``: the published parameter names (Chinchilla: ``E``, ``A``, ``B``,
      ``alpha``, ``beta``) -> values.
    * ``objective``: the Huber objective reached (sum over points), or ``None`` for a
      published law.
    * ``ci``: the bootstrap percentile interval (``ci_level``) of every fitted parameter.
    * ``extrapolation``: the leave-largest-out check (see :func:`scalelab.laws.fit_law`).
    * ``samples``: the bootstrap refits, one row per refit, columns in ``form.public``
      order; they give the intervals of predictions and plans.
    """

    form: str  # the functional form's name (a key of FORMS); the Form itself is .functional_form
    params: dict[str, float]
    objective: float | None = None
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    extrapolation: dict[str, Any] | None = None
    x: str | None = None  # the variable of one-variable forms (power, bnsl, slope)
    fixed: tuple[str, ...] = ()  # parameters held fixed in the fit
    n_points: int = 0
    delta: float | None = None
    samples: Array | None = None
    seed: int | None = None
    ci_level: float = CI_LEVEL
    name: str | None = None  # a preset's name
    source: str | None = None  # citation of a published law
    notes: str | None = None
    subset: dict[str, Any] | None = None  # the min_n / min_c bounds and the points kept
    resample: str | None = None  # what the bootstrap resampled: "row" or "size"
    selection: dict[str, Any] | None = None  # select_law's table when the form was chosen
    residuals: Array | None = None  # log residuals of the fit: predict_interval(run=True)

    # -- the maths ---------------------------------------------------------------------------
    @property
    def functional_form(self) -> Form:
        fixed = {k: self.params[k] for k in self.fixed}
        return make_form(self.form, x=self.x, fixed=fixed)

    @property
    def formula(self) -> str:
        return self.functional_form.formula

    def _columns(self, inputs: Mapping[str, Any]) -> tuple[dict[str, Array], bool]:
        given = {k: v for k, v in inputs.items() if v is not None}
        scalar = all(np.ndim(v) == 0 for v in given.values())
        cols = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in given.items()}
        need = self.functional_form.inputs
        if "C" in need and "C" not in cols and {"N", "D"} <= cols.keys():
            cols["C"] = 6.0 * cols["N"] * cols["D"]
        if "unique_tokens" in need and "unique_tokens" not in cols and "D" in cols:
            cols["unique_tokens"] = cols["D"]  # no repetition
        missing = [k for k in need if k not in cols]
        if missing:
            raise FitError(
                f"predict() of the {self.form} law needs {', '.join(need)}; "
                f"missing {', '.join(missing)}"
            )
        shape = np.broadcast_shapes(*(cols[k].shape for k in need))
        return {k: np.broadcast_to(cols[k], shape).astype(float) for k in need}, scalar

    def predict(
        self,
        N: Any = None,
        D: Any = None,
        C: Any = None,
        unique_tokens: Any = None,
        **inputs: Any,
    ) -> Any:
        """Predicted loss; a float for scalar inputs, else an array.

        ``C`` defaults to 6ND for laws of compute; ``unique_tokens`` defaults to ``D``
        (no repetition) for the data-constrained law; other one-variable laws take their
        variable by name (``x=`` works too).
        """
        given = {"N": N, "D": D, "C": C, "unique_tokens": unique_tokens, **inputs}
        if "x" in given and self.x is not None:
            given[self.x] = given.pop("x")
        cols, scalar = self._columns(given)
        out = self.functional_form.predict(self.params, cols)
        return float(out[0]) if scalar else out

    def sample_params(self) -> list[dict[str, float]]:
        """The bootstrap refits as parameter dicts (empty for a law without bootstrap)."""
        if self.samples is None:
            return []
        names = self.functional_form.public
        return [dict(zip(names, map(float, row), strict=True)) for row in self.samples]

    def predict_interval(
        self, level: float | None = None, *, run: bool = False, **inputs: Any
    ) -> tuple[Any, Any]:
        """The bootstrap percentile interval of the predicted loss at ``inputs``: of the law
        (its parameters' uncertainty), or with ``run=True`` of one new run's loss, each
        refit's prediction times exp of a log residual of the fit drawn at random (Davison &
        Hinkley 1997, alg. 6.4; the interval whose coverage ``select_law`` measures)."""
        if self.samples is None or len(self.samples) == 0:
            raise FitError(
                f"the {self.name or self.form} law has no bootstrap samples: "
                "fit it with bootstrap > 0 to get intervals"
            )
        if run and (self.residuals is None or len(self.residuals) == 0):
            raise FitError("this law keeps no residuals: fit it with select_law for run=True")
        cols, scalar = self._columns(inputs)
        preds = np.stack([self.functional_form.predict(p, cols) for p in self.sample_params()])
        if run:
            assert self.residuals is not None
            rng = np.random.default_rng(self.seed or 0)
            preds = preds * np.exp(
                self.residuals[rng.integers(0, len(self.residuals), preds.shape)]
            )
        lo, hi = percentile_interval(preds, level or self.ci_level)
        return (float(lo[0]), float(hi[0])) if scalar else (lo, hi)

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self, samples: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "form": self.form,
            "formula": self.formula,
            "params": {k: float(v) for k, v in self.params.items()},
            "objective": None if self.objective is None else float(self.objective),
            "ci": {k: [float(lo), float(hi)] for k, (lo, hi) in self.ci.items()},
            "ci_level": self.ci_level,
            "extrapolation": self.extrapolation,
        }
        if self.x is not None:
            d["x"] = self.x
        if self.fixed:
            d["fixed"] = list(self.fixed)
        d["n_points"] = self.n_points
        if self.delta is not None:
            d["huber_delta"] = self.delta
        for k in ("name", "source", "notes", "subset", "resample", "selection"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.residuals is not None:
            d["residuals"] = [float(v) for v in self.residuals]
        if self.samples is not None:
            d["bootstrap"] = {"n": len(self.samples), "seed": self.seed}
            if samples:
                d["bootstrap"]["columns"] = list(self.functional_form.public)
                d["bootstrap"]["samples"] = [[float(v) for v in row] for row in self.samples]
        return _finite(d)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "the law") -> Law:
        if not isinstance(d, Mapping):
            raise FitError(f"{where} is not a JSON object written by `scalelab fit --out`")
        form = d.get("form", "chinchilla")
        if form not in FORMS:
            raise FitError(f"{where}: unknown form {form!r}; expected one of {', '.join(FORMS)}")
        params = d.get("params")
        if not isinstance(params, Mapping):
            raise FitError(f"{where} has no 'params' object; write it with `scalelab fit --out`")
        _check_params(form, params, where)
        try:
            return cls._from_checked(d, form, params, where)
        except (TypeError, ValueError, IndexError, AttributeError) as e:
            raise FitError(
                f"{where}: a field has the wrong type or shape ({type(e).__name__}: {e}); "
                "write it with `scalelab fit --out`"
            ) from None

    @classmethod
    def _from_checked(
        cls, d: Mapping[str, Any], form: str, params: Mapping[str, Any], where: str
    ) -> Law:
        law = cls(
            form=form,
            params={k: float(v) for k, v in params.items()},
            objective=d.get("objective"),
            ci={k: (float(v[0]), float(v[1])) for k, v in (d.get("ci") or {}).items()},
            extrapolation=d.get("extrapolation"),
            x=d.get("x"),
            fixed=tuple(d.get("fixed") or ()),
            n_points=int(d.get("n_points") or 0),
            delta=d.get("huber_delta"),
            ci_level=float(d.get("ci_level") or CI_LEVEL),
            name=d.get("name"),
            source=d.get("source"),
            notes=d.get("notes"),
            subset=d.get("subset"),
            resample=d.get("resample"),
            selection=d.get("selection"),
        )
        if d.get("residuals"):
            law.residuals = np.asarray(d["residuals"], dtype=float)
        missing = [p for p in law.functional_form.public if p not in law.params]
        if missing:
            raise FitError(f"{where}: the {form} law needs params {', '.join(missing)}")
        boot = d.get("bootstrap") or {}
        if boot.get("samples"):
            cols = boot.get("columns") or list(law.functional_form.public)
            arr = np.asarray(boot["samples"], dtype=float)
            order = [cols.index(p) for p in law.functional_form.public]
            law.samples = arr[:, order]
            law.seed = boot.get("seed")
        return law

    def save(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as JSON atomically (:mod:`scalelab.atomic`)."""
        return atomic.write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: str | Path) -> Law:
        path = Path(path)
        try:
            d = json.loads(read_user_text(path, "law file", FitError))
        except FileNotFoundError:
            raise FitError(f"law file {str(path)!r} does not exist") from None
        except (OSError, json.JSONDecodeError) as e:
            raise FitError(f"cannot read the law file {str(path)!r}: {e}") from None
        return cls.from_dict(d, where=str(path))


# the forms L = E + A / N^alpha + B / D^beta (and kin): E >= 0, the rest > 0 (a loss that
# falls with N and D); a law file that says otherwise was edited by hand or damaged
_POSITIVE_FORMS = ("chinchilla", "chinchilla-tied", "overtrain", "data-constrained")


def _check_params(form: str, params: Mapping[str, Any], where: str) -> None:
    for k, v in params.items():
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            raise FitError(f"{where}: params.{k} = {v!r} is not a finite number")
        if form in _POSITIVE_FORMS and (
            (k in ("A", "B", "alpha", "beta") and v <= 0) or (k == "E" and v < 0)
        ):
            what = "an exponent" if k in ("alpha", "beta") else "a coefficient"
            raise FitError(
                f"{where}: params.{k} = {v!r}, but {k} is {what} of the {form} law and must be "
                f"{'>= 0' if k == 'E' else 'positive'}"
            )


def _finite(obj: Any) -> Any:
    """Replace NaN/inf by None so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
