"""The architecture section of a study report: figures plus an HTML fragment.

``architecture_section(db, out_dir)`` writes the frontier figure (:func:`plot_comparison`),
the per-architecture training curves and (where the store holds depth and width ladders) the
depth-vs-width table, and returns them with an HTML fragment that a report page embeds. The
analysis is :mod:`scalelab.analysis.arch_compare`; this module only draws and writes it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.analysis.arch_compare import (
    Comparison,
    Slope,
    compare,
)
from scalelab.analysis.depth_vs_width import (
    DirectionScaling,
    depth_width,
)
from scalelab.errors import FitError
from scalelab.reporting.plots import save
from scalelab.results.points import load_points


@dataclass
class ArchSection:
    """What the report shows about architectures: a title, an HTML fragment, the figure
    files it refers to (relative names inside ``out_dir``), and the analysis as data."""

    title: str
    html: str
    figures: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def _ci(sl: Any) -> str:
    if sl.alpha is None:
        return f'<span title="{html.escape(sl.error or "")}">-</span>'
    if not sl.ci:
        return f"{sl.alpha:.3f}"
    return f"{sl.alpha:.3f} [{sl.ci[0]:.3f}, {sl.ci[1]:.3f}]"


def _slopes_html(cmp: Comparison) -> str:
    head = (
        "<tr><th>arch</th><th>points</th><th>N</th>"
        f"<th>alpha vs {html.escape(cmp.compute)} (95%)</th><th>alpha vs N (95%)</th>"
        "<th>E + A N<sup>-alpha</sup>: E, alpha</th><th>loss (smallest -> largest)</th></tr>"
    )
    rows = []
    for a in sorted(cmp.archs, key=lambda a: -(a.vs_compute.alpha or -math.inf)):
        p = a.power_params.params
        power = f"{p['E']:.3g}, {p['alpha']:.3f}" if p else "-"
        rows.append(
            f"<tr><td>{html.escape(a.arch)}</td><td>{a.n_points}</td>"
            f"<td>{html.escape(a.n_kind)}</td><td>{_ci(a.vs_compute)}</td>"
            f"<td>{_ci(a.vs_params)}</td><td>{power}</td>"
            f"<td>{a.loss_range[1]:.3f} -> {a.loss_range[0]:.3f}</td></tr>"
        )
    return f'<table class="arch-slopes">{head}{"".join(rows)}</table>'


def _frontier_html(cmp: Comparison) -> str:
    items = []
    for front in (cmp.frontier_compute, cmp.frontier_params):
        regions = "; ".join(
            f"<b>{html.escape(r['arch'])}</b> {r['from']:.3g} to {r['to']:.3g}"
            for r in front.regions
        )
        items.append(f"<li>frontier vs {html.escape(front.cost)}: {regions}</li>")
    for c in cmp.crossovers("C"):
        where = "inside" if c["inside_range"] else "outside"
        items.append(
            f"<li>{html.escape(c['arch'])} and transformer lines cross at "
            f"{cmp.compute} {c['x']:.3g} ({where} the measured range): "
            f"{html.escape(c['ahead_below'])} ahead below, "
            f"{html.escape(c['ahead_above'])} above</li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _depth_width_html(rows: list[DirectionScaling], compute: str) -> str:
    head = (
        "<tr><th>arch</th><th>direction</th><th>held fixed</th><th>values</th>"
        f"<th>alpha vs {html.escape(compute)}</th><th>alpha vs N</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(r.arch)}</td><td>{r.direction}</td>"
        f"<td>{'d_model' if r.direction == 'depth' else 'n_layer'}={r.fixed}</td>"
        f"<td>{', '.join(map(str, r.values))}</td><td>{_ci(r.vs_compute)}</td>"
        f"<td>{_ci(r.vs_params)}</td></tr>"
        for r in rows
    )
    return f'<table class="arch-depth-width">{head}{body}</table>'


def plot_curves(db: str | Path, out: str | Path, *, study: str | None = None) -> Path:
    """One panel per architecture: validation loss against tokens seen for each size,
    the evaluations logged during training (``load_points(curves=True)``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    pts = load_points(db, study=study, curves=True)
    if pts.empty:
        raise FitError(f"no training curves in {db}: run the study first")
    # the study's own order (grid order: the first architecture listed first)
    archs = list(dict.fromkeys(load_points(db, study=study)["arch"]))
    cols = min(4, len(archs))
    rows = math.ceil(len(archs) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.4 * cols, 2.6 * rows), sharex=True, sharey=True, squeeze=False
    )
    cmap = plt.get_cmap("viridis")
    for ax, arch in zip(axes.flat, archs, strict=False):
        g = pts[pts["arch"] == arch]
        order = g.groupby("run_id")["N"].first().sort_values()
        for j, (run_id, n) in enumerate(order.items()):
            r = g[g["run_id"] == run_id].sort_values("D")
            color = cmap(j / max(1, len(order) - 1))
            ax.plot(r["D"], r["loss"], "o-", color=color, lw=1.2, ms=2.5, label=f"N={n:,.0f}")
        ax.set_title(arch, fontsize=9)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.2)
        ax.legend(fontsize=6)
    for ax in axes.flat[len(archs) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("tokens seen")
    for ax in axes[:, 0]:
        ax.set_ylabel("val loss (nats)")
    fig.tight_layout()

    return save(fig, Path(out))


def architecture_section(
    db: str | Path,
    out_dir: str | Path,
    *,
    study: str | None = None,
    compute: str = "C_exact",
    bootstrap: int = 1000,
) -> ArchSection:
    """Write ``arch-frontier.png`` and ``arch-curves.png`` into ``out_dir`` and return the
    section: slopes table, frontier regions and crossings, the figures, and the
    depth-vs-width table when the store's points hold such ladders."""
    out_dir = Path(out_dir)
    cmp = compare(db, study=study, compute=compute, bootstrap=bootstrap)
    frontier_png = plot_comparison(cmp, out_dir / "arch-frontier.png")
    curves_png = plot_curves(db, out_dir / "arch-curves.png", study=study)
    dw = depth_width(db, study=study, compute=compute, bootstrap=bootstrap)
    # Only ladders of at least three shapes say anything about a direction.
    dw = [r for r in dw if len(r.values) >= 3]
    parts = [
        "<p>Per architecture, the slope alpha of log loss = log k - alpha log x (Tay et al. "
        "2022), fitted by least squares with a 95% bootstrap interval; N is non-embedding "
        "(active non-embedding for mixture-of-experts). A larger alpha gains more from "
        "scale; a negative one got worse as it grew.</p>",
        _slopes_html(cmp),
        f'<img src="{frontier_png.name}" alt="loss against compute and parameters">',
        _frontier_html(cmp),
        f'<img src="{curves_png.name}" alt="training curves per architecture">',
    ]
    if dw:
        parts += ["<h3>Depth vs width</h3>", _depth_width_html(dw, compute)]
    notes = cmp.notes()
    if notes:
        parts.append(
            "<details><summary>not fitted</summary><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
            + "</ul></details>"
        )
    data = cmp.to_dict()
    data["depth_width"] = [r.to_dict() for r in dw]
    return ArchSection(
        "Architectures",
        "\n".join(parts),
        [frontier_png, curves_png],
        _jsonable(data),
    )


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


__all__ = ["ArchSection", "architecture_section", "plot_curves"]


# --- figures ------------------------------------------------------------------------------


def plot_comparison(cmp: Comparison, out: str | Path, *, dpi: int = 120) -> Path:
    """A two-panel PNG: loss against compute and against N, every architecture's points
    and fitted log-log line, the frontier over all of them drawn through its points.
    Written atomically (temporary name, then ``os.replace``)."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    df = cmp.points
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    colors = plt.get_cmap("tab20").colors
    panels = (
        ("x_C", f"training FLOPs ({cmp.compute})", cmp.frontier_compute, "vs_compute"),
        ("N", "parameters N (non-embedding; switch: active)", cmp.frontier_params, "vs_params"),
    )
    for ax, (col, xlabel, front, which) in zip(axes, panels, strict=True):
        for i, a in enumerate(cmp.archs):
            g = df[df["arch"] == a.arch].sort_values(col)
            color = colors[(2 * i) % 20 if i < 10 else (2 * (i - 10) + 1) % 20]
            sl: Slope = getattr(a, which)
            lab = a.arch + (f" ({sl.alpha:.3f})" if sl.alpha is not None else "")
            ax.plot(g[col], g[cmp.quality], "o", color=color, ms=4, label=lab)
            if sl.alpha is not None and sl.k is not None:
                xs = np.geomspace(g[col].min(), g[col].max(), 20)
                ax.plot(xs, sl.k * xs ** (-sl.alpha), "-", color=color, lw=1, alpha=0.8)
        fp = front.points
        ax.plot(fp[col], fp[cmp.quality], "k--", lw=1.2, alpha=0.6, label="frontier")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"validation {cmp.quality}")
        ax.legend(fontsize=7, ncol=2, title="arch (alpha)", title_fontsize=7)
        ax.grid(True, which="both", alpha=0.2)
    axes[0].set_title("loss vs compute")
    axes[1].set_title("loss vs parameters")
    return save(fig, out, dpi=dpi)  # atomic, closes the figure
