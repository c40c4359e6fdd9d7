"""What every architecture declares, torch-free, below config, accounting and models.

:data:`ARCHS` maps a name to its :class:`Arch`: the inductive bias in one line, the
``ModelConfig`` fields only it uses, its own defaults (``glu``: a gated ``mlp``), a check
across fields, its accounting function (:mod:`scalelab.accounting.tallies`, built from
:mod:`scalelab.accounting.blocks`) and its model class as a lazy ``"module:Class"``
reference. :mod:`scalelab.config` applies the defaults and runs the checks whenever a
``ModelConfig`` is made, :mod:`scalelab.accounting` counts with the accounting function,
and :func:`scalelab.models.build_model` imports the class (and torch) only to build.
The declarations are in :mod:`scalelab.architectures.archs`.
"""

from __future__ import annotations

from scalelab.architectures import archs as _archs  # noqa: F401  (registers every architecture)
from scalelab.architectures.arch import (
    ARCH_ONLY_FIELDS,
    ARCHS,
    Arch,
    check_config,
    get_arch,
    register,
)
from scalelab.architectures.choices import DEFAULT_MLP, GATED_MLPS, MLPS, NORMS, POSITIONS

__all__ = [
    "ARCHS",
    "ARCH_ONLY_FIELDS",
    "DEFAULT_MLP",
    "GATED_MLPS",
    "MLPS",
    "NORMS",
    "POSITIONS",
    "Arch",
    "check_config",
    "get_arch",
    "register",
]
