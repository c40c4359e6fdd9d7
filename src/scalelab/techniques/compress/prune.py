"""Pruning: set weights to zero, unstructured by magnitude or structured by importance.

* ``unstructured`` (the default): the smallest-magnitude weights of the body's Linears
  (Han et al. 2015; the magnitude baseline of Gale et al. 2019), either ``scope="layer"``
  (the same sparsity in every Linear) or ``scope="global"`` (one threshold over all of
  them). Exactly ``round(level x numel)`` weights become zero.
* ``heads``: whole attention heads, ranked over all layers by the mean norm of what each
  head adds to the residual stream on a calibration sample (a data-based variant of the
  head importance of Michel et al. 2019, who use the gradient of the loss); the head's
  query rows and output columns are zeroed (and its key/value rows once every query head of
  their group is gone). At least one head per layer is kept.
* ``neurons``: MLP hidden units in every layer, ranked by mean |activation| x the norm of
  their output column; the unit's input row(s) and output column are zeroed.

``level`` is the fraction removed, in [0, 1). The masks returned are the kept entries;
recovery fine-tuning (``recover.py``) multiplies them back after every step.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.techniques.compress.base import body_linears
from scalelab.techniques.compress_options import SCOPES, STRUCTURES


def _smallest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """A boolean mask of exactly the ``k`` smallest entries (ties broken by position)."""
    flat = scores.flatten()
    drop = torch.zeros_like(flat, dtype=torch.bool)
    if k > 0:
        drop[torch.argsort(flat, stable=True)[:k]] = True
    return drop.view_as(scores)


@torch.no_grad()
def magnitude(model: nn.Module, sparsity: float, scope: str = "layer") -> dict[str, torch.Tensor]:
    """Zero the ``sparsity`` share of smallest |w| of every body Linear; returns keep masks."""
    if scope not in SCOPES:
        raise ConfigError(f"prune scope {scope!r} is not one of {', '.join(SCOPES)}")
    layers = body_linears(model)
    masks: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, m in layers:
            w = m.weight
            keep = ~_smallest(w.abs(), round(sparsity * w.numel()))
            w.mul_(keep)
            masks[f"{name}.weight"] = keep
        return masks
    flat = torch.cat([m.weight.abs().flatten() for _, m in layers])
    drop = _smallest(flat, round(sparsity * flat.numel()))
    start = 0
    for name, m in layers:
        n = m.weight.numel()
        keep = ~drop[start : start + n].view_as(m.weight)
        m.weight.mul_(keep)
        masks[f"{name}.weight"] = keep
        start += n
    return masks


def _blocks(model: nn.Module, attrs: tuple[str, ...], needs: str) -> list[tuple[str, nn.Module]]:
    """The modules that carry every one of ``attrs``; none is a ConfigError saying ``needs``."""
    blocks = [(n, m) for n, m in model.named_modules() if all(hasattr(m, a) for a in attrs)]
    if not blocks:
        raise ConfigError(f"{needs}: use structure='unstructured' for this architecture")
    return blocks


def _attention_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return _blocks(
        model,
        ("qkv", "proj", "n_head"),
        "structured head pruning needs attention layers with fused qkv and proj "
        "(the transformer family)",
    )


def _mlp_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return _blocks(
        model,
        ("fc", "proj", "gated"),
        "structured neuron pruning needs MLPs with fc and proj (the transformer family)",
    )


@torch.no_grad()
def _proj_inputs(model: nn.Module, mods: list[tuple[str, nn.Module]], x: torch.Tensor) -> dict:
    """The inputs of each module's ``proj`` on the calibration batch, flattened to [tokens, in]."""
    seen: dict[str, torch.Tensor] = {}
    hooks = []
    for name, m in mods:

        def hook(_mod: nn.Module, args: tuple, name: str = name) -> None:
            seen[name] = args[0].detach().flatten(0, -2).float()

        hooks.append(m.proj.register_forward_pre_hook(hook))
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


@torch.no_grad()
def heads(model: nn.Module, fraction: float, calib: torch.Tensor) -> dict[str, torch.Tensor]:
    attn = _attention_blocks(model)
    inputs = _proj_inputs(model, attn, calib)
    scores = []
    for name, m in attn:
        hd, nh = m.head_dim, m.n_head
        h_in = inputs[name].view(-1, nh, hd)  # [tokens, head, hd]
        w = m.proj.weight.view(m.proj.weight.shape[0], nh, hd)  # [d_model, head, hd]
        contrib = torch.einsum("thd,ohd->tho", h_in, w.float())  # each head's residual update
        scores.append(contrib.norm(dim=-1).mean(0))
    score = torch.stack(scores)  # [layer, head]
    n_layers, nh = score.shape
    k = round(fraction * score.numel())
    k = min(k, n_layers * (nh - 1))  # keep one head per layer
    # rank globally, but never the best head of a layer
    ranked = score.clone()
    ranked[torch.arange(n_layers), score.argmax(dim=1)] = float("inf")
    drop = _smallest(ranked, k)
    masks: dict[str, torch.Tensor] = {}
    for (name, m), drop_l in zip(attn, drop, strict=True):
        hd, nh, nkv = m.head_dim, m.n_head, m.n_kv_head
        rows = torch.ones(m.qkv.weight.shape[0], dtype=torch.bool)
        cols = torch.ones(m.proj.weight.shape[1], dtype=torch.bool)
        group = nh // nkv
        for h in torch.nonzero(drop_l).flatten().tolist():
            rows[h * hd : (h + 1) * hd] = False
            cols[h * hd : (h + 1) * hd] = False
        for g in range(nkv):
            if bool(drop_l[g * group : (g + 1) * group].all()):
                for base in (nh * hd, nh * hd + nkv * hd):  # k rows, then v rows
                    rows[base + g * hd : base + (g + 1) * hd] = False
        masks[f"{name}.qkv.weight"] = rows[:, None].expand_as(m.qkv.weight).clone()
        masks[f"{name}.proj.weight"] = cols[None, :].expand_as(m.proj.weight).clone()
        m.qkv.weight.mul_(masks[f"{name}.qkv.weight"])
        m.proj.weight.mul_(masks[f"{name}.proj.weight"])
        if m.qkv.bias is not None:
            m.qkv.bias.mul_(rows)
    return masks


@torch.no_grad()
def neurons(model: nn.Module, fraction: float, calib: torch.Tensor) -> dict[str, torch.Tensor]:
    mlps = _mlp_blocks(model)
    inputs = _proj_inputs(model, mlps, calib)
    masks: dict[str, torch.Tensor] = {}
    for name, m in mlps:
        act = inputs[name].abs().mean(0)  # [d_ff]
        score = act * m.proj.weight.float().norm(dim=0)
        drop = _smallest(score, round(fraction * score.numel()))
        keep = ~drop
        fc_rows = torch.cat([keep, keep]) if m.gated else keep
        masks[f"{name}.fc.weight"] = fc_rows[:, None].expand_as(m.fc.weight).clone()
        masks[f"{name}.proj.weight"] = keep[None, :].expand_as(m.proj.weight).clone()
        m.fc.weight.mul_(masks[f"{name}.fc.weight"])
        m.proj.weight.mul_(masks[f"{name}.proj.weight"])
        if m.fc.bias is not None:
            m.fc.bias.mul_(fc_rows)
    return masks


def prune(
    model: nn.Module,
    level: float,
    *,
    structure: str = "unstructured",
    scope: str = "layer",
    calib: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Prune ``model`` in place; returns the keep mask of every pruned weight."""
    if not 0.0 <= level < 1.0:
        raise ConfigError(f"prune level is the fraction removed, in [0, 1); got {level}")
    if structure not in STRUCTURES:
        raise ConfigError(f"prune structure {structure!r} is not one of {', '.join(STRUCTURES)}")
    if structure == "unstructured":
        return magnitude(model, level, scope)
    assert calib is not None, "structured pruning ranks by a calibration sample"
    return heads(model, level, calib) if structure == "heads" else neurons(model, level, calib)
