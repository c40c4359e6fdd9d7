"""The ``Arch`` entry and the table of registered architectures, with the checks they imply.

Torch-free: the model class is a lazy reference (``"module:Class"``), imported only by
:meth:`Arch.build`, so configs can be checked and counted without torch.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from scalelab.accounting.blocks import Tally
    from scalelab.config import ModelConfig


@dataclass(frozen=True)
class Arch:
    name: str
    # the model class (called with a ModelConfig): "module:attribute", imported on first build,
    # or the callable itself (an architecture registered at run time, e.g. in a test)
    builder: str | Callable[..., Any]
    description: str  # the inductive bias, in one line
    fields: tuple[str, ...] = ()  # ModelConfig fields only this architecture uses
    bidirectional: bool = False  # can be built with causal=False (masked-LM encoder)
    # analytic parameters / active parameters / forward MACs / KV cache of a config, without
    # building it (scalelab.accounting.count uses it, through tally()): "module:function"
    # (imported on first use; the built-in ones live in scalelab.accounting.tallies) or the
    # callable itself; None: the architecture cannot be counted
    accounting: str | Callable[[ModelConfig], Tally] | None = None
    # checks across fields that a ModelConfig alone cannot make (e.g. "glu needs a gated
    # mlp"); raises ConfigError naming the field and the fix. Called by check_config.
    check: Callable[[ModelConfig], None] | None = None
    # ModelConfig fields whose default is this architecture's own (glu: mlp = "swiglu"):
    # a ModelConfig of this arch that leaves the field unset (None) gets this value
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def build(self, cfg: ModelConfig) -> Any:
        """The model (an ``nn.Module``); importing its module imports torch."""
        return _resolve(self.builder)(cfg)

    def tally(self, cfg: ModelConfig) -> Tally:
        """The accounting of ``cfg`` (torch-free); ``ConfigError`` when there is none."""
        if self.accounting is None:
            raise ConfigError(
                f"arch {self.name!r} has no accounting function: register it with "
                "Arch(..., accounting=fn) in scalelab.architectures"
            )
        return _resolve(self.accounting)(cfg)


def _resolve(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """A callable given as itself or as ``"module:attribute"`` (imported now)."""
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        ref = getattr(importlib.import_module(module), attr)
    assert callable(ref)
    return ref


ARCHS: dict[str, Arch] = {}

# ModelConfig fields that belong to one or a few architectures; setting one for an
# architecture that ignores it is an error rather than a silent no-op.
ARCH_ONLY_FIELDS: set[str] = set()


def register(arch: Arch) -> Arch:
    """Add ``arch`` to :data:`ARCHS` (a name registered again is replaced)."""
    ARCHS[arch.name] = arch
    ARCH_ONLY_FIELDS.update(arch.fields)
    return arch


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise ConfigError(
            f"model.arch = {name!r} is not a known architecture{did_you_mean(name, ARCHS)}; "
            f"known: {', '.join(sorted(ARCHS))}"
        )
    return ARCHS[name]


def check_config(cfg: ModelConfig) -> None:
    """Architecture-level checks that the fields alone cannot make (``ModelConfig`` runs
    them whenever one is made): the arch exists, can be bidirectional if asked, sets no
    other architecture's fields, and passes its own ``check``."""
    arch = get_arch(cfg.arch)
    if not cfg.causal and not arch.bidirectional:
        raise ConfigError(
            f"arch {cfg.arch!r} is causal only: set model.causal = true (or train.objective = 'clm')"
        )
    for f in dataclasses.fields(cfg):
        unused = f.name in ARCH_ONLY_FIELDS and f.name not in arch.fields
        if unused and getattr(cfg, f.name) != f.default:
            users = sorted(a.name for a in ARCHS.values() if f.name in a.fields)
            raise ConfigError(
                f"model.{f.name} is used only by arch {', '.join(users)}, not {cfg.arch!r}: "
                "remove it or change model.arch"
            )
    if arch.check is not None:
        arch.check(cfg)
