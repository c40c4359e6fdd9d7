"""The core sections of a run config, each a frozen dataclass that checks its own fields
when it is made: ``[model]`` :class:`ModelConfig` (``arch``, ``n_layer``, ``d_model``,
``n_head``, ...), ``[data]`` :class:`DataConfig` (``corpus`` spec string, ``tokenizer``) and
``[train]`` :class:`TrainConfig` (``batch_size``, ``tokens``, ``lr``, ``seed``, ...).

The choices of the string fields are the tables below (:data:`TOKENIZERS`,
:data:`OBJECTIVES`, :data:`SCHEDULES`, :data:`COOLDOWNS`, :data:`PRECISIONS`) and the
variant tables of :mod:`scalelab.architectures.choices`; the command line reads its choices
from the same tables.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from scalelab.architectures import ARCHS, DEFAULT_MLP, MLPS, NORMS, POSITIONS, check_config
from scalelab.architectures.choices import PARAMETRIZATIONS, default_d_ff
from scalelab.config.fields import check_choice
from scalelab.errors import ConfigError
from scalelab.ranges import check_rate

TOKENIZERS = ("bpe", "bytes")  # byte-level BPE trained at model.vocab_size, or raw bytes
OBJECTIVES = ("clm", "mlm")  # causal LM, masked LM (15%, 80/10/10)
SCHEDULES = ("cosine", "wsd", "constant")  # the learning rate's shape (scalelab.train.schedule)
COOLDOWNS = ("linear", "1-sqrt")  # the WSD decay's shapes (Hägele et al. 2024, sec. 3)
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where it is fast (scalelab.train.device)


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
        check_choice("model.norm", self.norm, NORMS)
        check_choice("model.pos", self.pos, POSITIONS)
        check_choice("model.mlp", self.mlp, MLPS)
        check_choice("model.parametrization", self.parametrization, PARAMETRIZATIONS)
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
        check_choice("data.tokenizer", self.tokenizer, TOKENIZERS)
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
        check_choice("train.objective", self.objective, OBJECTIVES)
        check_choice("train.schedule", self.schedule, SCHEDULES)
        check_choice("train.precision", self.precision, PRECISIONS)
        check_choice("train.cooldown", self.cooldown, COOLDOWNS)
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
