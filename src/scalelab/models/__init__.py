"""Architectures, one readable file each, registered by name.

The contract every architecture keeps (and ``tests/models`` checks for each):

* ``Model(cfg: ModelConfig)`` builds it; ``forward(idx)`` maps token ids ``[B, T]``
  to logits ``[B, T, vocab_size]`` (log-probabilities up to a constant per position;
  ``mos`` returns them normalised).
* Causal: logits at position t depend on tokens ``<= t`` only (unless the
  objective is masked LM, where the trainer builds it with ``causal=False``).
* ``model.aux_loss`` is ``None`` or a scalar tensor set by the last forward
  (e.g. a mixture-of-experts load-balancing loss) that the trainer adds to the loss.
* ``sum(p.numel() for p in model.parameters())`` equals ``scalelab.count(cfg).params.total``:
  each architecture registers an ``accounting`` function ``ModelConfig -> Tally`` built from
  the blocks of ``scalelab.accounting.blocks`` (see docs/internals.md, "Accounting hook").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from scalelab.config import ModelConfig, RunConfig, section_from_dict
from scalelab.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from scalelab.accounting.blocks import Tally


@dataclass(frozen=True)
class Arch:
    name: str
    build: Callable[..., nn.Module]
    description: str  # the inductive bias, in one line
    fields: tuple[str, ...] = ()  # ModelConfig fields only this architecture uses
    bidirectional: bool = False  # can be built with causal=False (masked-LM encoder)
    # analytic parameters / active parameters / forward MACs / KV cache of a config, without
    # building it (scalelab.accounting.count uses it); None: the architecture cannot be counted
    accounting: Callable[[ModelConfig], Tally] | None = None
    # checks across fields that a ModelConfig alone cannot make (e.g. "glu needs a gated
    # mlp"); raises ConfigError naming the field and the fix. Called by check_config.
    check: Callable[[ModelConfig], None] | None = None
    # ModelConfig fields a valid config of this architecture must change from ModelConfig's
    # defaults (glu: a gated mlp); example_config() applies them
    defaults: Mapping[str, Any] = field(default_factory=dict)


ARCHS: dict[str, Arch] = {}

# ModelConfig fields that belong to one or a few architectures; setting one for an
# architecture that ignores it is an error rather than a silent no-op.
_ARCH_ONLY_FIELDS: set[str] = set()


def register(
    name: str,
    description: str,
    fields: tuple[str, ...] = (),
    bidirectional: bool = False,
    accounting: Callable[[ModelConfig], Tally] | None = None,
    check: Callable[[ModelConfig], None] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        ARCHS[name] = Arch(
            name, cls, description, fields, bidirectional, accounting, check, dict(defaults or {})
        )
        _ARCH_ONLY_FIELDS.update(fields)
        return cls

    return deco


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise ConfigError(
            f"model.arch = {name!r} is not a known architecture{did_you_mean(name, ARCHS)}; "
            f"known: {', '.join(sorted(ARCHS))}"
        )
    return ARCHS[name]


def check_config(cfg: ModelConfig) -> None:
    """Architecture-level checks that a ModelConfig alone cannot make."""
    arch = get_arch(cfg.arch)
    if not cfg.causal and not arch.bidirectional:
        raise ConfigError(
            f"arch {cfg.arch!r} is causal only: set model.causal = true (or train.objective = 'clm')"
        )
    defaults = ModelConfig()
    for f in dataclasses.fields(cfg):
        unused = f.name in _ARCH_ONLY_FIELDS and f.name not in arch.fields
        if unused and getattr(cfg, f.name) != getattr(defaults, f.name):
            users = sorted(a.name for a in ARCHS.values() if f.name in a.fields)
            raise ConfigError(
                f"model.{f.name} is used only by arch {', '.join(users)}, not {cfg.arch!r}: "
                "remove it or change model.arch"
            )
    if arch.check is not None:
        arch.check(cfg)


def example_config(arch: str, **fields: Any) -> ModelConfig:
    """A valid ``ModelConfig`` of ``arch``: ModelConfig's defaults, then the architecture's
    required changes (``Arch.defaults``), then ``fields`` (a shape, variant switches)."""
    spec = get_arch(arch)
    cfg = section_from_dict(ModelConfig, {"arch": arch, **spec.defaults, **fields}, "model")
    check_config(cfg)
    return cfg


def archs_table(causal: bool = True, **shape: Any) -> Any:
    """A pandas DataFrame, one row per architecture: its inductive bias, its own config fields
    (a dict of their defaults; None: derived from the shape), whether it has a bidirectional
    variant, and its parameters and FLOPs per
    token at one shape (``example_config(arch, **shape)``; ModelConfig's 4 x 128 by default).
    ``causal`` counts attention over earlier positions only, as the trainer records it."""
    import pandas as pd

    from scalelab.accounting import count

    defaults = ModelConfig()
    rows = []
    for arch in ARCHS.values():
        cfg = example_config(arch.name, **shape)
        c = count(cfg, causal=causal)
        own = {**{f: getattr(defaults, f) for f in arch.fields}, **arch.defaults}
        rows.append(
            {
                "arch": arch.name,
                "description": arch.description,
                "fields": own,
                "bidirectional": arch.bidirectional,
                "n_layer": cfg.n_layer,
                "d_model": cfg.d_model,
                "params": c.params.total,
                "non_embedding": c.params.non_embedding,
                "active": c.params.active,
                "train_flops_per_token": c.flops.train_per_token,
            }
        )
    return pd.DataFrame(rows)


def build_model(cfg: ModelConfig | RunConfig) -> nn.Module:
    """Instantiate the architecture named by ``cfg.arch`` (initialised, on the CPU, fp32)."""
    model_cfg = cfg.model if isinstance(cfg, RunConfig) else cfg
    check_config(model_cfg)
    return get_arch(model_cfg.arch).build(model_cfg)


# Importing an architecture's module registers it.
from scalelab.models import (  # noqa: E402
    albert,
    conv,  # lconv and dconv
    evolved,
    funnel,
    glu,
    mixer,
    mos,
    performer,
    switch,
    transformer,
    universal,
)

__all__ = [
    "ARCHS",
    "Arch",
    "albert",
    "archs_table",
    "build_model",
    "check_config",
    "conv",
    "evolved",
    "example_config",
    "funnel",
    "get_arch",
    "glu",
    "mixer",
    "mos",
    "performer",
    "register",
    "switch",
    "transformer",
    "universal",
]
