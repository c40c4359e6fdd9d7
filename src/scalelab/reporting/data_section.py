"""The report's "Data" section: which data, and how much of it, a model needs.

* keep-fraction curves (a store with runs on data selections, ``kind = "select"``): loss and
  effective-data multiplier against the kept share, one line per method and size, the
  full-data run as the reference; the smallest keep within 1% and 5% of it
  (:mod:`scalelab.select.analysis`);
* the overfitting map (a store with the ``overfit`` study): size x repetitions, coloured by
  the gap of each run's validation loss to the best size at that unique data, with the
  crossover and the data-constrained law's R_D* (:mod:`scalelab.analysis.overfit`).

Whichever part the store has no runs for is left out; with neither, the section is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scalelab.errors import ScalelabError
from scalelab.reporting import plots
from scalelab.reporting.section import ReportContext, Section, esc, img, table


def _f(x: Any, digits: int = 4) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "-"
    return f"{v:.{digits}g}" if math.isfinite(v) else "-"


def _keep_part(ctx: ReportContext) -> tuple[str, list[Any], dict[str, Any]] | None:
    from scalelab.select.analysis import keep_analysis

    try:
        a = keep_analysis(ctx.db, bootstrap=min(ctx.bootstrap, 100))
    except ScalelabError:
        return None
    t = a.table
    sel = t[t["method"] != "full"]
    full = t[t["method"] == "full"]
    sizes = sorted(sel["N"].unique())
    fig, axes = plots.figure(2)
    cmap = plots.pyplot().get_cmap("tab10")
    methods = sorted(sel["method"].unique())
    styles = ["-", "--", ":", "-."]
    for mi, method in enumerate(methods):
        for si, n in enumerate(sizes):
            g = sel[(sel["method"] == method) & (sel["N"] == n)].sort_values("keep")
            f = full[full["N"] == n]
            xs = list(g["keep"]) + ([1.0] if len(f) else [])
            ys = list(g["loss"]) + (list(f["loss"])[:1] if len(f) else [])
            sd = list(g["loss_sd"].fillna(0)) + (list(f["loss_sd"].fillna(0))[:1] if len(f) else [])
            label = f"{method}, N={plots.si(n)}"
            # error bars: the spread over seeds (differences inside it are noise)
            axes[0].errorbar(xs, ys, yerr=sd, fmt=styles[si % 4], marker="o", color=cmap(mi),
                             label=label, capsize=2, lw=1)  # fmt: skip
            axes[1].plot(g["keep"], g["d_mult"], styles[si % 4], marker="o", color=cmap(mi))
    for si, n in enumerate(sizes):
        f = full[full["N"] == n]
        if len(f):
            axes[0].axhline(float(f["loss"].iloc[0]), color="grey", ls=styles[si % 4], lw=0.8)
    axes[1].axhline(1.0, color="grey", lw=0.8)
    axes[0].set_xscale("log")
    axes[1].set_xscale("log")
    axes[0].set_xlabel("kept share of the training tokens")
    axes[1].set_xlabel("kept share of the training tokens")
    axes[0].set_ylabel("validation loss (nats/token), mean of seeds")
    axes[1].set_ylabel("effective data D_eff / D")
    axes[0].set_title("Loss against kept share (grey: all data; bars: seed sd)")
    axes[1].set_title("Effective-data multiplier (plain law)")
    axes[0].legend(fontsize=6, ncol=2)
    png = plots.save(fig, ctx.out / "data-keep.png")
    rows = [
        [r.method, _f(r.keep, 3), plots.si(r.N), int(r.n_seeds), _f(r.loss), f"{r.rel:+.2%}",
         _f(r.d_mult, 3)]
        for r in t.itertuples()
    ]  # fmt: skip
    small = [
        [
            r["method"],
            plots.si(r["N"]),
            _f(r.get("within_1%"), 3) if r.get("within_1%") is not None else "none below 1",
            _f(r.get("within_5%"), 3) if r.get("within_5%") is not None else "none below 1",
        ]
        for r in a.smallest.to_dict(orient="records")
    ]
    best = a.best_at(0.3)
    best_txt = ""
    if best:
        per = ", ".join(
            f"N={plots.si(p['N'])}: D_eff/D = {_f(p['d_mult'], 3)} ({p['rel']:+.2%} vs all data)"
            for p in best["per_size"]
        )
        best_txt = f"<p>Best method at keep 0.3: <b>{esc(best['method'])}</b> ({esc(per)}).</p>"
    law_txt = (
        f"<p>No plain law: {esc(a.law_error)}</p>"
        if a.law_error
        else "<p>D_eff: the tokens a plain run of the same N needs, under the Chinchilla law "
        "fitted to the store's plain runs, to reach the selected run's loss, over the tokens "
        "it saw (scalelab.laws.effective_d). Below 1: the repeated selection is worth less "
        "than that many fresh tokens.</p>"
    )
    html = (
        "<h3>Keep fraction</h3>"
        + img(png, "loss and effective data against the kept share")
        + law_txt
        + best_txt
        + (
            "<p>Active learning against random growth at equal data: <code>active</code> "
            "starts from a random share (drawn in the same seeded order as <code>random</code>) "
            "and each round adds the chunks its small model finds hardest; its points "
            "at the intermediate shares are the kept sets after each round.</p>"
            if (t["method"] == "active").any()
            else ""
        )
        + "<p>Smallest kept share whose mean validation loss is within 1% / 5% of the "
        "full-data run:</p>"
        + table(["method", "N", "within 1%", "within 5%"], small, "num")
        + table(["method", "keep", "N", "seeds", "loss", "vs all data", "D_eff / D"], rows, "num")
    )
    return html, [png], a.to_dict()


def _overfit_part(ctx: ReportContext) -> tuple[str, list[Any], dict[str, Any]] | None:
    from scalelab.analysis.overfit import overfit_analysis

    try:
        a = overfit_analysis(ctx.db, bootstrap=min(ctx.bootstrap, 100))
    except ScalelabError:
        return None
    r = a.runs
    sizes = sorted(r["N"].unique())
    fracs = sorted(r["fraction"].unique())
    fig, axes = plots.figure(2)
    for ax, metric, title in (
        (axes[0], "loss", "early stopping off"),
        (axes[1], "best", "early stopping on (best evaluation)"),
    ):
        grid = np.full((len(sizes), len(fracs)), np.nan)
        for i, n in enumerate(sizes):
            for j, f in enumerate(fracs):
                v = r[(r["N"] == n) & (r["fraction"] == f)][metric]
                best = r[r["fraction"] == f][metric].min()
                if len(v):
                    grid[i, j] = float(v.iloc[0]) - best
        ax.grid(False)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="magma_r")
        reps = [r[r["fraction"] == f]["epochs"].mean() for f in fracs]
        ax.set_xticks(range(len(fracs)), [f"{e:.2g}" for e in reps])
        ax.set_yticks(range(len(sizes)), [plots.si(n) for n in sizes])
        ax.set_xlabel("passes over the unique data (repetitions)")
        ax.set_ylabel("N (non-embedding)")
        ax.set_title(f"Loss gap to the best size, {title}", fontsize=9)
        for i in range(len(sizes)):
            for j in range(len(fracs)):
                if math.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] > np.nanmax(grid) / 2 else "black")  # fmt: skip
        fig.colorbar(im, ax=ax, fraction=0.046)
    png = plots.save(fig, ctx.out / "data-overfit.png")
    rows = [
        [plots.si(x.N), _f(x.fraction, 3), plots.si(x.unique_tokens), _f(x.epochs, 3), _f(x.loss),
         _f(x.best), _f(x.train_loss), _f(x.gap, 3)]
        for x in r.itertuples()
    ]  # fmt: skip
    cross = []
    for c in a.crossovers:
        where = plots.si(c.unique_tokens) if c.unique_tokens is not None else "never"
        cross.append(
            [
                f"{plots.si(c.large)} vs {plots.si(c.small)}",
                "on" if c.metric == "best" else "off",
                where,
                f"{c.diff_at_smallest:+.4f} ({c.rel_at_smallest:+.1%})",
            ]
        )
    law_txt = f"<p>Data-constrained fit: {esc(a.law_error)}</p>" if a.law_error else ""
    if a.law:
        p, ci = a.law["params"], a.law.get("ci") or {}
        lo_hi = ci.get("R_D_star")
        law_txt = (
            f"<p>Data-constrained law (Muennighoff et al. 2023, eq. 5) fitted to these runs: "
            f"R_D* = {_f(p.get('R_D_star'), 3)}"
            + (f" (95% interval {_f(lo_hi[0], 3)} to {_f(lo_hi[1], 3)})" if lo_hi else "")
            + f", R_N* = {_f(p.get('R_N_star'), 3)}; published: R_D* = 15.4, R_N* = 5.3.</p>"
        )
    html = (
        "<h3>When bigger models overfit</h3>"
        + img(png, "overfitting map")
        + "<p>Each cell: a run's validation loss minus the best size's at the same unique "
        "data (0: the best size there). The crossover is the unique-token count below which "
        "the larger model's loss is worse than the smaller one's.</p>"
        + table(["sizes", "early stopping", "larger worse below", "at the least data"], cross)
        + law_txt
        + table(
            ["N", "fraction", "unique", "passes", "val loss", "best val", "train loss", "gap"],
            rows,
            "num",
        )
    )
    return html, [png], a.to_dict()


def data_section(ctx: ReportContext) -> Section | None:
    parts = {
        name: part
        for name, part in (("keep", _keep_part(ctx)), ("overfit", _overfit_part(ctx)))
        if part is not None
    }
    if not parts:
        return None
    return Section(
        "Data",
        "".join(p[0] for p in parts.values()),
        [f for p in parts.values() for f in p[1]],
        {name: p[2] for name, p in parts.items()},
    )


__all__ = ["data_section"]
