"""Typed, frozen configs: defaults <- TOML file <- ``--set section.key=value`` overrides.

A run is fully described by a :class:`RunConfig` with three sections, whose key
names are a contract shared by the Python API, the TOML files and the CLI:

* ``[model]``  :class:`ModelConfig`  (``arch``, ``n_layer``, ``d_model``, ``n_head``, ...)
* ``[data]``   :class:`DataConfig`   (``corpus`` spec string, ``tokenizer``)
* ``[train]``  :class:`TrainConfig`  (``batch_size``, ``tokens``, ``lr``, ``seed``, ...)

and the sections of the registered plug-ins (:mod:`scalelab.plugin`), each owned by its
technique: ``[distill]`` (``scalelab.techniques.distill_plugin``), ``data.canaries``
(``scalelab.memorization.canaries_plugin``), ... A config naming a section that no
registered plug-in owns is an error naming what to register.

Unknown keys are rejected with the nearest valid name suggested; values are
type-checked (an integral float such as ``1e6`` is accepted for an int field,
because TOML writes large token counts that way).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from scalelab.architectures import (
    ARCHS,
    DEFAULT_MLP,
    GATED_MLPS,
    MLPS,
    NORMS,
    POSITIONS,
    check_config,
)
from scalelab.architectures.choices import PARAMETRIZATIONS, default_d_ff
from scalelab.errors import ConfigError, did_you_mean, read_user_text
from scalelab.plugin import plugins, section_plugins
from scalelab.ranges import check_rate

T = TypeVar("T")

__all__ = ["GATED_MLPS", "MLPS", "NORMS", "POSITIONS"]  # re-exported: the variant choices


@dataclass(frozen=True)
class ModelConfig:
    """Shape and variant of one model. ``arch`` names an architecture of ``scalelab.architectures``.

    Fields beyond the shape (``n_layer``, ``d_model``, ``n_head``, ``d_ff``,
    ``vocab_size``, ``context``) switch variants of the architecture. A field left ``None``
    takes the architecture's own default (``Arch.defaults``: ``glu`` gets ``mlp = "swiglu"``),
    wherever the config is made (TOML, ``--set``, Python, a study's grid). Every
    ``ModelConfig`` is checked against the registry when it is made
    (:func:`scalelab.architectures.check_config`: fields used by one architecture only, the
    architecture's own cross-field checks).
    """

    arch: str = "transformer"
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    n_kv_head: int | None = None  # grouped-query attention; None -> n_head (plain multi-head)
    d_ff: int | None = None  # None -> 4 d_model, or 8/3 d_model for gated MLPs
    vocab_size: int = 512
    context: int = 128
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    pos: str = "learned"
    rope_theta: float = 10000.0
    mlp: str | None = None  # None -> the architecture's default (gelu; glu: swiglu)
    bias: bool = False  # biases in every Linear and LayerNorm (GPT-2 has them, Llama has none)
    tie_embeddings: bool = True
    causal: bool = True  # False: bidirectional encoder (masked-LM objective)
    init_std: float = 0.02
    # Fields of one or a few architectures (scalelab.models declares which, and rejects them
    # for the others); each default is the value the architecture uses when it is not set.
    d_embed: int | None = (
        None  # albert: factorised embedding width E; None -> min(128, d_model // 4)
    )
    n_experts: int = 8  # switch: experts per MoE layer
    capacity_factor: float = 1.25  # switch: expert capacity = factor x tokens / n_experts
    aux_loss_coef: float = 0.01  # switch: weight of the load-balancing loss (Fedus et al. alpha)
    n_features: int | None = None  # performer: random features m; None -> round(hd ln hd)
    feature_redraw: int = 1000  # performer: redraw features every N training forwards; 0: never
    pool: int = 2  # funnel: shortening factor k of the middle blocks
    kernel_size: int = 31  # lconv, dconv: widest kernel; layers widen 3, 7, 15, 31, ... up to it
    n_softmax: int = 4  # mos: softmaxes K in the mixture
    # transformer: "sp" (standard) or "mup" (Maximal Update Parametrisation, Yang et al. 2022;
    # scalelab.models.mup), whose hyperparameters transfer from the width base_width
    parametrization: str = "sp"
    base_width: int = 128  # mup: the d_model at which muP and SP coincide
    mup_zero_readout: bool = False  # mup: zero-initialised untied head (Yang et al. sec. D.2)
    # mup: n_head of the base model (None: n_head), so a ladder that adds heads at a fixed
    # head size keeps the base model's attention scale (scalelab.models.mup.attention_scale)
    base_n_head: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"model.{f.name} must be a finite number, got {v}")
        for name in ("init_std", "norm_eps", "rope_theta"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        arch = ARCHS.get(self.arch)  # an unknown name is reported by check_config below
        for name, value in (arch.defaults if arch is not None else {}).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.mlp is None:
            object.__setattr__(self, "mlp", DEFAULT_MLP)
        assert self.mlp is not None
        for name in ("n_layer", "d_model", "n_head", "vocab_size", "context"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"model.{name} must be a positive integer, got {getattr(self, name)}"
                )
        _check_choice("model.norm", self.norm, NORMS)
        _check_choice("model.pos", self.pos, POSITIONS)
        _check_choice("model.mlp", self.mlp, MLPS)
        _check_choice("model.parametrization", self.parametrization, PARAMETRIZATIONS)
        if self.d_model % self.n_head:
            raise ConfigError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_head ({self.n_head})"
            )
        if self.n_kv_head is None:
            object.__setattr__(self, "n_kv_head", self.n_head)
        assert self.n_kv_head is not None
        if self.n_kv_head < 1 or self.n_head % self.n_kv_head:
            raise ConfigError(
                f"model.n_head ({self.n_head}) must be a multiple of model.n_kv_head ({self.n_kv_head})"
            )
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", default_d_ff(self.d_model, self.mlp))
        assert self.d_ff is not None
        if self.d_ff < 1:
            raise ConfigError(f"model.d_ff must be a positive integer, got {self.d_ff}")
        _check_arch_fields(self)
        if self.pos == "rotary" and self.head_dim % 2:
            raise ConfigError(
                f"rotary positions need an even head size; d_model/n_head = {self.head_dim}: "
                "change model.n_head or model.d_model"
            )
        check_config(self)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head


def _check_arch_fields(cfg: ModelConfig) -> None:
    """Ranges of the architecture-only fields (which architecture may set them is checked by
    ``scalelab.architectures.check_config``)."""
    positive = {
        "n_experts": cfg.n_experts,
        "pool": cfg.pool,
        "kernel_size": cfg.kernel_size,
        "n_softmax": cfg.n_softmax,
        "d_embed": cfg.d_embed,
        "n_features": cfg.n_features,
        "base_width": cfg.base_width,
        "base_n_head": cfg.base_n_head,
    }
    for name, value in positive.items():
        if value is not None and value < 1:
            raise ConfigError(f"model.{name} must be a positive integer, got {value}")
    if cfg.base_n_head is not None and cfg.base_width % cfg.base_n_head:
        raise ConfigError(
            f"model.base_width ({cfg.base_width}) must be divisible by model.base_n_head "
            f"({cfg.base_n_head}): the base model's head size is their ratio"
        )
    if not cfg.capacity_factor > 0:
        raise ConfigError(
            f"model.capacity_factor must be positive (1.0-2.0 is usual), got {cfg.capacity_factor}"
        )
    if cfg.aux_loss_coef < 0:
        raise ConfigError(f"model.aux_loss_coef must be >= 0, got {cfg.aux_loss_coef}")
    if cfg.feature_redraw < 0:
        raise ConfigError(
            f"model.feature_redraw is a number of training steps (0: never), got {cfg.feature_redraw}"
        )


@dataclass(frozen=True)
class DataConfig:
    """Where tokens come from. ``corpus`` is a spec string (see ``scalelab.data``)."""

    corpus: str = "python-stdlib"
    tokenizer: str = "bpe"  # "bpe" (byte-level, trained at model.vocab_size) or "bytes"
    val_fraction: float = 0.02  # share of documents (by stable hash) held out for validation
    # Share of the training split a run may see (its unique tokens); with train.epochs this is
    # how a study repeats a small slice of the corpus (data-constrained scaling). Validation
    # is always the full held-out split, so runs at every fraction are scored alike.
    fraction: float = 1.0
    cache_dir: str | None = None  # None -> $SCALELAB_CACHE or ~/.cache/scalelab
    # A selection file (scalelab select ... --out SEL.json): the run trains on its kept
    # training documents or chunks only (applied before data.fraction); validation untouched.
    select: str | None = None

    def __post_init__(self) -> None:
        _check_choice("data.tokenizer", self.tokenizer, ("bpe", "bytes"))
        if self.select is not None and not str(self.select).strip():
            raise ConfigError("data.select must be the path of a selection JSON file, got ''")
        if not 0.0 < self.val_fraction < 0.5:
            raise ConfigError(f"data.val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if not 0.0 < self.fraction <= 1.0:
            raise ConfigError(f"data.fraction must be in (0, 1], got {self.fraction}")


@dataclass(frozen=True)
class TrainConfig:
    """How one model is trained. Exactly one budget: ``tokens``, ``tokens_per_param`` or ``epochs``."""

    batch_size: int = 32  # sequences per optimizer step (tokens per step = batch_size * context)
    micro_batch_size: int | None = None  # None -> batch_size (no gradient accumulation)
    tokens: int | None = None
    tokens_per_param: float | None = None
    epochs: float | None = None
    objective: str = "clm"  # "clm" causal LM, "mlm" masked LM (15%, 80/10/10)
    lr: float = 3e-3
    min_lr_ratio: float = 0.1  # the schedule ends at lr * min_lr_ratio
    schedule: str = "cosine"  # "cosine", "wsd" (warmup-stable-decay) or "constant"
    warmup: float = 0.05  # fraction of the run's steps
    # the warmup fixed in tokens, whatever the run's length (replaces ``warmup`` when set):
    # a ladder whose runs share it warms up alike, so a WSD branch equals the run trained
    # from scratch to its budget (Hägele et al. 2024 fix the warmup in steps)
    warmup_tokens: int | None = None
    decay_fraction: float = 0.2  # wsd only: the last fraction of steps decays (the cooldown)
    cooldown: str = "linear"  # wsd only: the decay's shape, "linear" or "1-sqrt"
    # wsd only: token counts at which the stable-phase state is kept for branches
    save_at: tuple[int, ...] = ()
    # a WSD branch: the run id of the parent whose state at ``branch_at`` tokens it resumes
    # from, then runs only its own cooldown (scalelab.train.branch)
    branch_of: str | None = None
    branch_at: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    eval_every: int = 100  # steps
    eval_batches: int = 8
    checkpoint_every: int = 500  # steps
    early_stopping: int | None = None  # evaluations without improvement before stopping
    precision: str = "auto"  # "auto" (bf16 where it is fast), "fp32", "bf16"
    compile: bool = False
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"train.{f.name} must be a finite number, got {v}")
        _check_choice("train.objective", self.objective, ("clm", "mlm"))
        _check_choice("train.schedule", self.schedule, ("cosine", "wsd", "constant"))
        _check_choice("train.precision", self.precision, ("auto", "fp32", "bf16"))
        _check_choice("train.cooldown", self.cooldown, COOLDOWNS)
        self._check_branching()
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(
                f"train.device = {self.device!r} is not a device: use 'auto', 'cpu', 'cuda', "
                "'cuda:N' or 'mps'"
            )
        budgets = [
            n for n in ("tokens", "tokens_per_param", "epochs") if getattr(self, n) is not None
        ]
        if len(budgets) > 1:
            raise ConfigError(
                f"set one training budget, not {' and '.join('train.' + b for b in budgets)}"
            )
        for name in ("batch_size", "eval_every", "eval_batches", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"train.{name} must be a positive integer, got {getattr(self, name)}"
                )
        mb = self.micro_batch_size
        if mb is not None and (mb < 1 or self.batch_size % mb):
            raise ConfigError(
                f"train.micro_batch_size ({mb}) must divide train.batch_size ({self.batch_size})"
            )
        for name in ("tokens", "tokens_per_param", "epochs", "lr"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ConfigError(f"train.{name} must be positive, got {v}")
        check_rate("train.lr", self.lr)
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(
                f"train.warmup is a fraction of the steps in [0, 1), got {self.warmup}"
            )
        if self.warmup_tokens is not None and (
            isinstance(self.warmup_tokens, bool)
            or not isinstance(self.warmup_tokens, int)
            or self.warmup_tokens < 0
        ):
            raise ConfigError(
                f"train.warmup_tokens is a whole number of tokens >= 0 (or unset: "
                f"train.warmup's fraction of the run), got {self.warmup_tokens!r}"
            )
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ConfigError(f"train.decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.grad_clip < 0:
            raise ConfigError(
                f"train.grad_clip must be >= 0 (0 turns it off), got {self.grad_clip}"
            )
        if self.weight_decay < 0:
            raise ConfigError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise ConfigError(
                f"train.early_stopping counts evaluations and must be >= 1, got "
                f"{self.early_stopping}"
            )

    def _check_branching(self) -> None:
        """``save_at`` and a branch (``branch_of`` with ``branch_at``) are WSD's: only its
        stable phase holds a state from which any shorter run's cooldown can start."""
        if self.cooldown != "linear" and self.schedule != "wsd":
            raise ConfigError(
                f"train.cooldown = {self.cooldown!r} shapes the WSD decay: set "
                "train.schedule = 'wsd', or leave train.cooldown out"
            )
        if self.save_at:
            if self.schedule != "wsd":
                raise ConfigError(
                    "train.save_at keeps WSD stable-phase states: set train.schedule = 'wsd'"
                )
            if any(t < 1 for t in self.save_at) or list(self.save_at) != sorted(set(self.save_at)):
                raise ConfigError(
                    f"train.save_at must be increasing positive token counts, got "
                    f"{list(self.save_at)}"
                )
        if (self.branch_of is None) != (self.branch_at is None):
            raise ConfigError(
                "a WSD branch names both its parent and its branch point: set train.branch_of "
                "(the parent's run id) and train.branch_at (tokens), or neither"
            )
        if self.branch_of is None or self.branch_at is None:
            return
        if self.schedule != "wsd":
            raise ConfigError("a WSD branch (train.branch_of) needs train.schedule = 'wsd'")
        if not re.fullmatch(r"[0-9a-f]{12}", self.branch_of):
            raise ConfigError(
                f"train.branch_of is the parent run's id (12 hex digits), got {self.branch_of!r}"
            )
        if self.branch_at < 1:
            raise ConfigError(f"train.branch_at must be positive tokens, got {self.branch_at}")
        if self.tokens is not None and self.branch_at >= self.tokens:
            raise ConfigError(
                f"train.branch_at ({self.branch_at}) must be below the branch's budget "
                f"train.tokens ({self.tokens})"
            )
        if self.save_at:
            raise ConfigError("a branch keeps no states of its own: leave out train.save_at")


COOLDOWNS = ("linear", "1-sqrt")  # the WSD decay's shapes (Hägele et al. 2024, sec. 3)
BRANCH_DEFAULTS: dict[str, Any] = {
    "warmup_tokens": None,
    "cooldown": "linear",
    "save_at": [],
    "branch_of": None,
    "branch_at": None,
}


def _file_sha256(path: str) -> str | None:
    """SHA-256 of a selection file's content, its timing (``seconds``) left out so that
    making the same selection again names the same runs."""
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError:
        return None  # a missing file fails when the run loads it, with the fix named
    try:
        value = json.loads(raw)
        if isinstance(value, dict):
            value.pop("seconds", None)
            raw = json.dumps(value, sort_keys=True).encode()
    except ValueError:
        pass
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class RunConfig:
    """A run's resolved config. Every check runs when one is made (each section checks its
    own fields, then :meth:`validate` the rules across sections), so a study's grid is
    validated whole by ``sweep --dry-run`` before anything trains.

    ``sections`` holds the plug-ins' sections (:mod:`scalelab.plugin`): section key
    (``"distill"``, ``"data.canaries"``) -> its dataclass (a mapping is checked by the
    owning plug-in's dataclass). Only sections that differ from the plug-in's default are
    kept, so a config that sets ``[distill]`` to its defaults equals one that does not.
    :meth:`section` reads one (the default when unset); ``cfg.distill`` does the same.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sections: Any = ()  # normalised to a tuple of (key, value) pairs, sorted by key

    def __post_init__(self) -> None:
        raw = self.sections
        items = raw.items() if isinstance(raw, Mapping) else raw
        owners = section_plugins()
        kept: dict[str, Any] = {}
        for key, value in items:
            if key not in owners:
                raise ConfigError(_unknown_section(key, owners))
            plugin = owners[key]
            assert plugin.config is not None
            if value is None:  # unset: the plug-in's default
                value = plugin.default()
            elif isinstance(value, Mapping):
                value = section_from_dict(plugin.config, value, key)
            elif value is not None and not isinstance(value, plugin.config):
                raise ConfigError(
                    f"{key} must be a table of {plugin.config.__name__} fields, got {value!r}"
                )
            if value != plugin.default():
                kept[key] = value
        object.__setattr__(self, "sections", tuple(sorted(kept.items(), key=lambda kv: kv[0])))
        self.validate()

    def __getattr__(self, name: str) -> Any:
        """``cfg.distill``: a plug-in's top-level section (its default when unset)."""
        if name.startswith("_") or name in ("model", "data", "train", "sections"):
            raise AttributeError(name)
        if name not in section_plugins():
            raise AttributeError(f"RunConfig has no section {name!r}")
        return self.section(name)

    def section(self, key: str) -> Any:
        """A plug-in's section (``"distill"``, ``"data.canaries"``); its default if unset."""
        for k, v in self.sections:
            if k == key:
                return v
        owners = section_plugins()
        if key not in owners:
            raise ConfigError(_unknown_section(key, owners))
        return owners[key].default()

    def with_section(self, key: str, value: Any) -> RunConfig:
        """This config with a plug-in's section replaced (``None``: its default)."""
        return dataclasses.replace(self, sections={**dict(self.sections), key: value})

    def validate(self) -> None:
        """Checks that involve more than one section of the config (and the active
        plug-ins' own, :meth:`scalelab.plugin.Plugin.check`)."""
        if self.train.objective == "mlm" and self.model.causal:
            raise ConfigError(
                "train.objective = 'mlm' needs a bidirectional model: set model.causal = false"
            )
        if self.train.objective == "clm" and not self.model.causal:
            raise ConfigError(
                "model.causal = false lets every position see the token it must predict: "
                "set model.causal = true for train.objective = 'clm' (or train.objective = 'mlm')"
            )
        for plugin in plugins():
            if plugin.section is not None and plugin.active(self):
                plugin.check(self)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested dicts (``config.json``): the core sections, then every
        registered plug-in's section, at its key, whether set or not (a table of defaults,
        or None), so a run directory's config names every section of its time."""
        d: dict[str, Any] = {
            "model": dataclasses.asdict(self.model),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }
        for key in section_plugins():
            value = self.section(key)
            head, _, sub = key.partition(".")
            where = d.setdefault(head, {}) if sub else d
            where[sub or head] = dataclasses.asdict(value) if value is not None else None
        d["train"]["save_at"] = list(self.train.save_at)  # as JSON reads it back
        return d

    def run_id(self) -> str:
        """Hash of the resolved config: the name of the run's directory.

        ``train.device`` is left out: where a run executes does not change what it is.
        ``data.fraction`` at its default 1.0 is left out too, so runs stored before the
        field existed keep their names (and a sweep still finds them finished); so is an
        unset ``data.select``, and a set one counts by the SHA-256 of the selection file's
        content, not by its path; so are ``model.parametrization = "sp"`` and its
        muP-only fields, and muP fields added later at their defaults (``_MUP_DEFAULTS``); so
        are the WSD branch fields at their defaults (``train.warmup_tokens``,
        ``cooldown``, ``save_at``, ``branch_of``, ``branch_at``). Each plug-in's section counts as its
        :meth:`~scalelab.plugin.Plugin.run_id_part` says: left out when the technique does
        not change the run (no canaries; a ``[distill]`` without a teacher, or alpha = 0
        without a teacher initialisation: the scratch twin of a distilled run is the plain
        run), so runs stored before a technique existed keep their names.
        """
        d = self.to_dict()
        d["train"].pop("device", None)
        if d["data"].get("fraction") == 1.0:
            d["data"].pop("fraction")
        if d["model"].get("parametrization") == "sp":  # likewise for runs before muP
            d["model"].pop("parametrization")
            d["model"].pop("base_width", None)
            d["model"].pop("mup_zero_readout", None)
            for name in _MUP_DEFAULTS:
                d["model"].pop(name, None)
        for name, default in _MUP_DEFAULTS.items():  # muP fields added later, at their defaults
            if d["model"].get(name, default) == default:
                d["model"].pop(name, None)
        if d["data"].get("select") is None:
            d["data"].pop("select", None)
        elif (digest := _file_sha256(d["data"]["select"])) is not None:
            # the selection's content names the run, wherever the file lies
            d["data"]["select"] = f"sha256:{digest}"
        for key, plugin in section_plugins().items():
            head, _, sub = key.partition(".")
            where, name = (d[head], sub) if sub else (d, head)
            part = plugin.run_id_part(self)
            if part is None:
                where.pop(name, None)
            else:
                where[name] = part
        # the WSD branch fields at their defaults: runs stored before them keep their names
        for key, default in BRANCH_DEFAULTS.items():
            if d["train"].get(key) == default:
                d["train"].pop(key)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# muP fields added after runs with muP were stored: left out of the run id at these values,
# so those runs keep their names
_MUP_DEFAULTS: dict[str, Any] = {"base_n_head": None}


def _unknown_section(key: str, owners: Mapping[str, Any]) -> str:
    known = [*SECTIONS, *owners]
    return (
        f"unknown section {key!r}{did_you_mean(key, known)}: sections are "
        f"{', '.join(known)}; a technique's section is known once its plug-in is registered "
        "(import scalelab registers the built-in ones; import the module that calls "
        "scalelab.plugin.register_plugin for another)"
    )


DEFAULT_TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022 (Chinchilla), table 3


def budget_tokens(cfg: RunConfig, non_embedding: int, unique_tokens: int) -> tuple[int, str]:
    """The budget rule: planned training tokens and a note of where the number came from.

    ``train.tokens`` as given; ``train.epochs`` times the corpus's unique training tokens;
    else ``train.tokens_per_param`` (default 20, Chinchilla) times the non-embedding N.
    The trainer rounds it to whole steps; studies plan with the same rule."""
    t = cfg.train
    if t.tokens is not None:
        return int(t.tokens), f"train.tokens = {t.tokens}"
    if t.epochs is not None:
        return (
            round(t.epochs * unique_tokens),
            f"train.epochs = {t.epochs} x {unique_tokens} train tokens",
        )
    ratio = t.tokens_per_param if t.tokens_per_param is not None else DEFAULT_TOKENS_PER_PARAM
    source = (
        "train.tokens_per_param" if t.tokens_per_param is not None else "default tokens_per_param"
    )
    return round(
        ratio * non_embedding
    ), f"{source} = {ratio} x {non_embedding} non-embedding params"


def planned_steps(cfg: RunConfig, non_embedding: int, unique_tokens: int) -> tuple[int, str]:
    """:func:`budget_tokens` rounded to whole optimizer steps of ``batch_size x context``
    tokens (at least one): what the trainer runs and the schedule ends on, and the note."""
    want, note = budget_tokens(cfg, non_embedding, unique_tokens)
    return max(1, round(want / (cfg.train.batch_size * cfg.model.context))), note


# A budget beyond this many passes over the run's unique tokens is a typo, not a study: for
# generalisation, repeated data stops paying after ~4 epochs and is worth almost nothing past
# ~40 (Muennighoff et al. 2023, fig. 3 and eq. 5); memorization studies repeat a small corpus
# on purpose, a few thousand times at most (Allen-Zhu and Li 2024 use 1000 exposures).
MAX_EPOCHS = 100_000.0


def check_budget(tokens: int, note: str, unique_tokens: int) -> None:
    """Reject, before anything is built, a budget the corpus cannot supply: more than
    :data:`MAX_EPOCHS` passes over its unique training tokens (``train.tokens = 1e30`` would
    train for ages at a learning rate warmed over 5e24 steps)."""
    if unique_tokens <= 0:
        return
    epochs = tokens / unique_tokens
    if epochs > MAX_EPOCHS:
        how = "" if note.startswith("train.tokens") else f" ({note})"
        raise ConfigError(
            f"the budget of {tokens:.3g} tokens{how} is {epochs:.3g} epochs of the corpus's "
            f"{unique_tokens:,} unique training tokens, more than {MAX_EPOCHS:g}: lower the "
            "budget or use a bigger corpus"
        )


# the core sections; the plug-ins add theirs (config_sections)
SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "train": TrainConfig,
}


def config_sections() -> dict[str, type]:
    """Every top-level section a run config may have: the core's and the registered
    plug-ins' (``[distill]``), name -> dataclass."""
    out = dict(SECTIONS)
    for key, plugin in section_plugins().items():
        if "." not in key and plugin.config is not None:
            out[key] = plugin.config
    return out


def section_keys(section: str) -> list[str]:
    """The keys a section may hold: its dataclass's fields and the plug-ins' sub-keys
    (``data.canaries``)."""
    cls = config_sections()[section]
    subs = [k.split(".", 1)[1] for k in section_plugins() if k.startswith(section + ".")]
    return [*(f.name for f in dataclasses.fields(cls)), *subs]


def _check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(
            f"{name} = {value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}"
        )


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a type hint, converting where TOML is looser than Python."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(name, value, inner[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            # one rule for every section: a seed is a whole number >= 0 (numpy refuses less)
            if name.rsplit(".", 1)[-1].endswith("seed") and value < 0:
                raise ConfigError(f"{name} must be a whole number >= 0 (a seed), got {value}")
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # one rule for every section: no setting means anything at NaN or infinity
            if not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif dataclasses.is_dataclass(hint):  # a nested table, e.g. data.canaries
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return section_from_dict(hint, value, name)  # type: ignore[type-var]
    elif typing.get_origin(hint) is tuple:  # tuple[int, ...]: a TOML list
        if isinstance(value, (list, tuple)):
            item = typing.get_args(hint)[0]
            return tuple(_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    else:  # pragma: no cover - only the hints above are used in configs
        return value
    raise ConfigError(f"{name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def section_from_dict(cls: type[T], values: Mapping[str, Any], section: str) -> T:
    """Build a config dataclass from a mapping, rejecting unknown keys by name."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}{did_you_mean(key, known)}")
        kwargs[key] = _coerce(f"{section}.{key}", value, hints[key])
    return cls(**kwargs)


def run_config_from_dict(values: Mapping[str, Any]) -> RunConfig:
    sections = config_sections()
    owners = section_plugins()
    for key in values:
        if key not in sections:
            raise ConfigError(
                f"unknown section [{key}]{did_you_mean(key, sections)}; "
                f"sections are {', '.join('[' + s + ']' for s in sections)} (a technique's "
                "section is known once its plug-in is registered: see scalelab.plugin)"
            )
    parts: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = dict(values.get(name, {}))
        for key in owners:  # a plug-in's sub-key of a core section (data.canaries)
            head, _, sub = key.partition(".")
            if head == name and sub in table:
                extra[key] = table.pop(sub)
        parts[name] = section_from_dict(cls, table, name)
    for key in values:
        if key not in SECTIONS:
            extra[key] = values[key]
    return RunConfig(**parts, sections=extra)


def example_config(arch: str, **fields: Any) -> ModelConfig:
    """A valid ``ModelConfig`` of ``arch``: ModelConfig's defaults, the architecture's own
    (``Arch.defaults``), then ``fields`` (a shape, variant switches), checked as TOML is."""
    return section_from_dict(ModelConfig, {"arch": arch, **fields}, "model")


def parse_override(text: str) -> tuple[str, str, Any]:
    """``'train.lr=1e-3'`` -> ``('train', 'lr', 0.001)``; the value is read as TOML, else a string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    path, raw = text.split("=", 1)
    parts = path.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r} must name section.key, e.g. train.lr=1e-3")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts[0], parts[1], value


def apply_overrides(values: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    for k, v in values.items():
        if not isinstance(v, Mapping):
            raise ConfigError(
                f"{k} = {v!r}: a config holds sections ([model], [data], [train]) of "
                "key = value lines, not top-level values or arrays of tables"
            )
    merged: dict[str, Any] = {k: dict(v) for k, v in values.items()}
    for text in overrides:
        section, key, value = parse_override(text)
        merged.setdefault(section, {})[key] = value
    return merged


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a directory: give a TOML file")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        return tomllib.loads(read_user_text(p, "config file"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None


def load_run_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> RunConfig:
    """Defaults <- TOML file (if given) <- overrides, validated."""
    values = read_toml(path) if path is not None else {}
    return run_config_from_dict(apply_overrides(values, overrides))
