"""Architectures, one readable file each, registered by name.

The contract every architecture keeps (and ``tests/models`` checks for each):

* ``Model(cfg: ModelConfig)`` builds it; ``forward(idx)`` maps token ids ``[B, T]``
  to logits ``[B, T, vocab_size]`` (unnormalised log-probabilities).
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from scalelab.config import ModelConfig, RunConfig
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
) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        ARCHS[name] = Arch(name, cls, description, fields, bidirectional, accounting)
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


def build_model(cfg: ModelConfig | RunConfig) -> nn.Module:
    """Instantiate the architecture named by ``cfg.arch`` (initialised, on the CPU, fp32)."""
    model_cfg = cfg.model if isinstance(cfg, RunConfig) else cfg
    check_config(model_cfg)
    return get_arch(model_cfg.arch).build(model_cfg)


# Importing an architecture's module registers it.
from scalelab.models import transformer  # noqa: E402

__all__ = ["ARCHS", "Arch", "build_model", "check_config", "get_arch", "register", "transformer"]
