"""``size_for(target) -> ModelConfig``: a model shape for a target parameter count.

The rule, in order:

1. **Which N.** ``target`` is non-embedding parameters by default (Kaplan et al. 2020, the N of
   their laws); ``n="total"`` (Hoffmann et al. 2022) or any of ``N_DEFINITIONS`` instead.
2. **Aspect ratio.** The preferred ``d_model / n_layer`` grows slowly with N:
   ``a(N) = 56.9 (N / 1e8) ** 0.117``, the least-squares fit of ln(d_model / n_layer) on ln N
   over the 50 shapes of Chinchilla's Table A9 (Hoffmann et al. 2022; N counted by scalelab
   for a plain transformer of each shape, ``tests/test_accounting_shape.py`` refits it). It
   gives a = 19 at 1e4, 57 at 1e8 and 97 at 1e10; Kaplan et al. (2020, Fig. 5) found the loss
   within a few percent over a wide band of aspect ratios (roughly 20 to 200), so the exact
   value matters little, but a ladder should keep one rule.
3. **Heads.** Heads of ``head_dim`` = 64 (``n_head = d_model / 64``, d_model a multiple of 64)
   as in GPT-2/GPT-3 and most of Table A9; below ``tiny_heads * head_dim`` (256) a fixed
   ``tiny_heads`` = 4 heads, d_model a multiple of 4 (of 8 with rotary positions, which need an
   even head size). ``d_ff`` keeps the config's default (4 d_model, or 8/3 d_model gated).
4. **Search.** For every depth within a factor 2 of the depth the aspect ratio implies, the
   widths just below and above the target; among shapes with aspect ratio within a factor 2
   of a(N), the one nearest a(N) whose count is within ``tolerance`` (2%) of the target, else
   the one nearest the target.

5. **Shared weights.** When N does not change with depth (ALBERT and the Universal
   Transformer reuse one block), depth cannot fine-tune N, so widths step by ``tiny_heads``
   (4, or 8 with rotary) at every size, with ``d_model // head_dim`` heads where that count
   divides d_model (head size near 64); depth then follows the aspect ratio alone (worst
   miss from 1e5 to 1e8: 4.1% for albert, 5.9% for universal).

How close it lands (worst miss measured over 161 log-spaced targets, plain / SwiGLU+rotary):
within 2% from 1e8 up; 2-4.5% from 1e5 to 1e8, worst near d_model 256-512 where steps of one
64-wide head are coarse; 5% / 10% at 1e5 and 11% / 26% at 1e4, where one layer of width 28 is
already 9.5k parameters (``tiny_heads=2`` gives a finer grid there). ``count(size_for(x))``
says exactly; a ladder should record that N, not the target.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from scalelab.accounting.core import N_DEFINITIONS, n_of, tally_of_config
from scalelab.config import ModelConfig, section_from_dict
from scalelab.errors import ConfigError

ASPECT_AT_1E8 = 56.9
ASPECT_SLOPE = 0.117
_MAX_WIDTH = 65536


def aspect_ratio(n: float) -> float:
    """Preferred d_model / n_layer at N parameters (fit to Chinchilla Table A9)."""
    return ASPECT_AT_1E8 * (n / 1e8) ** ASPECT_SLOPE


def _widths(head_dim: int, tiny_heads: int, rotary: bool, fixed_heads: int | None) -> list[int]:
    if fixed_heads is not None:
        step = fixed_heads * (2 if rotary else 1)
        return list(range(step, _MAX_WIDTH + 1, step))
    tiny_step = tiny_heads * (2 if rotary else 1)
    switch = tiny_heads * head_dim
    return [*range(2 * tiny_step, switch, tiny_step), *range(switch, _MAX_WIDTH + 1, head_dim)]


def _depth_free(make: Any, n: str, width: int) -> bool:
    """Whether N (definition ``n``) is the same at depths 1 and 2: shared-weight stacks."""
    one, two = make(1, width), make(2, width)
    if one is None or two is None:
        return False
    return n_of(tally_of_config(one), n) == n_of(tally_of_config(two), n)


def size_for(
    target_params: float,
    *,
    arch: str = "transformer",
    vocab_size: int = ModelConfig.vocab_size,
    context: int = ModelConfig.context,
    n: str = "non_embedding",
    head_dim: int = 64,
    tiny_heads: int = 4,
    tolerance: float = 0.02,
    **fixed: Any,
) -> ModelConfig:
    """A ``ModelConfig`` of about ``target_params`` parameters (N = ``n``), by the rule above.

    ``fixed`` holds any other model fields (``norm="rmsnorm"``, ``mlp="swiglu"``, ...); fixing
    ``n_layer``, ``d_model`` or ``n_head`` leaves only the others to choose.
    """
    if isinstance(target_params, bool) or not isinstance(target_params, (int, float)):
        raise ConfigError(f"target_params must be a number, got {target_params!r}")
    if not math.isfinite(target_params) or target_params < 1:
        raise ConfigError(f"target_params must be a positive number, got {target_params!r}")
    if n not in N_DEFINITIONS:
        raise ConfigError(f"n = {n!r} is not one of {', '.join(N_DEFINITIONS)}")
    if head_dim < 1 or tiny_heads < 1:
        raise ConfigError("head_dim and tiny_heads must be positive integers")
    fixed_layers = fixed.pop("n_layer", None)
    fixed_width = fixed.pop("d_model", None)
    fixed_heads = fixed.pop("n_head", None)
    base = {"arch": arch, "vocab_size": vocab_size, "context": context, **fixed}
    # unknown or mistyped fields fail here, by name; shapes below are variations of this config
    template = section_from_dict(ModelConfig, base, "model")
    rotary = base.get("pos", ModelConfig.pos) == "rotary"
    a = aspect_ratio(target_params)

    def make(n_layer: int, d_model: int) -> ModelConfig | None:
        heads = fixed_heads
        if heads is None:
            heads = d_model // head_dim if d_model >= tiny_heads * head_dim else tiny_heads
        try:
            return dataclasses.replace(
                template,
                n_layer=n_layer,
                d_model=d_model,
                n_head=heads,
                d_ff=fixed.get("d_ff"),  # None: the default for this width
                n_kv_head=fixed.get("n_kv_head"),
            )
        except ConfigError:
            return None  # e.g. a fixed n_kv_head that does not divide this head count

    if fixed_width is not None:
        widths = [int(fixed_width)]
    elif fixed_layers is None and _depth_free(make, n, tiny_heads * head_dim):
        # every width the heads rule allows, in steps of one tiny head group (rule 5)
        step = (fixed_heads or tiny_heads) * (2 if rotary else 1)

        def heads_fit(w: int) -> bool:
            h = fixed_heads or (w // head_dim if w >= tiny_heads * head_dim else tiny_heads)
            return w % h == 0 and not (rotary and (w // h) % 2)

        widths = [w for w in range(2 * step, _MAX_WIDTH + 1, step) if heads_fit(w)]
    else:
        widths = _widths(head_dim, tiny_heads, rotary, fixed_heads)

    cache: dict[tuple[int, int], tuple[ModelConfig, int] | None] = {}

    def evaluate(n_layer: int, i: int) -> tuple[ModelConfig, int] | None:
        key = (n_layer, i)
        if key not in cache:
            cfg = make(n_layer, widths[i])
            cache[key] = None if cfg is None else (cfg, n_of(tally_of_config(cfg), n))
        return cache[key]

    if fixed_layers is not None:
        depths = [int(fixed_layers)]
    else:
        # N ~ 12 n_layer d_model^2 (Kaplan et al. 2020, eq. 2.1) with d_model = a n_layer
        depth = (target_params / (12 * a * a)) ** (1 / 3)
        depths = list(range(max(1, math.floor(depth / 2)), math.ceil(2 * depth) + 2))

    candidates: list[tuple[ModelConfig, int]] = []
    for n_layer in depths:
        # N grows with d_model at a fixed depth: bisect for the first width at or above target
        lo, hi = 0, len(widths)
        while lo < hi:
            mid = (lo + hi) // 2
            got = evaluate(n_layer, mid)
            if got is not None and got[1] >= target_params:
                hi = mid
            else:
                lo = mid + 1
        for i in (lo - 1, lo):
            if 0 <= i < len(widths) and (got := evaluate(n_layer, i)) is not None:
                candidates.append(got)
    if not candidates:
        raise ConfigError(
            f"no {arch} shape with the fixed fields {sorted(fixed)} reaches {target_params:.3g} "
            "parameters; relax a fixed field"
        )

    def miss(c: tuple[ModelConfig, int]) -> float:
        return abs(math.log(max(c[1], 1) / target_params))

    def off_aspect(c: tuple[ModelConfig, int]) -> float:
        return abs(math.log(c[0].d_model / c[0].n_layer / a))

    if fixed_layers is None and fixed_width is None:
        near = [c for c in candidates if off_aspect(c) <= math.log(2)]
        candidates = near or candidates
    within = [c for c in candidates if miss(c) <= math.log1p(tolerance)]
    best = min(within, key=off_aspect) if within else min(candidates, key=miss)
    return best[0]
