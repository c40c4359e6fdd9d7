"""The report's "Memorization" section: bits stored against N, extraction, the loss floor.

Reads the measurement points (``kind = 'capacity'`` and ``'memorization'``) that
``scalelab capacity`` and ``scalelab memorization`` leave in the store; without any, the
section is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.reporting import plots
from scalelab.reporting.section import ReportContext, Section, esc, img, table

# Niu et al. 2024 ("Beyond scaling laws: understanding transformer performance with
# associative memory"): the cross-entropy of a transformer cannot fall below about 1 nat.
CLAIMED_FLOOR_NATS = 1.0


def capacity_figure(fits: list[Any], df: pd.DataFrame, path: Any) -> Any:
    """Bits stored against N (non-embedding): every measured point, the capacity points
    joined, the fitted bits-per-parameter line, and the published 2 and 3.6 bits/param."""
    from scalelab.memorization.analysis import REFERENCE_BITS_PER_PARAM

    fig, ax = plots.figure()
    marks = {"fp32": "o", "int8": "s", "int4": "^"}
    cmap = plots.pyplot().get_cmap("tab10")
    kinds = sorted(df["corpus_kind"].unique())
    for i, kind in enumerate(kinds):
        for prec, g in df[df["corpus_kind"] == kind].groupby("precision"):
            ax.plot(
                g["N_non_embedding"],
                g["bits"].clip(lower=1),
                marks.get(prec, "o"),
                color=cmap(i),
                alpha=0.35,
                ms=5,
            )
    n_all = df["N_non_embedding"].astype(float)
    grid = np.geomspace(n_all.min() / 1.3, n_all.max() * 1.3, 50)
    for i, kind in enumerate(kinds):
        for f in fits:
            if f.kind != kind:
                continue
            pts = pd.DataFrame(f.points)
            ls = {"fp32": "-", "int8": "--", "int4": ":"}.get(f.precision, "-")
            ax.plot(
                pts["N"],
                pts["bits"].clip(lower=1),
                marks.get(f.precision, "o"),
                color=cmap(i),
                ms=6,
            )
            ax.plot(
                grid,
                f.bits_per_param * grid,
                ls,
                color=cmap(i),
                lw=1,
                label=f"{kind} {f.precision}: {f.bits_per_param:.3f} bits/param",
            )
    for (name, b), c in zip(REFERENCE_BITS_PER_PARAM.items(), ("grey", "black"), strict=True):
        ax.plot(grid, b * grid, color=c, lw=0.8, alpha=0.6, label=f"{b:g} bits/param ({name})")
    plots.log_axes(ax, y=True)
    ax.set_xlabel("N (non-embedding parameters)")
    ax.set_ylabel("bits stored")
    ax.set_title("Bits stored against N (capacity: the most any corpus got)")
    ax.legend(fontsize=7, loc="upper left")
    return plots.save(fig, path)


def extraction_figure(mem: pd.DataFrame, path: Any) -> Any:
    """Extractable share of canaries against exposures (repeats x epochs), per size, at the
    longest prompt; training and validation windows as horizontal marks."""
    fig, ax = plots.figure()
    k = mem["k"].max()
    sizes = sorted(mem["N_non_embedding"].unique())
    col = plots.colors(sizes)
    for n in sizes:
        g = mem[(mem["N_non_embedding"] == n) & (mem["k"] == k)]
        c = g[g["source"] == "canary"].sort_values("exposures")
        if len(c):
            ax.plot(c["exposures"], c["share"], "o-", color=col[n], label=f"N = {plots.si(n)}")
        for src, ls in (("train", "--"), ("val", ":")):
            s = g[g["source"] == src]["share"]
            if len(s):
                ax.axhline(float(s.iloc[0]), color=col[n], ls=ls, lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("exposures of a canary (repeats x epochs)")
    ax.set_ylabel(f"extractable share (k = {k})")
    ax.set_title("Canaries emitted exactly (dashed: training windows, dotted: validation)")
    ax.legend(fontsize=7)
    return plots.save(fig, path)


def memorization_section(ctx: ReportContext) -> Section | None:
    from scalelab.memorization.analysis import (
        capacity_points,
        extraction_points,
        extraction_slopes,
        fit_capacity,
    )

    cap = capacity_points(ctx.db, study=ctx.study)
    mem = extraction_points(ctx.db, study=ctx.study)
    if cap.empty and mem.empty:
        return None
    html, figures, data = [], [], {}
    if not cap.empty:
        try:
            fits = fit_capacity(cap, bootstrap=max(ctx.bootstrap, 200))
        except FitError as e:
            fits, html = [], [f"<p>No slope: {esc(e)}</p>"]
        png = capacity_figure(fits, cap, ctx.out / "memorization-capacity.png")
        figures.append(png)
        rows = []
        for f in fits:
            rows.append(
                [
                    f.kind,
                    f.precision,
                    f"{f.exposures:.0f}",
                    len(f.points),
                    f"{f.bits_per_param:.4f} [{f.bits_per_param_ci[0]:.4f}, "
                    f"{f.bits_per_param_ci[1]:.4f}]",
                    f"{f.exponent:.2f} [{f.exponent_ci[0]:.2f}, {f.exponent_ci[1]:.2f}]",
                ]
            )
        html.append(
            "<p>Bits stored: for every training fact, log<sub>2</sub>(choices) minus the "
            "model's cross-entropy in bits on the value's tokens, floored at 0 and summed "
            "(Allen-Zhu &amp; Li 2024's bit-complexity bound); for random strings, entropy "
            "minus code length. The capacity at a size is the most any corpus got; the "
            "line is bits = k N through the origin, with a 95% bootstrap interval over "
            "sizes. Reference lines: 2 bits/param (Allen-Zhu &amp; Li, 1000 exposures) "
            "and 3.6 (Morris et al. 2025).</p>"
        )
        html.append(img(png, "bits stored against N"))
        html.append(
            table(
                [
                    "corpus",
                    "precision",
                    "exposures",
                    "sizes",
                    "bits / non-emb. param [95%]",
                    "exponent of N [95%]",
                ],
                rows,
                "num",
            )
        )
        data["capacity_fits"] = [f.to_dict() for f in fits]
        # the loss floor: the lowest per-token loss on the memorised tokens, against 1 nat
        floor_rows = []
        for kind, g in cap[cap["precision"] == "fp32"].groupby("corpus_kind"):
            best = g.loc[g["min_target_loss"].idxmin()]
            floor_rows.append(
                [
                    kind,
                    f"{g['train_target_loss'].min():.4f}",
                    f"{best['min_target_loss']:.4f}",
                    f"{g['val_target_loss'].min():.4f}",
                    f"{g['uniform_loss'].iloc[0]:.3f}",
                    f"{g['train_loss'].min():.4f}",
                    f"{g['val_loss'].min():.4f}",
                ]
            )
        html.append(
            f"<p>The loss floor: Niu et al. 2024 argue the cross-entropy cannot fall below "
            f"about {CLAIMED_FLOOR_NATS:g} nat. Lowest losses reached (nats per token): on "
            f"the memorised tokens (attribute values or string symbols) of the training "
            f"set, per kind of corpus; on the same tokens of unseen people/strings; and the "
            f"trainer's loss over all tokens.</p>"
        )
        html.append(
            table(
                [
                    "corpus",
                    "train, memorised tokens",
                    "best attribute",
                    "validation, same tokens",
                    "uniform guess",
                    "train, all tokens",
                    "validation, all tokens",
                ],
                floor_rows,
                "num",
            )
        )
        data["loss_floor"] = floor_rows
    if not mem.empty:
        png = extraction_figure(mem, ctx.out / "memorization-extraction.png")
        figures.append(png)
        slopes = extraction_slopes(mem, bootstrap=max(ctx.bootstrap, 200))
        data["extraction_slopes"] = slopes
        rows = [
            [
                name.replace("_", " "),
                f"{s['slope']:.3f}",
                f"[{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]",
                s["n"],
            ]
            for name, s in slopes.items()
        ]
        html.append(
            "<p>Greedy k-extractable share (Carlini et al. 2022): a sequence counts when "
            "greedy decoding from its k tokens before emits its next tokens exactly. "
            "Validation windows are the control.</p>"
        )
        html.append(img(png, "extractable share against exposures"))
        html.append(table(["share per decade of", "slope", "95%", "points"], rows, "num"))
        data["extraction"] = mem.to_dict(orient="records")
    return Section("Memorization", "".join(html), figures, data)


__all__ = ["CLAIMED_FLOOR_NATS", "capacity_figure", "extraction_figure", "memorization_section"]
