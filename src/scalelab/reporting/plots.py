"""Shared plotting helpers for report sections: one style, log axes, atomic PNGs, data URIs.

Every figure goes through :func:`figure` and :func:`save`, so sections (the built-in ones and
those other areas add, such as the architecture comparison) look alike and a half-written PNG
never replaces a good one. matplotlib runs on the Agg backend: no display is needed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import atomic, fmt

DPI = 110
WIDTH, HEIGHT = 6.4, 4.2  # inches: two figures side by side fit a 1280-pixel page


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported late: only reports pay for it)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def figure(ncols: int = 1, *, width: float = WIDTH, height: float = HEIGHT) -> tuple[Any, Any]:
    """A figure with ``ncols`` axes in a row (one Axes, or an array of them)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=True)
    for ax in np.atleast_1d(axes):
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
    return fig, axes


def log_axes(ax: Any, x: bool = True, y: bool = True, values: Any = None) -> None:
    """Log scales. The loss axis is limited to ``values`` (the measured losses, padded) so a
    fitted line running off to E ~ 0 cannot squash the data, and, as losses rarely span a
    decade, it is labelled with plain numbers at 1, 1.5, 2, 3, ... rather than 10^0.4."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    if x:
        ax.set_xscale("log")
    if not y:
        return
    ax.set_yscale("log")
    if values is not None:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        if v.size:
            ax.set_ylim(v.min() / 1.08, v.max() * 1.08)
    lo, hi = ax.get_ylim()
    if hi / lo < 30:
        ticks = [m * 10.0**e for e in range(-3, 4) for m in (1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8)]
        ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
        fmt = ScalarFormatter()
        fmt.set_scientific(False)
        ax.yaxis.set_major_formatter(fmt)
        ax.yaxis.set_minor_formatter(NullFormatter())


def colors(values: Sequence[float], cmap: str = "viridis") -> dict[float, Any]:
    """One colour per distinct value, ordered on a log scale (small N dark, large N light)."""
    plt = pyplot()
    distinct = sorted(set(values))
    cm = plt.get_cmap(cmap)
    if len(distinct) == 1:
        return {distinct[0]: cm(0.4)}
    logs = np.log(distinct)
    span = logs[-1] - logs[0] or 1.0
    return {v: cm(0.9 * (lv - logs[0]) / span) for v, lv in zip(distinct, logs, strict=True)}


def save(fig: Any, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG atomically (:mod:`scalelab.atomic`) and close it."""
    plt = pyplot()
    out = Path(path)
    try:
        fig.tight_layout()
        with atomic.atomic_path(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return out


def data_uri(path: str | Path) -> str:
    """The PNG at ``path`` as a ``data:`` URI, so the page works offline and when mailed."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def si(x: float) -> str:
    """1.2e6 -> '1.2M' for legends and tables (:func:`scalelab.fmt.si`)."""
    return fmt.si(x)
