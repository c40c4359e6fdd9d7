"""The ``[tune]`` section of a study and its search space ``[tune.space]``.

A study becomes a search by adding::

    [tune]
    sampler = "tpe"          # grid, random, tpe, gp, cmaes (Optuna's samplers)
    trials = 12              # per group (each size x budget x seed x grid point of the study)
    metric = "val_loss"      # val_loss, best_val_loss, val_bpb, train_loss (minimised)
    pruner = "median"        # none, median, hyperband: stop bad trials from their val curve
    seed = 0                 # the sampler's seed

    [tune.space]             # run-config keys
    "train.lr" = { low = 1e-4, high = 3e-2, log = true }   # float range (n = points for grid)
    "train.batch_size" = [16, 32, 64]                       # categorical
    "model.n_head" = { low = 2, high = 8, step = 2 }         # int range (int config field)

Everything here is validated when the file is read, torch- and Optuna-free, so a bad
space is one line before any training starts.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scalelab.config import config_sections, read_toml
from scalelab.errors import ConfigError, did_you_mean
from scalelab.study.studyfile import check_key

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "hyperband")
METRICS = ("val_loss", "best_val_loss", "val_bpb", "train_loss")
TUNE_KEYS = ("sampler", "trials", "metric", "pruner", "seed", "space", "startup")
RANGE_KEYS = ("low", "high", "log", "step", "n")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a run-config key and its range or choices."""

    key: str  # "train.lr"
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    n: int | None = None  # grid points of a float range (grid sampler)
    choices: tuple[Any, ...] = ()

    def grid(self) -> list[Any]:
        """The values a grid search visits: the choices, the int range by its step, or ``n``
        points of a float range (geometric when ``log``), ends included."""
        if self.kind == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            step = int(self.step or 1)
            if self.log:
                out, v = [], int(self.low)
                while v <= self.high:
                    out.append(v)
                    v *= 2
                return out
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is not None:
            count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
            return [self.low + i * self.step for i in range(count)]
        if self.n is None:
            raise ConfigError(
                f"tune.space.{self.key!r}: a grid over a float range needs its number of "
                "points: add n = 5 (geometric when log = true), or step, or list the values"
            )
        if self.n == 1:
            return [self.low]
        lo, hi, last = self.low, self.high, self.n - 1
        if self.log:
            a, b = math.log(lo), math.log(hi)
            inner = [math.exp(a + (b - a) * i / last) for i in range(1, last)]
        else:
            inner = [lo + (hi - lo) * i / last for i in range(1, last)]
        # the ends exactly as written (no rounding out of range), the inner points to 12
        # significant digits (2^-8 is 0.00390625, not 0.003906250000000001)
        return [lo, *(float(f"{v:.12g}") for v in inner), hi]

    def suggest(self, trial: Any) -> Any:
        """Ask an Optuna trial for this dimension's value."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            step = 1 if self.log else int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )  # type: ignore[arg-type]
        return trial.suggest_float(
            self.key,
            float(self.low),
            float(self.high),
            log=self.log,
            step=self.step,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class TuneSpec:
    """A parsed ``[tune]`` section."""

    space: tuple[Param, ...]
    sampler: str = "tpe"
    trials: int | None = None  # per group; None: the grid's size (grid), else 20
    metric: str = "val_loss"
    pruner: str = "none"
    seed: int = 0
    startup: int = 5  # trials before TPE/GP model the objective, and before median prunes

    def grid_size(self) -> int:
        return math.prod(len(p.grid()) for p in self.space)

    def trials_per_group(self, override: int | None = None) -> int:
        if override is not None:
            return override
        if self.trials is not None:
            return self.trials
        return self.grid_size() if self.sampler == "grid" else 20

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_type(section: str, key: str) -> Any:
    hint = typing.get_type_hints(config_sections()[section])[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _number(where: str, name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where}: {name} must be a finite number, got {v!r}")
    return v


def parse_param(key: str, value: Any) -> Param:
    where = f"tune.space.{key!r}"
    section, name = check_key(key, where="tune.space")
    ftype = _field_type(section, name)
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"{where}: an empty list of choices; give at least one value")
        if len({repr(v) for v in value}) != len(value):
            raise ConfigError(f"{where}: repeated choices {value}")
        return Param(key, "categorical", choices=tuple(value))
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}: give a range {{ low = ..., high = ... }} or a list of values, got {value!r}"
        )
    for k in value:
        if k not in RANGE_KEYS:
            raise ConfigError(f"{where}: unknown key {k!r}{did_you_mean(k, RANGE_KEYS)}")
    if "low" not in value or "high" not in value:
        raise ConfigError(f"{where}: a range needs both low and high")
    low, high = _number(where, "low", value["low"]), _number(where, "high", value["high"])
    if not low < high:
        raise ConfigError(f"{where}: low ({low:g}) must be below high ({high:g})")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low:g}")
    step = value.get("step")
    if step is not None and (_number(where, "step", step) <= 0 or step > high - low):
        raise ConfigError(f"{where}: step must be in (0, high - low], got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: step and log = true do not mix (Optuna): drop one")
    n = value.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"{where}: n (grid points) must be a positive integer, got {n!r}")
    if ftype is int:
        if not (float(low).is_integer() and float(high).is_integer()):
            raise ConfigError(f"{where}: {key} is an integer key: low and high must be whole")
        if step is not None and not float(step).is_integer():
            raise ConfigError(f"{where}: {key} is an integer key: step must be whole")
        return Param(key, "int", int(low), int(high), log, step, n)
    if ftype is not float:
        raise ConfigError(
            f'{where}: {key} is not a number; list its values instead (e.g. ["a", "b"])'
        )
    return Param(key, "float", float(low), float(high), log, step, n)


def _flatten(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": {...}}}`` (an unquoted dotted TOML key) -> ``{"train.lr": {...}}``;
    a table holding ``low`` is a range, not a section."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not any(k in value for k in RANGE_KEYS):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def parse_tune(values: Mapping[str, Any], *, grid_keys: Sequence[str] = ()) -> TuneSpec:
    """Parse a ``[tune]`` table (``grid_keys``: the study's own grid axes, which the search
    may not also vary)."""
    if not isinstance(values, Mapping):
        raise ConfigError("[tune] must be a table")
    for key in values:
        if key not in TUNE_KEYS:
            raise ConfigError(f"unknown key tune.{key}{did_you_mean(key, TUNE_KEYS)}")
    sampler = values.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(
            f"tune.sampler = {sampler!r} is not one of {', '.join(SAMPLERS)}"
            f"{did_you_mean(str(sampler), SAMPLERS)}"
        )
    pruner = values.get("pruner", "none")
    if pruner not in PRUNERS:
        raise ConfigError(
            f"tune.pruner = {pruner!r} is not one of {', '.join(PRUNERS)}"
            f"{did_you_mean(str(pruner), PRUNERS)}"
        )
    metric = values.get("metric", "val_loss")
    if metric not in METRICS:
        raise ConfigError(
            f"tune.metric = {metric!r} is not one of {', '.join(METRICS)}"
            f"{did_you_mean(str(metric), METRICS)}"
        )
    for name in ("trials", "seed", "startup"):
        v = values.get(name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"tune.{name} must be a non-negative integer, got {v!r}")
    if values.get("trials") == 0:
        raise ConfigError("tune.trials must be at least 1")
    raw = values.get("space")
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(
            'tune.space is required: a table of run-config keys, e.g. "train.lr" = '
            "{ low = 1e-4, high = 3e-2, log = true }"
        )
    space = tuple(parse_param(k, v) for k, v in _flatten(raw).items())
    for p in space:
        if p.key in grid_keys:
            raise ConfigError(
                f"{p.key} is both a study.grid axis and in tune.space: search it or grid it"
            )
        if p.key in ("train.tokens", "train.tokens_per_param", "train.epochs", "train.seed"):
            raise ConfigError(f"tune.space: {p.key} is set by the study's own axes, not searched")
    spec = TuneSpec(
        space=space,
        sampler=sampler,
        trials=values.get("trials"),
        metric=metric,
        pruner=pruner,
        seed=values.get("seed", 0),
        startup=values.get("startup", 5),
    )
    if sampler == "grid":
        spec.grid_size()  # every dimension must be discrete: says which one is not
    return spec


def load_tune(path: str | Any) -> TuneSpec:
    """The ``[tune]`` section of a study TOML file."""
    values = read_toml(path)
    if "tune" not in values:
        raise ConfigError(
            f"{path}: no [tune] section: add [tune] and [tune.space] to search, "
            "or run it with `scalelab sweep`"
        )
    grid = values.get("study", {}).get("grid", {})
    keys = list(_flatten(grid)) if isinstance(grid, Mapping) else []
    return parse_tune(values["tune"], grid_keys=keys)


__all__ = ["METRICS", "PRUNERS", "SAMPLERS", "Param", "TuneSpec", "load_tune", "parse_tune"]
