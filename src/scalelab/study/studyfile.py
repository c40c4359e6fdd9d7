"""The study TOML: a ``[study]`` section that declares the grid, plus shared run sections.

A study file looks like::

    [study]
    name = "markov-ladder"
    corpus = "markov:order=1,vocab=8"     # -> data.corpus (a list makes it an axis)
    tokenizer = "bytes"                   # -> data.tokenizer
    arch = ["transformer"]                # one name or a list (an axis)
    params = [3e4, 1e5, 3e5]              # target parameter counts -> shapes via size_for
    tokens_per_param = [5, 20]            # data budgets (see below)
    seeds = [0, 1]
    [study.grid]                          # any other axis over a RunConfig key
    "train.lr" = [1e-3, 3e-3]

    [model]   # shared ModelConfig keys
    [data]    # shared DataConfig keys
    [train]   # shared TrainConfig keys

The ladder is either ``params`` (target counts of ``params_kind`` parameters, turned
into shapes by ``scalelab.accounting.size_for``) or explicit ``[[study.sizes]]``
tables of ModelConfig keys (plus an optional ``name``). Data budgets are the union
of ``tokens = [...]``, ``tokens_per_param = [...]`` and ``epochs = [...]``; with
``fraction = [...]`` the epochs are taken over that fraction of the training split
(a data-constrained study in the sense of Muennighoff et al. 2023: unique tokens
``fraction * corpus``, seen ``epochs`` times). ``select = [...]`` makes data selections
an axis: selection files written by ``scalelab select`` (paths relative to the study
file) and ``"full"`` for the whole training split; with ``tokens`` fixed a smaller
selection is repeated more, with ``epochs`` fixed it is seen for fewer tokens.

Keys are validated when the file is read (unknown keys are rejected with the nearest
valid name); every run of the grid is validated as a ``RunConfig`` when the grid is
expanded (:func:`scalelab.study.expand`).

``budgets = "branches"`` (with ``cooldown = 0.2``, the fraction of each run that cools
down) trains one WSD run per size to its longest budget and branches every shorter budget
off that run's stable phase (:mod:`scalelab.study.branching`): each costs its cooldown.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import ModelConfig, config_sections, read_toml, section_keys
from scalelab.errors import ConfigError, did_you_mean
from scalelab.fmt import si
from scalelab.plugin import parse_study_keys, study_key_plugins

STUDY_KEYS = (
    "name",
    "description",
    "corpus",
    "tokenizer",
    "arch",
    "sizes",
    "params",
    "params_kind",
    "size_for",
    "tokens",
    "tokens_per_param",
    "epochs",
    "fraction",
    "budgets",  # "branches": one WSD run per size, shorter budgets branch off it
    "cooldown",  # with budgets = "branches": the cooldown's fraction of each run's length
    "seeds",
    "select",
    "grid",
)  # and the keys the plug-ins own (scalelab.plugin: study.tasks, study.intrinsic, ...)
PARAMS_KINDS = ("non_embedding", "total", "active")
# The data-constrained budget limits the training split to a fraction of the corpus
# (DataConfig.fraction) and repeats it train.epochs times.
FRACTION_KEY = ("data", "fraction")


@dataclass(frozen=True)
class Budget:
    """One data budget: exactly one of ``tokens``, ``tokens_per_param``, ``epochs``,
    and for an epochs budget optionally the ``fraction`` of the corpus repeated."""

    tokens: int | None = None
    tokens_per_param: float | None = None
    epochs: float | None = None
    fraction: float | None = None

    @property
    def label(self) -> str:
        if self.tokens is not None:
            return f"tokens={si(self.tokens, 4)}"  # a label; the config keeps the number
        if self.tokens_per_param is not None:
            return f"tpp={self.tokens_per_param:g}"
        if self.fraction is not None:
            return f"fraction={self.fraction:g}x{self.epochs:g}ep"
        return f"epochs={self.epochs:g}"

    def assignments(self) -> dict[tuple[str, str], Any]:
        """The RunConfig keys this budget sets (the others are cleared)."""
        out: dict[tuple[str, str], Any] = {
            ("train", "tokens"): self.tokens,
            ("train", "tokens_per_param"): self.tokens_per_param,
            ("train", "epochs"): self.epochs,
        }
        if self.fraction is not None:
            out[FRACTION_KEY] = self.fraction
        return out


@dataclass(frozen=True)
class Size:
    """One explicit shape: ModelConfig keys and a label."""

    name: str
    model: Mapping[str, Any]


@dataclass(frozen=True)
class Study:
    """A parsed, validated study. Build one with :func:`load_study` or :func:`study_from_dict`."""

    name: str
    base: Mapping[str, Mapping[str, Any]]  # the shared [model], [data], [train] sections
    archs: tuple[str, ...] = ()
    sizes: tuple[Size, ...] = ()
    params: tuple[float, ...] = ()
    params_kind: str = "non_embedding"
    size_for: Mapping[str, Any] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    seeds: tuple[int, ...] = ()
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (("train.lr", (1e-3, 3e-3)), ...)
    description: str = ""
    source: str | None = None  # the TOML file it came from
    # the plug-ins' [study] keys, checked by their plug-ins: what runs after each finished
    # run (scalelab.plugin.run_after_hooks), e.g. {"tasks": ("cloze",), "intrinsic": {...}}
    after: Mapping[str, Any] = field(default_factory=dict)
    # budgets = "branches": the longest budget of each size is one WSD run and the shorter
    # ones branch off its stable phase (scalelab.study.branching); ``cooldown`` is their
    # train.decay_fraction (None: the [train] section's)
    branches: bool = False
    cooldown: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _as_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"study.{name} is an empty list: give at least one value")
        return value
    return [value]


def _positive_numbers(name: str, value: Any, *, integral: bool = False) -> list[Any]:
    out = []
    for v in _as_list(name, value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ConfigError(f"study.{name} must hold positive numbers, got {v!r}")
        if integral:
            if float(v) != int(v):
                raise ConfigError(f"study.{name} must hold whole numbers, got {v!r}")
            v = int(v)
        out.append(v)
    return out


def _flatten_grid(grid: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": [...]}}`` and ``{"train.lr": [...]}`` both give ``{"train.lr": [...]}``."""
    flat: dict[str, Any] = {}
    for key, value in grid.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten_grid(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def check_key(path: str, *, where: str) -> tuple[str, str]:
    """``"train.lr"`` -> ``("train", "lr")``, rejecting unknown sections and keys by name."""
    parts = path.split(".")
    if len(parts) != 2:
        raise ConfigError(f"{where}: {path!r} must name section.key, e.g. 'train.lr'")
    section, key = parts
    sections = config_sections()
    if section not in sections:
        raise ConfigError(
            f"{where}: unknown section {section!r} in {path!r}{did_you_mean(section, sections)}"
        )
    known = section_keys(section)
    if key not in known:
        raise ConfigError(f"{where}: unknown key {path!r}{did_you_mean(key, known)}")
    return section, key


def _parse_sizes(raw: Any) -> tuple[Size, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, dict) for s in raw):
        raise ConfigError(
            "study.sizes must be a list of tables ([[study.sizes]] with n_layer, d_model, ...)"
        )
    known = [f.name for f in dataclasses.fields(ModelConfig)]
    sizes = []
    for i, table in enumerate(raw):
        table = dict(table)
        name = table.pop("name", None)
        for key in table:
            if key == "arch":
                raise ConfigError(
                    f"study.sizes[{i}].arch: set architectures with study.arch, not per size"
                )
            if key not in known:
                raise ConfigError(
                    f"unknown key study.sizes[{i}].{key}{did_you_mean(key, known)} "
                    "(a size holds [model] keys)"
                )
        if not table:
            raise ConfigError(f"study.sizes[{i}] is empty: give n_layer, d_model, n_head, ...")
        if name is None:
            name = "-".join(f"{k}{v}" for k, v in table.items())
        sizes.append(Size(str(name), table))
    names = [s.name for s in sizes]
    if len(set(names)) != len(names):
        raise ConfigError(f"study.sizes: names must be distinct, got {names}")
    return tuple(sizes)


def _parse_budgets(s: Mapping[str, Any]) -> tuple[Budget, ...]:
    budgets: list[Budget] = []
    if "tokens" in s:
        budgets += [
            Budget(tokens=t) for t in _positive_numbers("tokens", s["tokens"], integral=True)
        ]
    if "tokens_per_param" in s:
        budgets += [
            Budget(tokens_per_param=float(t))
            for t in _positive_numbers("tokens_per_param", s["tokens_per_param"])
        ]
    if "fraction" in s and "epochs" not in s:
        raise ConfigError(
            "study.fraction needs study.epochs: the budget is `epochs` passes over that "
            "fraction of the corpus"
        )
    if "epochs" in s:
        epochs = [float(e) for e in _positive_numbers("epochs", s["epochs"])]
        if "fraction" in s:
            fractions = _positive_numbers("fraction", s["fraction"])
            for f in fractions:
                if f > 1:
                    raise ConfigError(f"study.fraction is a share of the corpus in (0, 1], got {f}")
            budgets += [Budget(epochs=e, fraction=float(f)) for f in fractions for e in epochs]
        else:
            budgets += [Budget(epochs=e) for e in epochs]
    return tuple(budgets)


def study_from_dict(values: Mapping[str, Any], *, source: str | None = None) -> Study:
    """Parse a study from a mapping (a TOML document), validating every key and every run."""
    where = source or "study"
    sections = config_sections()
    for key in values:
        if key not in ("study", "tune") and key not in sections:  # [tune]: scalelab.tune
            allowed = ["study", "tune", *sections]
            raise ConfigError(
                f"{where}: unknown section [{key}]{did_you_mean(key, allowed)}; "
                "a study has [study], [model], [data] and [train]"
            )
    if "study" not in values or not isinstance(values["study"], dict):
        raise ConfigError(f"{where}: a study needs a [study] section with at least a name")
    s = dict(values["study"])
    known = [*STUDY_KEYS, *study_key_plugins()]
    for key in s:
        if key not in known:
            raise ConfigError(f"unknown key study.{key}{did_you_mean(key, known)}")
    name = s.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError('study.name is required: a short name such as "markov-ladder"')
    if any(c in name for c in "/\\\0"):
        raise ConfigError(f"study.name {name!r} must not contain a path separator")

    base: dict[str, dict[str, Any]] = {}
    for section in sections:
        table = values.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table")
        base[section] = dict(table)

    grid: dict[str, list[Any]] = {}
    for key, value in _flatten_grid(s.get("grid", {})).items():
        check_key(key, where="study.grid")
        grid[key] = _as_list(f"grid.{key}", value)
    # shortcuts for the common axes; a list makes any of them an axis
    shortcuts = {"corpus": "data.corpus", "tokenizer": "data.tokenizer"}
    for short, path in shortcuts.items():
        if short in s:
            if path in grid:
                raise ConfigError(f"set {path} once: study.{short} or study.grid, not both")
            values_ = _as_list(short, s[short])
            if len(values_) == 1:
                base[path.split(".")[0]][path.split(".")[1]] = values_[0]
            else:
                grid[path] = values_

    if "select" in s:
        if "data.select" in grid or "select" in base["data"]:
            raise ConfigError("set data.select once: study.select, study.grid or [data], not all")
        grid["data.select"] = _select_axis(s["select"], source)

    archs = tuple(str(a) for a in _as_list("arch", s["arch"])) if "arch" in s else ()
    if archs and "arch" in base["model"]:
        raise ConfigError("set the architecture once: study.arch or model.arch, not both")
    if "model.arch" in grid:
        raise ConfigError("set architectures with study.arch, not study.grid")

    if "sizes" in s and "params" in s:
        raise ConfigError(
            "the ladder is either explicit [[study.sizes]] or target counts study.params, not both"
        )
    sizes = _parse_sizes(s["sizes"]) if "sizes" in s else ()
    params = (
        tuple(float(p) for p in _positive_numbers("params", s["params"])) if "params" in s else ()
    )
    params_kind = s.get("params_kind", "non_embedding")
    if params_kind not in PARAMS_KINDS:
        raise ConfigError(
            f"study.params_kind = {params_kind!r} is not one of {', '.join(PARAMS_KINDS)}"
            f"{did_you_mean(str(params_kind), PARAMS_KINDS)}"
        )
    pinned = [k for k in ("n_layer", "d_model") if k in base["model"]]
    if params and len(pinned) == 2:
        raise ConfigError(
            "study.params asks size_for to choose shapes, but model.n_layer and model.d_model "
            "are both set, which leaves it nothing to choose: remove one (or both) from [model]"
        )
    size_for = s.get("size_for", {})
    if not isinstance(size_for, dict):
        raise ConfigError("study.size_for must be a table of options for accounting.size_for")
    if size_for and not params:
        raise ConfigError("study.size_for options need target counts in study.params")

    budgets = _parse_budgets(s)
    base_budget = [k for k in ("tokens", "tokens_per_param", "epochs") if k in base["train"]]
    if budgets and base_budget:
        raise ConfigError(
            f"set the data budget once: study.{{tokens,tokens_per_param,epochs}} or "
            f"train.{base_budget[0]}, not both"
        )
    for key in ("train.tokens", "train.tokens_per_param", "train.epochs", "train.seed"):
        if key in grid:
            raise ConfigError(
                f"{key} is set by the study's own axes (study.tokens/tokens_per_param/epochs, "
                "study.seeds), not study.grid"
            )
    branches, cooldown = _parse_branches(s, base["train"], budgets)
    seeds = tuple(_positive_or_zero_ints("seeds", s["seeds"])) if "seeds" in s else ()
    if seeds and "seed" in base["train"]:
        raise ConfigError("set seeds once: study.seeds or train.seed, not both")

    study = Study(
        name=name.strip(),
        base=base,
        archs=archs,
        sizes=sizes,
        params=params,
        params_kind=params_kind,
        size_for=dict(size_for),
        budgets=budgets,
        seeds=seeds,
        grid=tuple((k, tuple(v)) for k, v in grid.items()),
        description=str(s.get("description", "")),
        source=source,
        after=parse_study_keys(s),
        branches=branches,
        cooldown=cooldown,
    )
    return study


BUDGET_MODES = ("dedicated", "branches")


def _parse_branches(
    s: Mapping[str, Any], train: Mapping[str, Any], budgets: Sequence[Budget]
) -> tuple[bool, float | None]:
    """``study.budgets = "branches"`` (one WSD run per size, the shorter budgets its
    branches) and ``study.cooldown`` (their decay fraction)."""
    mode = s.get("budgets", "dedicated")
    if mode not in BUDGET_MODES:
        raise ConfigError(
            f"study.budgets = {mode!r} is not one of {', '.join(BUDGET_MODES)}: 'branches' "
            "trains one WSD run per size and branches the shorter budgets off it"
        )
    cooldown = s.get("cooldown")
    if cooldown is not None:
        if mode != "branches":
            raise ConfigError(
                'study.cooldown is for budgets = "branches": add it, or leave out cooldown'
            )
        if (
            isinstance(cooldown, bool)
            or not isinstance(cooldown, (int, float))
            or not 0 < cooldown < 1
        ):
            raise ConfigError(
                f"study.cooldown is the cooldown's fraction of each run, in (0, 1) (0.2 is "
                f"Hägele et al.'s), got {cooldown!r}"
            )
    if mode != "branches":
        return False, None
    if train.get("schedule", "wsd") != "wsd":
        raise ConfigError(
            f'budgets = "branches" needs the WSD schedule, but train.schedule = '
            f"{train['schedule']!r}: remove it (branches set wsd) or use dedicated budgets"
        )
    if any(b.epochs is not None for b in budgets):
        raise ConfigError(
            'budgets = "branches" takes study.tokens or study.tokens_per_param (a budget in '
            "epochs is not known before the corpus is read): give the budgets in tokens"
        )
    if len(budgets) < 2:
        raise ConfigError(
            'budgets = "branches" branches shorter budgets off the longest: give at least two '
            "in study.tokens or study.tokens_per_param"
        )
    return True, float(cooldown) if cooldown is not None else None


def _select_axis(value: Any, source: str | None) -> list[str | None]:
    """``study.select``: selection files (``scalelab select ... --out``), relative to the
    study file, and ``"full"`` for the whole training split (no selection)."""
    out: list[str | None] = []
    for v in _as_list("select", value):
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"study.select holds selection file paths or 'full', got {v!r}")
        if v == "full":
            out.append(None)
            continue
        path = Path(v).expanduser()
        if not path.is_absolute() and source is not None:
            path = Path(source).resolve().parent / path
        out.append(str(path.resolve()))
    if len(set(out)) != len(out):
        raise ConfigError(f"study.select has repeated entries: {value}")
    return out


def _positive_or_zero_ints(name: str, value: Any) -> list[int]:
    out = []
    for v in _as_list(name, value):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"study.{name} must hold non-negative integers, got {v!r}")
        out.append(v)
    if len(set(out)) != len(out):
        raise ConfigError(f"study.{name} has repeated values: {out}")
    return out


def load_study(path: str | Path) -> Study:
    """Read and validate a study TOML file."""
    return study_from_dict(read_toml(path), source=str(path))


def as_study(study: Study | str | Path | Mapping[str, Any]) -> Study:
    if isinstance(study, Study):
        return study
    if isinstance(study, (str, Path)):
        return load_study(study)
    if isinstance(study, Mapping):
        return study_from_dict(study)
    raise ConfigError(f"a study is a Study, a path to a TOML file or a mapping, got {study!r}")


__all__: Sequence[str] = [
    "Budget",
    "Size",
    "Study",
    "as_study",
    "check_key",
    "load_study",
    "study_from_dict",
]
