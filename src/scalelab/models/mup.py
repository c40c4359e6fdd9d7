"""muP, the Maximal Update Parametrisation (Yang et al. 2022, "Tensor Programs V"), for the
transformer: with it the best learning rate (and init scale) found at a small width stays
the best as the model widens, so a search at width ``base_width`` transfers.

The rules, for Adam, as the paper's Table 3 gives them (with m = d_model / base_width the
width multiplier, so that at ``d_model == base_width`` muP and SP are the same model):

* **input weights** (token and position embeddings) and every vector (norm gains, biases):
  initialised and updated as in SP (their fan-in does not grow with width);
* **hidden weights** (attention qkv and projection, MLP fc and projection): init variance
  proportional to 1/fan_in (``init_std^2 x base_width / d_model`` here) and Adam learning
  rate ``lr / m``, so each update moves a hidden unit by O(1) at every width;
* **readout**: logits multiplied by ``1 / m`` (the "output multiplier", Table 3's
  alternative to a 1/fan_in readout learning rate), so the initial logits shrink like
  1/sqrt(m); with ``model.mup_zero_readout = true`` an untied head starts at zero instead
  (Yang et al. sec. D.2). Off by default because it cost us: at widths 32 and 128 (2
  layers, python-stdlib, lr 3.9e-3, 65k tokens) the zero readout ended 0.23 and 0.34 nats
  above the same muP model with the head initialised as usual (5.317 vs 5.089, 5.364 vs
  5.026), which itself matched SP (5.088, 5.031);
* **weight decay** of hidden matrices multiplied by m, so that AdamW's decoupled decay per
  step, lr x wd, is the same at every width (as ``MuAdamW`` of the ``mup`` package does:
  it divides a matrix's lr by its width multiplier and multiplies its weight decay by it);
  without it a wide model's hidden weights decay m times less than the base model's;
* **attention** logits scaled by ``1 / d_head`` instead of ``1 / sqrt(d_head)`` (sec. 6,
  eq. 4: queries and keys become correlated during training, so their dot product grows
  like d_head), times ``sqrt(base_head)`` with ``base_head = base_width / base_n_head``
  the base model's head size, so the base model keeps SP's scale (``base_n_head``, default
  ``n_head``, is recorded in the config: a ladder that adds heads at a fixed head size
  keeps the head size, and so the scale, of its base); the query weights are
  zero-initialised (sec. D.2), so attention starts uniform.

``model.init_std`` is the base model's init scale: muP keeps its multiple of 1/sqrt(fan_in)
at every width, so it is a hyperparameter to tune at the base with the learning rate (Yang
et al. list it among those that transfer). GPT-2's 0.02 is small for a narrow base: at base
width 32 (2 layers, bytes, 262k tokens) it held every width about 0.1 nats back and the
widths level, and 0.0566 made the loss fall with each doubling (docs/mup.md).

Why not the ``mup`` package (Microsoft, 1.0.0, 2022): its install requires ``torchvision``
and ``seaborn``, and it works by building a base and a delta model per run
(``set_base_shapes``) to attach ``infshape`` to every parameter, replacing the readout with
its ``MuReadout`` and the optimizer with its ``MuAdam``; the attention scale and the
zero-initialised query stay the model's job anyway. The rules are a few lines on shapes
scalelab already knows (``base_width``, ``d_model``), so they live here, on our modules,
and the trainer's fused AdamW takes the per-parameter rates through ``model.lr_scale``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from scalelab.config import ModelConfig


def width_mult(cfg: ModelConfig) -> float:
    """m = d_model / base_width (1 under SP)."""
    return cfg.d_model / cfg.base_width if cfg.parametrization == "mup" else 1.0


def base_head_dim(cfg: ModelConfig) -> float:
    """The base model's head size: ``base_width / base_n_head`` (``base_n_head`` unset: the
    model's own ``n_head``, i.e. a ladder that keeps the head count and widens the heads)."""
    heads = cfg.base_n_head if cfg.base_n_head is not None else cfg.n_head
    return cfg.base_width / heads


def attention_scale(cfg: ModelConfig) -> float | None:
    """The softmax temperature: ``None`` (SDPA's 1/sqrt(d_head)) under SP; under muP
    ``sqrt(base_head) / d_head``, which is SP's 1/sqrt(d_head) wherever the head size is
    the base model's."""
    if cfg.parametrization != "mup":
        return None
    return math.sqrt(base_head_dim(cfg)) / cfg.head_dim


def output_mult(cfg: ModelConfig) -> float:
    """The factor on the logits: 1 / m under muP."""
    return 1.0 / width_mult(cfg)


def _is_hidden(name: str, p: nn.Parameter) -> bool:
    return p.dim() >= 2 and not name.startswith(("tok_emb", "pos_emb", "head"))


@torch.no_grad()
def init_mup(model: nn.Module, cfg: ModelConfig) -> None:
    """Re-initialise a transformer built under SP (``init_weights``) with muP's rules: hidden
    matrices' std times sqrt(base_width / d_model) (variance 1/fan_in; the residual
    projections keep their extra 1/sqrt(2 n_layer)), queries at zero, and an untied head
    at zero if ``mup_zero_readout``."""
    m = width_mult(cfg)
    for name, p in model.named_parameters():
        if _is_hidden(name, p):
            p.mul_(1.0 / math.sqrt(m))
        if name.endswith("attn.qkv.weight"):
            q_rows = cfg.n_head * cfg.head_dim
            p[:q_rows].zero_()
    if cfg.mup_zero_readout and not cfg.tie_embeddings:
        head = getattr(model, "head", None)
        if isinstance(head, nn.Linear):
            head.weight.zero_()


def lr_scales(model: nn.Module, cfg: ModelConfig) -> Callable[[torch.Tensor], float]:
    """``p -> multiplier of the Adam learning rate``: 1/m for hidden matrices, 1 otherwise
    (the trainer's ``make_optimizer`` groups parameters by it)."""
    m = width_mult(cfg)
    hidden = {id(p) for name, p in model.named_parameters() if _is_hidden(name, p)}

    def scale(p: torch.Tensor) -> float:
        return 1.0 / m if id(p) in hidden else 1.0

    return scale


def decay_scales(model: nn.Module, cfg: ModelConfig) -> Callable[[torch.Tensor], float]:
    """``p -> multiplier of the weight decay``: m for hidden matrices, 1 otherwise. AdamW
    decays by ``lr x wd`` a step (decoupled, Loshchilov & Hutter 2019), so with the hidden
    lr at lr/m the decay must be wd x m for the product, and the pull of the decay against
    the updates, to stay what it is at the base width (``MuAdamW`` does the same)."""
    lr_scale = lr_scales(model, cfg)

    def scale(p: torch.Tensor) -> float:
        return 1.0 / lr_scale(p)

    return scale


__all__ = [
    "attention_scale",
    "base_head_dim",
    "decay_scales",
    "init_mup",
    "lr_scales",
    "output_mult",
    "width_mult",
]
