"""Depth vs width: how each architecture scales when only its depth (n_layer at one
d_model) or only its width (d_model at one n_layer) grows, after Tay et al. 2022
("Scaling Laws vs Model Architectures"), and the study file that asks for both ladders
(``studies/depth-width.toml`` is the output of :func:`depth_width_toml`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Architectures whose per-token compute follows the active, not the total, parameters.
from scalelab.analysis.arch_compare import prepare_points
from scalelab.analysis.slopes import Slope, slope
from scalelab.errors import FitError, ScalelabError


@dataclass(frozen=True)
class DirectionScaling:
    """One architecture scaled in one direction (depth: n_layer at fixed d_model; width:
    d_model at fixed n_layer)."""

    arch: str
    direction: str
    fixed: int  # the d_model (depth) or n_layer (width) held fixed
    values: tuple[int, ...]  # the n_layer (depth) or d_model (width) values
    vs_compute: Slope
    vs_params: Slope

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "direction": self.direction,
            "fixed": self.fixed,
            "values": list(self.values),
            "alpha_C": self.vs_compute.to_dict(),
            "alpha_N": self.vs_params.to_dict(),
        }


def depth_width_sizes(
    *,
    depths: Iterable[int],
    widths: Iterable[int],
    base_layers: int,
    base_width: int,
    n_head: int = 4,
) -> list[dict[str, Any]]:
    """The ``[[study.sizes]]`` of the depth-vs-width protocol: ``n_layer`` in ``depths`` at
    ``d_model = base_width``, and ``d_model`` in ``widths`` at ``n_layer = base_layers``
    (the shared base shape appears once)."""
    depths, widths = sorted(set(depths)), sorted(set(widths))
    if base_width not in widths or base_layers not in depths:
        raise ScalelabError(
            f"the base shape {base_layers} x {base_width} must be on both ladders: put "
            f"{base_layers} in depths and {base_width} in widths"
        )
    for d in widths:
        if d % n_head:
            raise ScalelabError(f"width {d} is not a multiple of n_head = {n_head}: change widths")
    if min(depths) < 1 or len(depths) < 3 or len(widths) < 3:
        raise ScalelabError("depths and widths each need at least 3 positive values for a slope")
    sizes = [
        {"name": f"L{n}-d{base_width}", "n_layer": n, "d_model": base_width, "n_head": n_head}
        for n in depths
    ]
    sizes += [
        {"name": f"L{base_layers}-d{d}", "n_layer": base_layers, "d_model": d, "n_head": n_head}
        for d in widths
        if d != base_width
    ]
    return sizes


def depth_width_toml(
    archs: Sequence[str],
    *,
    depths: Iterable[int] = (1, 2, 4, 8),
    widths: Iterable[int] = (32, 64, 128, 192),
    base_layers: int = 2,
    base_width: int = 64,
    tokens: int = 500_000,
    corpus: str = "python-stdlib:max_bytes=4000000",
    name: str = "depth-width",
) -> str:
    """A study TOML for the depth-vs-width protocol over ``archs``: every architecture
    on both ladders with the same token budget (as Tay et al. train every size for the
    same steps), so slopes differ only through the shape."""
    if len(archs) < 1:
        raise ScalelabError("depth_width_toml needs at least one architecture")
    sizes = depth_width_sizes(
        depths=depths, widths=widths, base_layers=base_layers, base_width=base_width
    )
    lines = [
        f"# Depth vs width (Tay et al. 2022, sec. 4): n_layer at d_model={base_width}, and",
        f"# d_model at n_layer={base_layers}; {len(sizes)} shapes x {len(archs)} architectures,",
        f"# {tokens:,} tokens each. Written by scalelab.analysis.depth_vs_width.depth_width_toml.",
        "#",
        f"#   scalelab sweep studies/{name}.toml --db runs/{name}.db --workers 2 --threads 1",
        f"#   scalelab compare --db runs/{name}.db --depth-width",
        "[study]",
        f'name = "{name}"',
        f'corpus = "{corpus}"',
        'tokenizer = "bytes"',
        "arch = [" + ", ".join(f'"{a}"' for a in archs) + "]",
        f"tokens = [{tokens}]",
        "seeds = [0]",
        "",
    ]
    for s in sizes:
        lines += [
            "[[study.sizes]]",
            f'name = "{s["name"]}"',
            f"n_layer = {s['n_layer']}",
            f"d_model = {s['d_model']}",
            f"n_head = {s['n_head']}",
            "",
        ]
    lines += [
        "[model]",
        "vocab_size = 258",
        "context = 128",
        "",
        "[train]",
        "batch_size = 16",
        "lr = 3e-3",
        "eval_every = 100",
        "eval_batches = 8",
        "",
    ]
    return "\n".join(lines)


def depth_width(
    points: Any,
    *,
    study: str | None = None,
    quality: str = "loss",
    compute: str = "C_exact",
    bootstrap: int = 1000,
    seed: int = 0,
) -> list[DirectionScaling]:
    """Per architecture, the slope of ``quality`` when only depth grows (the longest
    n_layer series at one d_model) and when only width grows (the longest d_model series
    at one n_layer). Architectures whose N does not grow with depth (shared weights:
    universal, albert) get no slope against N for depth, with the reason."""
    df = prepare_points(points, study=study, compute=compute)
    for col in ("n_layer", "d_model"):
        if col not in df.columns:
            raise FitError(f"depth vs width needs the shape column {col!r} in the points")
    out: list[DirectionScaling] = []
    for arch, g in df.groupby("arch", sort=False):
        for direction, fixed_col, vary_col in (
            ("depth", "d_model", "n_layer"),
            ("width", "n_layer", "d_model"),
        ):
            best = None
            for fixed, s in g.groupby(fixed_col):
                k = s[vary_col].nunique()
                if k >= 2 and (best is None or k > best[1].nunique()):
                    best = (int(fixed), s[vary_col], s)
            if best is None:
                continue
            fixed, _, s = best
            vs_c = slope(s, "x_C", quality=quality, bootstrap=bootstrap, seed=seed, label=compute)
            vs_n = slope(s, "N", quality=quality, bootstrap=bootstrap, seed=seed)
            if direction == "depth" and s["N"].nunique() == 1:
                vs_n = Slope(
                    "N",
                    n_points=len(s),
                    error=f"{arch} shares weights across layers: N does not change with depth",
                )
            out.append(
                DirectionScaling(
                    str(arch),
                    direction,
                    fixed,
                    tuple(sorted(int(v) for v in s[vary_col].unique())),
                    vs_c,
                    vs_n,
                )
            )
    return out


__all__ = ["DirectionScaling", "depth_width", "depth_width_sizes", "depth_width_toml"]
