"""The report's sections. Each builder takes the :class:`ReportContext` and returns a
:class:`Section` (a title, an HTML fragment, the PNGs it shows) or ``None`` when the store
has nothing for it. ``scalelab.reporting.page`` assembles them; other areas add builders to
:data:`BUILDERS` or pass their own to ``report(..., sections=...)`` (docs/internals.md, "Report").
"""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import ScalelabError
from scalelab.laws import envelope, isoflop, pareto_frontier, plan
from scalelab.laws.approaches import BUDGET_RTOL
from scalelab.laws.fit import size_groups
from scalelab.plugin import report_builders
from scalelab.reporting import plots
from scalelab.reporting.architectures import architecture_section
from scalelab.reporting.posttrain_section import posttrain_section
from scalelab.reporting.section import Builder, ReportContext, Section, esc, img, table
from scalelab.reporting.small_large import small_large_section
from scalelab.reporting.tuning import tuning_section
from scalelab.results.points import load_points


def _fmt(x: float, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}g}"


def _ci(law: Any, name: str) -> str:
    lo_hi = (law.ci or {}).get(name)
    return f"[{_fmt(lo_hi[0])}, {_fmt(lo_hi[1])}]" if lo_hi else "-"


def _multi_arch(ctx: ReportContext) -> bool:
    """A store of several architectures is shown by the Architectures section, per
    architecture; the single-family sections (one law, one frontier) would mix them."""
    return bool(ctx.points["arch"].nunique() > 1)


def _no_law(ctx: ReportContext) -> str:
    return f"<p class='note'>No law fitted: {esc(ctx.law_error)}</p>"


# --------------------------------------------------------------------------- builders


def _tokenizers(p: Any) -> set[str]:
    """What the runs were tokenized with; a Markov source's symbols whatever
    ``data.tokenizer`` says (stores written before the store knew it say "bpe")."""
    from scalelab.data.corpus_spec import tokenizer_label

    pairs = zip(p["corpus"].tolist(), p["tokenizer"].tolist(), strict=True)
    return {str(t) for c, tok in pairs if (t := tokenizer_label(c, tok)) is not None}


def overview(ctx: ReportContext) -> Section:
    """What was measured, how: corpus, tokenizer, ladder, budgets, machine, wall time."""
    p = ctx.points
    import torch  # the machine line names the torch build the runs used

    rows = [
        ["study", ", ".join(sorted(p["study"].dropna().unique())) or "-"],
        ["corpus", ", ".join(sorted(p["corpus"].dropna().unique()))],
        ["tokenizer", ", ".join(sorted(_tokenizers(p)))],
        ["architectures", ", ".join(sorted(p["arch"].unique()))],
        ["finished runs", len(p)],
        ["N (non-embedding)", f"{plots.si(p['N'].min())} to {plots.si(p['N'].max())}"],
        ["D (tokens)", f"{plots.si(p['D'].min())} to {plots.si(p['D'].max())}"],
        ["C (6ND FLOPs)", f"{p['C'].min():.3g} to {p['C'].max():.3g}"],
        ["budgets", ", ".join(sorted(p["budget"].dropna().astype(str).unique()))],
        ["training wall time", f"{p['wall_seconds'].sum():.0f} s summed over runs"],
        [
            "machine (this report)",
            f"{_cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__}",
        ],
    ]
    text = (
        "<p>Loss is the validation loss in nats per token at the end of each run (the same "
        "held-out tokens for every run on a corpus); N is the non-embedding parameter count "
        "(Kaplan et al. 2020), D the tokens trained on, C = 6ND.</p>"
    )
    return Section("What was measured", text + table(None, rows, "kv"), data={"runs": len(p)})


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def curves(ctx: ReportContext) -> Section | None:
    if _multi_arch(ctx):
        return None
    c = ctx.curves.dropna(subset=["val_loss"])
    c = c[c["tokens"] > 0]
    if c.empty:
        return None
    fig, ax = plots.figure()
    col = plots.colors(c["N_non_embedding"].tolist())
    styles = ["-", "--", ":", "-."]
    budgets = sorted(c["budget"].astype(str).unique())
    for _run_id, g in c.groupby("run_id"):
        n = g["N_non_embedding"].iloc[0]
        ls = styles[budgets.index(str(g["budget"].iloc[0])) % len(styles)]
        ax.plot(g["tokens"], g["val_loss"], ls, color=col[n], lw=1.2)
    for n, color in col.items():
        ax.plot([], [], color=color, label=f"N={plots.si(n)}")
    for b in budgets:
        ax.plot([], [], styles[budgets.index(b) % len(styles)], color="grey", label=b)
    png = _finish(
        fig,
        ax,
        ctx.out / "curves.png",
        "Loss curves (colour: N, line: data budget)",
        "tokens seen",
        c["val_loss"],
        ncol=2,
    )
    return Section("Loss curves", img(png, "validation loss against tokens per run"), [png])


def _finish(
    fig: Any, ax: Any, path: Path, title: str, xlabel: str, losses: Any, ncol: int = 1
) -> Path:
    """The common end of a loss figure: log axes limited to the losses, labels, legend, PNG."""
    plots.log_axes(ax, values=losses)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=ncol)
    return plots.save(fig, path)


def _budget_paths(p: pd.DataFrame) -> list[tuple[str, pd.DataFrame, float, float]]:
    """Per data budget, its points and D as a power of N (D = k N^s; s = 1 for tokens per
    parameter, 0 for a fixed token count), so the law can be drawn along the same path."""
    out = []
    for b, g in p.groupby(p["budget"].astype(str)):
        g = g.sort_values("N")
        if g["N"].nunique() >= 2:
            s, logk = np.polyfit(np.log(g["N"]), np.log(g["D"]), 1)
        else:
            s, logk = 0.0, float(np.log(g["D"].iloc[0]))
        out.append((b, g, float(s), float(logk)))
    return out


def loss_vs_n(ctx: ReportContext) -> Section | None:
    if _multi_arch(ctx):
        return None
    p, law = ctx.points, ctx.law
    fig, ax = plots.figure()
    paths = _budget_paths(p)
    cmap = plots.pyplot().get_cmap("tab10")
    n_grid = np.geomspace(p["N"].min() / 1.5, p["N"].max() * 6, 100)
    for i, (b, g, s, logk) in enumerate(paths):
        ax.plot(g["N"], g["loss"], "o", color=cmap(i), label=f"{b} (measured)")
        if law is not None:
            d = np.exp(logk) * n_grid**s
            ax.plot(n_grid, law.predict(N=n_grid, D=d), "-", color=cmap(i), lw=1, alpha=0.8)
    if law is not None:
        if law.params["E"] > 0.5 * p["loss"].min():  # else off the loss axis below
            ax.axhline(
                law.params["E"], color="grey", ls=":", lw=1, label=f"E = {law.params['E']:.3g}"
            )
        ax.plot([], [], "-", color="grey", label="fitted surface along each budget")
    png = _finish(
        fig,
        ax,
        ctx.out / "loss-vs-n.png",
        "Loss against N per data budget",
        "N (non-embedding parameters)",
        p["loss"],
    )
    text = (
        "<p>Points: final validation loss. Lines: the fitted law "
        f"({esc(law.formula) if law is not None else 'none'}) evaluated along each "
        "budget's own D(N), extended beyond the largest run.</p>"
    )
    return Section("Loss against N", text + img(png, "loss against N"), [png])


def loss_vs_c(ctx: ReportContext) -> Section | None:
    if _multi_arch(ctx):
        return None

    p, law = ctx.points, ctx.law
    fig, ax = plots.figure()
    col = plots.colors(p["N"].tolist())
    c = ctx.curves.dropna(subset=["val_loss"])
    c = c[c["tokens"] > 0]
    for _run_id, g in c.groupby("run_id"):  # every evaluation is a (C, loss) point too
        n = g["N_non_embedding"].iloc[0]
        ax.plot(
            6 * n * g["tokens"], g["val_loss"], "-", color=col.get(n, "grey"), lw=0.6, alpha=0.4
        )
    ax.scatter(p["C"], p["loss"], c=[col[n] for n in p["N"]], s=28, zorder=3, label="final")
    front = pareto_frontier(p, cost="C", quality="loss")
    ax.step(
        front["C"], front["loss"], where="post", color="black", lw=1.2, label="frontier (final)"
    )
    notes, data = [], {}
    try:
        env = envelope(_with_curves(ctx), bootstrap=min(ctx.bootstrap, 100))
        data["envelope"] = {"a": env.a, "b": env.b}
        notes.append(
            f"Approach 1 (lowest loss per compute bin, intermediate evaluations included): "
            f"N<sub>opt</sub> &prop; C<sup>{env.a:.2f}</sup>, D<sub>opt</sub> &prop; "
            f"C<sup>{env.b:.2f}</sup> (95% interval on a: {_fmt_ci(env.ci.get('a'))})."
        )
    except ScalelabError as e:
        notes.append(f"Approach 1 not fitted: {esc(e)}")
    if law is not None:
        cs = np.geomspace(p["C"].min() / 2, p["C"].max() * 30, 60)
        try:
            losses = [plan(law, float(x)).loss for x in cs]
            ax.plot(cs, losses, "--", color="crimson", lw=1.2, label="law: compute-optimal")
        except ScalelabError as e:
            notes.append(f"No compute-optimal curve: {esc(e)}")
    png = _finish(
        fig,
        ax,
        ctx.out / "loss-vs-c.png",
        "Loss against compute (colour: N)",
        "C = 6ND (FLOPs)",
        c["val_loss"] if len(c) else p["loss"],
    )
    text = "".join(f"<p>{n}</p>" for n in notes)
    return Section("Loss against compute", img(png, "loss against compute") + text, [png], data)


def _fmt_ci(ci: tuple[float, float] | None) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "-"


def _with_curves(ctx: ReportContext) -> pd.DataFrame:

    return load_points(ctx.db, study=ctx.study, curves=True, kind="run", one_per_run=True)


def isoflop_curves(ctx: ReportContext) -> Section | None:
    """Approach 2 needs several N at one compute; say how to get them when the grid has none."""
    if _multi_arch(ctx):
        return None

    try:
        iso = isoflop(ctx.points, bootstrap=min(ctx.bootstrap, 100))
    except ScalelabError as e:
        return Section(
            "IsoFLOP curves",
            f"<p class='note'>No IsoFLOP profiles in this store ({esc(e)}). Approach 2 needs "
            "at least three model sizes trained at the same compute: a study with "
            "<code>tokens</code> budgets chosen so that 6ND is constant per group.</p>",
        )
    fig, ax = plots.figure()
    pts = ctx.points
    groups = _compute_groups(pts["C"].to_numpy())
    cmap = plots.pyplot().get_cmap("plasma")
    for i, lab in enumerate(np.unique(groups)):
        g = pts[groups == lab].sort_values("N")
        if len(g) >= 3:
            ax.plot(
                g["N"],
                g["loss"],
                "o-",
                color=cmap(i / max(1, groups.max())),
                ms=4,
                label=f"C={g['C'].median():.2g}",
            )
    if iso.optima is not None:
        ax.plot(iso.optima["N_opt"], iso.optima["loss_opt"], "k*", ms=10, label="parabola minimum")
    png = _finish(
        fig,
        ax,
        ctx.out / "isoflop.png",
        "IsoFLOP profiles (approach 2)",
        "N (non-embedding parameters)",
        pts["loss"],
    )
    text = (
        f"<p>N<sub>opt</sub> &prop; C<sup>{iso.a:.2f}</sup> {_fmt_ci(iso.ci.get('a'))}, "
        f"D<sub>opt</sub> &prop; C<sup>{iso.b:.2f}</sup> {_fmt_ci(iso.ci.get('b'))}.</p>"
    )
    return Section(
        "IsoFLOP curves", img(png, "IsoFLOP profiles") + text, [png], {"a": iso.a, "b": iso.b}
    )


def _compute_groups(c: np.ndarray) -> np.ndarray:

    return np.asarray(size_groups(c, BUDGET_RTOL))


def law_choice(ctx: ReportContext) -> Section | None:
    """Issue 16: which form predicts the larger sizes best (rolling origin), and how often
    its intervals held the held-out losses."""
    if _multi_arch(ctx) or ctx.law is None:
        return None
    sel = ctx.selection
    if sel is None:
        return Section(
            "Choosing the law",
            f"<p class='note'>No choice by extrapolation ({esc(ctx.selection_error)}); "
            "the law is Chinchilla's form.</p>",
        )
    t = sel.table
    sizes = sorted(t["held_out_N"].unique())
    rows = []
    for _, s in sel.summary.iterrows():
        mine = t[t["form"] == s["form"]].set_index("held_out_N")
        errs = [_pct(mine.loc[n, "mean_abs_rel_error"]) for n in sizes]
        held, cov = int(mine["n_held"].sum()), mine["covered"].sum()
        cov_s = f"{int(cov)}/{held} ({s['coverage']:.0%})" if np.isfinite(s["coverage"]) else "-"
        mark = "chosen" if s["chosen"] else ""
        rows.append([s["form"], s["n_params"], *errs, _pct(s["mean_abs_rel_error"]), cov_s, mark])
    header = [
        "form",
        "free params",
        *[f"error at N = {plots.si(n)}" for n in sizes],
        "mean error",
        f"{sel.level:.0%} interval held",
        "",
    ]
    text = (
        f"<p>Each candidate form is fitted on the model sizes below each of the {sel.holdout} "
        "largest and scored by its mean absolute relative error on that size (rolling origin); "
        "the form with the lowest mean error is chosen (a simpler one within one paired "
        f"standard error of it wins) and refitted on every point: <b>{esc(sel.chosen)}</b>, "
        f"{esc(sel.law.formula)}. Intervals: {sel.level:.0%} bootstrap prediction intervals, "
        f"{sel.bootstrap} refits on the fit sizes resampled whole (not by run).</p>"
    )
    notes = "".join(f"<p class='note'>{esc(n)}</p>" for n in sel.notes)
    return Section(
        "Choosing the law", text + table(header, rows, "num") + notes, data=sel.to_dict()
    )


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%" if x is not None and np.isfinite(x) else "-"


def parameters(ctx: ReportContext) -> Section:
    law = ctx.law
    if law is None:
        return Section("Fitted law", _no_law(ctx))
    rows = [
        [k, _fmt(v, 5), "fixed" if k in law.fixed else _ci(law, k)] for k, v in law.params.items()
    ]
    n_boot = 0 if law.samples is None else len(law.samples)
    by = "whole model sizes resampled" if law.resample == "size" else "points resampled"
    lvl = f"{law.ci_level:.0%}"
    text = (
        f"<p>The {esc(law.form)} form, {esc(law.formula)}, fitted as Hoffmann et al. 2022 "
        "(App. D.2) fit theirs: Huber loss (&delta; = 1e-3) on log residuals, summed, "
        "log-sum-exp parametrisation, L-BFGS from a grid of starts. Objective "
        f"{law.objective:.4g} over {law.n_points} points; {lvl} intervals from {n_boot} "
        f"bootstrap refits ({by}).</p>"
    )
    return Section(
        "Fitted law",
        text + table(["parameter", "estimate", f"{lvl} interval"], rows, "num"),
        data=law.to_dict(),
    )


def extrapolation(ctx: ReportContext) -> Section | None:
    if _multi_arch(ctx):
        return None
    law = ctx.law
    if law is None:
        return Section("Extrapolation check", _no_law(ctx))
    ex = law.extrapolation or {}
    if ex.get("skipped") or not ex.get("points"):
        reason = ex.get("skipped", "not computed")
        return Section("Extrapolation check", f"<p class='note'>Skipped: {esc(reason)}</p>")
    rows = [
        [
            plots.si(pt[ex["by"]]),
            _fmt(pt["loss"]),
            _fmt(pt["predicted"]),
            f"{100 * (pt['predicted'] - pt['loss']) / pt['loss']:+.2f}%",
        ]
        for pt in ex["points"]
    ]
    text = (
        f"<p>Leave the largest out: the law refitted on the {ex['n_fit']} points with "
        f"{esc(ex['by'])} below {plots.si(ex['threshold'])} predicts the {ex['n_holdout']} "
        f"above it with a mean absolute error of {100 * ex['mean_abs_rel_error']:.2f}% "
        f"(largest {100 * ex['max_abs_rel_error']:.2f}%).</p>"
    )
    header = [ex["by"], "measured loss", "predicted", "error"]
    return Section("Extrapolation check", text + table(header, rows, "num"), data=ex)


def plans(ctx: ReportContext) -> Section | None:
    if _multi_arch(ctx):
        return None

    law = ctx.law
    if law is None:
        return Section("Plans", _no_law(ctx))
    cmax = float(ctx.points["C"].max())
    budgets = [
        ("10x the largest run", 10 * cmax),
        ("100x the largest run", 100 * cmax),
        ("1e21 FLOPs", 1e21),
        ("1e23 FLOPs", 1e23),
    ]
    rows, data = [], []
    for label, c in budgets:
        try:
            pl = plan(law, c)
        except ScalelabError as e:
            rows.append([label, f"{c:.3g}", "-", "-", "-", str(e)])
            continue
        lo_hi = pl.loss_interval
        rows.append(
            [
                label,
                f"{c:.3g}",
                plots.si(pl.N),
                plots.si(pl.D),
                f"{pl.tokens_per_param:.3g}",
                f"{pl.loss:.4g}" + (f" [{lo_hi[0]:.4g}, {lo_hi[1]:.4g}]" if lo_hi else ""),
            ]
        )
        data.append(pl.to_dict())
    text = (
        "<p>Compute-optimal N and D for a budget C = 6ND under the fitted law, with the "
        f"loss it predicts ({law.ci_level:.0%} bootstrap interval). Budgets far beyond the runs are "
        "extrapolations over many decades: read them as what the law says, not as a "
        "forecast.</p>"
    )
    header = ["budget", "C", "N", "D", "tokens/param", "predicted loss"]
    return Section("Plans", text + table(header, rows, "num"), data={"plans": data})


def architectures(ctx: ReportContext) -> Section | None:
    """Issue 5's comparison (scalelab.analysis.arch_compare): slopes, frontier, curves, depth vs width."""
    if ctx.points["arch"].nunique() < 2:
        return None

    arch = architecture_section(ctx.db, ctx.out, study=ctx.study, bootstrap=max(ctx.bootstrap, 100))
    return Section(arch.title, arch.html, list(arch.figures), arch.data)


def small_vs_large(ctx: ReportContext) -> Section | None:
    """Distilled and compressed points read as effective sizes (scalelab.techniques)."""
    sec = small_large_section(ctx.db, ctx.out, study=ctx.study, bootstrap=ctx.bootstrap)
    return None if sec is None else Section(sec.title, sec.html, list(sec.figures), sec.data)


# the core's sections, in page order; each technique's section follows, from its plug-in
# (scalelab.plugin: Plugin.report), in the plug-ins' order: small vs large (compression,
# distillation), data (selection), downstream (tasks, d90), tuning, memorization
CORE_BUILDERS: list[Builder] = [
    overview,
    architectures,
    curves,
    loss_vs_n,
    loss_vs_c,
    isoflop_curves,
    law_choice,
    parameters,
    extrapolation,
    plans,
]


def default_builders() -> list[Builder]:
    """The report's default sections: the core's, then every registered plug-in's."""
    return [*CORE_BUILDERS, *report_builders()]


# the default sections of the plug-ins registered when this module was imported (the
# built-in ones); default_builders() also sees a plug-in registered later
BUILDERS: list[Builder] = default_builders()


# the sections that need no ladder runs: a store written by `scalelab tune` alone, or one
# of post-training points only (the posttrain plug-in registers the section for a store with
# runs too: report = "scalelab.reporting.posttrain_section:posttrain_section")
WITHOUT_RUNS: list[Builder] = [tuning_section, posttrain_section]
