"""Architectures, one readable file each; :func:`build_model` builds one from its config.

What each architecture declares (its name, inductive bias, own fields and defaults, checks,
accounting function and which class here builds it) is in :mod:`scalelab.architectures`, which
imports no torch; this package holds the torch modules.

The contract every architecture keeps (and ``tests/models`` checks for each):

* ``Model(cfg: ModelConfig)`` builds it; ``forward(idx)`` maps token ids ``[B, T]``
  to logits ``[B, T, vocab_size]`` (log-probabilities up to a constant per position;
  ``mos`` returns them normalised).
* Causal: logits at position t depend on tokens ``<= t`` only (unless the
  objective is masked LM, where the trainer builds it with ``causal=False``).
* ``model.aux_loss`` is ``None`` or a scalar tensor set by the last forward
  (e.g. a mixture-of-experts load-balancing loss) that the trainer adds to the loss.
* ``sum(p.numel() for p in model.parameters())`` equals ``scalelab.count(cfg).params.total``:
  each architecture's ``accounting`` function in :mod:`scalelab.accounting.tallies` mirrors
  its module (see docs/internals.md, "Accounting hook").
"""

from __future__ import annotations

from torch import nn

from scalelab.architectures import get_arch
from scalelab.config import ModelConfig, RunConfig


def build_model(cfg: ModelConfig | RunConfig) -> nn.Module:
    """Instantiate the architecture named by ``cfg.arch`` (initialised, on the CPU, fp32)."""
    model_cfg = cfg.model if isinstance(cfg, RunConfig) else cfg
    model = get_arch(model_cfg.arch).build(model_cfg)
    assert isinstance(model, nn.Module)
    return model


__all__ = ["build_model"]
