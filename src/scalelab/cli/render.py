"""Rendering for the CLI: tables and lines built from the API's results, apart from parsing.

Cells are ``rich.text.Text`` (never markup strings), so brackets in intervals, paths and
messages print as written.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from scalelab.cli._app import console, say, warn
from scalelab.fmt import si


def num(v: float) -> str:
    """A law's parameter: 4 significant digits, exponent notation when large."""
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"


def _row(table: Table, *cells: str | Text) -> None:
    table.add_row(*(c if isinstance(c, Text) else Text(c) for c in cells))


def points_table(rows: list[dict], title: str) -> None:
    """Points (or planned runs) as a table. On a terminal, constant or empty columns are left
    out to fit the screen; redirected to a file or a pipe, every column is kept, whole."""

    def loss(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) and v == v else ""

    def status(r: dict) -> str:
        reason = r.get("reason")
        return str(r.get("status") or "") + (f": {reason}" if isinstance(reason, str) else "")

    cols: dict[str, tuple[str, Any]] = {
        "run": ("left", lambda r: str(r["run_id"])),
        "arch": ("left", lambda r: str(r.get("arch") or "")),
        "size": ("left", lambda r: str(r.get("size") or "")),
        "budget": ("left", lambda r: str(r.get("budget") or "")),
        "seed": ("right", lambda r: "" if r.get("seed") is None else str(r["seed"])),
        "N": ("right", lambda r: si(r.get("N"))),
        "D": ("right", lambda r: si(r.get("D"))),
        "C": ("right", lambda r: si(r.get("C"))),
        "loss": ("right", lambda r: loss(r.get("loss"))),
        "bpb": ("right", lambda r: loss(r.get("val_bpb"))),
        "status": ("left", status),
    }
    axes = sorted({k for r in rows for k in r if "." in k and r[k] is not None and r[k] == r[k]})
    order = ["run", "arch", "size", "budget", "seed", *axes, "N", "D", "C", "loss", "bpb", "status"]
    cells = {name: [fn(r) for r in rows] for name, (_, fn) in cols.items()}
    cells.update({k: [str(r.get(k, "")) for r in rows] for k in axes})
    whole = not console.is_terminal
    keep = [
        name
        for name in order
        if whole
        or name in ("run", "N")
        or len(set(cells[name])) > 1
        or (name in ("loss", "D") and any(cells[name]))
    ]
    table = Table(title=title, title_justify="left")
    for name in keep:
        justify = cols[name][0] if name in cols else "left"
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=whole or name != "status",
            min_width=7 if name == "status" else None,
        )
    for i in range(len(rows)):
        _row(table, *(cells[name][i] for name in keep))
    console.print(table)


def train_summary(summary: Any) -> None:
    def n(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    t = Table(title=f"run {summary.run_id}: {summary.status}", show_header=False)
    _row(t, "directory", str(summary.path))
    _row(t, "steps", f"{summary.step} of {summary.steps}")
    _row(t, "tokens", f"{summary.tokens:,} ({summary.epochs:.3g} epochs)")
    _row(t, "train loss (last window)", n(summary.train_loss, ".4f"))
    _row(t, "val loss (nats/token)", n(summary.val_loss, ".4f"))
    _row(t, "val bits per byte", n(summary.val_bpb, ".4f"))
    _row(t, "best val loss", n(summary.best_val_loss, ".4f"))
    if summary.entropy_rate is not None:
        _row(t, "entropy rate (floor)", f"{summary.entropy_rate:.4f}")
    _row(
        t,
        "params total / non-embedding",
        f"{summary.params['total']:,} / {summary.params['non_embedding']:,}",
    )
    _row(t, "training FLOPs", f"{summary.flops_total:.3g} (6ND {summary.six_nd:.3g})")
    _row(t, "tokens/s (training steps)", n(summary.tokens_per_second, ",.0f"))
    _row(t, "wall seconds", f"{summary.wall_seconds:.1f}")
    _row(t, "device, precision", f"{summary.device}, {summary.precision}")
    console.print(t)


def corpus_info(info: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for key, value in info.items():
        if isinstance(value, dict):
            value = ", ".join(
                f"{k} {v:.2f}s" if key == "build_seconds" else f"{k} {v:,}"
                for k, v in value.items()
            )
        elif isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, int):
            value = f"{value:,}"
        _row(table, key, str(value))
    console.print(table)


def law(law: Any) -> None:
    say(f"{law.form} law: {law.formula}")
    table = Table()
    table.add_column("param")
    table.add_column("value", justify="right")
    table.add_column(f"{law.ci_level:.0%} bootstrap interval", justify="right")
    for k, v in law.params.items():
        ci = law.ci.get(k)
        iv = f"[{num(ci[0])}, {num(ci[1])}]" if ci else ("fixed" if k in law.fixed else "")
        _row(table, k, num(v), iv)
    console.print(table)
    n_boot = 0 if law.samples is None else len(law.samples)
    say(
        f"objective {law.objective:.6g} on {law.n_points} points"
        + (f" (Huber delta {law.delta:g}, sum over points)" if law.delta else "")
        + f"; {n_boot} bootstrap refits"
    )
    ex = law.extrapolation
    if ex:
        if "skipped" in ex:
            say(f"extrapolation check skipped: {ex['skipped']}")
        elif "mean_abs_error" in ex:  # a law of reward (Gao et al.): absolute errors
            say(
                f"extrapolation (fit without the largest {ex['by']}, {ex['n_holdout']} point(s) "
                f"at {ex['by']} >= {ex['threshold']:.3g}): mean |error| "
                f"{ex['mean_abs_error']:.4g}, max {ex['max_abs_error']:.4g}"
            )
        else:
            say(
                f"extrapolation (fit without the largest {ex['by']}, {ex['n_holdout']} point(s) "
                f"at {ex['by']} >= {ex['threshold']:.3g}): mean |error| "
                f"{ex['mean_abs_rel_error']:.2%}, max {ex['max_abs_rel_error']:.2%}"
            )


def gao_curves(curves: list[Any], trends: list[dict[str, Any]]) -> None:
    """One row per curve of a Gao fit (``scalelab.laws.gao.fit_gao_curves``): the reward
    model's size, the coefficients with their intervals, the predicted and measured peak."""
    if not curves:
        return
    first = curves[0].law
    say(f"{first.form} law: {first.formula}; one fit per curve")
    table = Table()
    for c in ("policy", "reward model", "reward N", "points"):
        table.add_column(c, justify="right" if c in ("reward N", "points") else "left")
    for c in ("alpha", "beta", "R0", "d* predicted", "d peak measured"):
        table.add_column(c, justify="right")

    def cell(law: Any, k: str) -> str:
        v = law.params.get(k)
        if v is None:
            return "none" if k == "d_star" else ""
        ci = law.ci.get(k)
        return num(v) + (f" [{num(ci[0])}, {num(ci[1])}]" if ci else "")

    for c in curves:
        _row(
            table,
            str(c.key.get("parent_run_id") or ""),
            str(c.key.get("reward_run_id") or ""),
            si(c.reward_N) if c.reward_N else "",
            str(c.law.n_points),
            *[cell(c.law, k) for k in ("alpha", "beta", "R0", "d_star", "d_peak_measured")],
        )
    console.print(table)
    say(f"intervals: {first.ci_level:.0%} bootstrap percentile (rows resampled)")
    for t in trends:
        ci = t.get("ci")
        iv = f" [{num(ci[0])}, {num(ci[1])}]" if ci else ""
        say(
            f"{t['coefficient']} against log10(reward N): slope {num(t['slope_per_decade'])}"
            f"{iv} per decade over {t['n_curves']} curves"
        )


def selection(sel: Any) -> None:
    """The rolling-origin table of ``select_law``: form x held-out size x error."""
    t = sel.table
    sizes = sorted(t["held_out_N"].unique())
    table = Table(
        title=f"choosing the form: fitted below each held-out size, error on it "
        f"({sel.level:.0%} intervals, {sel.bootstrap} size-bootstrap refits)",
        title_justify="left",
    )
    table.add_column("form")
    table.add_column("params", justify="right")
    for n in sizes:
        table.add_column(f"N={si(n)}", justify="right")
    table.add_column("mean error", justify="right")
    table.add_column("interval held", justify="right")
    table.add_column("")

    def pct(x: float) -> str:
        return f"{100 * x:.2f}%" if x == x and abs(x) != float("inf") else "-"

    for _, s in sel.summary.iterrows():
        mine = t[t["form"] == s["form"]].set_index("held_out_N")
        held = int(mine["n_held"].sum())
        cov = "-" if s["coverage"] != s["coverage"] else f"{int(mine['covered'].sum())}/{held}"
        _row(
            table,
            s["form"],
            str(s["n_params"]),
            *[pct(mine.loc[n, "mean_abs_rel_error"]) for n in sizes],
            pct(s["mean_abs_rel_error"]),
            cov,
            "chosen" if s["chosen"] else "",
        )
    console.print(table)
    for _, r in t[t["note"] != ""].iterrows():
        warn(f"note: {r['form']} not fitted below N={si(r['held_out_N'])}: {r['note']}")


def allocation(alloc: Any) -> None:
    say(f"approach {alloc.approach}: N_opt = k_N C^a, D_opt = k_D C^b")
    for k, v in alloc.params.items():
        ci = alloc.ci.get(k)
        iv = f"  [{num(ci[0])}, {num(ci[1])}]" if ci else ""
        say(f"  {k:4s} {num(v)}{iv}")
    for note in alloc.notes:
        warn(f"note: {note}")


def plan(p: Any, law: Any) -> None:
    lvl = f"{p.ci_level:.0%}"

    def iv(t: Any) -> str:
        return f"  [{t[0]:.3g}, {t[1]:.3g}]" if t else ""

    src = f" ({law.source})" if law.source else ""
    say(f"law: {p.law}{src}\n  {law.formula}")
    if p.target_loss is not None:
        say(f"target loss {p.target_loss:g}: compute {p.compute:.3g} FLOPs{iv(p.compute_interval)}")
    else:
        say(f"compute {p.compute:.3g} FLOPs (C = 6ND)")
    say(f"  N    {p.N:.3g} parameters{iv(p.N_interval)}")
    say(f"  D    {p.D:.3g} tokens{iv(p.D_interval)}")
    say(f"  D/N  {p.tokens_per_param:.3g} tokens per parameter")
    loss_iv = (
        f"  [{p.loss_interval[0]:.4f}, {p.loss_interval[1]:.4f}] ({lvl})" if p.loss_interval else ""
    )
    say(f"  loss {p.loss:.4f}{loss_iv}")
    if p.constrained:
        c = p.constrained
        civ = c.get("loss_interval")
        civ_s = f"  [{civ[0]:.4f}, {civ[1]:.4f}]" if civ else ""
        say(
            f"with {p.unique_tokens:.3g} unique tokens (repetition, R_D* = {c['R_D_star']:.3g}, "
            f"R_N* = {c['R_N_star']:.3g}):\n"
            f"  N    {c['N']:.3g}\n  D    {c['D']:.3g} ({c['epochs']:.3g} epochs)\n"
            f"  loss {c['loss']:.4f}{civ_s}"
        )
    for h in p.hyperparameters:
        lo, hi = h["fitted_N"]
        where = (
            f"inside the fitted sizes {lo:.3g} to {hi:.3g}"
            if h["extrapolation"] == 1.0
            else f"{h['extrapolation']:.3g}x beyond the fitted sizes {lo:.3g} to {hi:.3g}"
        )
        say(f"  {h['key']} {h['value']:.3g} (the tuned law at N = {h['N']:.3g}, {where})")
    for w in p.warnings:
        warn(f"warning: {w}")


def law_presets_rows() -> list[dict[str, Any]]:
    from scalelab.laws.published import PRESETS, published_law

    rows = []
    for name in PRESETS:
        law_ = published_law(name)
        rows.append(
            {"name": name, "form": law_.form, "formula": law_.formula, "params": law_.params,
             "source": law_.source}
        )  # fmt: skip
    return rows


def law_presets_table(rows: list[dict[str, Any]]) -> None:
    t = Table(title="published laws (`scalelab plan --law NAME`)", title_justify="left")
    for c in ("law", "form", "parameters", "source"):
        t.add_column(c, no_wrap=c != "source")
    for r in rows:
        params = ", ".join(f"{k} {num(v)}" for k, v in r["params"].items())
        _row(t, r["name"], r["form"], params, r["source"] or "")
    console.print(t)


def archs_table(table: Any, n_layer: int, d_model: int, n_head: int, ctx: int, vocab: int) -> None:
    out = Table(
        title=f"{n_layer} x {d_model}, {n_head} heads, context {ctx}, vocab {vocab}",
        title_justify="left",
    )
    out.add_column("arch", style="bold", no_wrap=True)
    out.add_column("params", justify="right", no_wrap=True)
    out.add_column("active", justify="right", no_wrap=True)
    out.add_column("MFLOP/tok", justify="right", no_wrap=True)
    out.add_column("inductive bias (own fields)")
    for row in table.itertuples():
        own = ", ".join(f"{k}={'auto' if v is None else v}" for k, v in row.fields.items())
        bias = Text(row.description)
        if own:
            bias.append(f" ({own})", style="dim")
        _row(
            out,
            row.arch,
            f"{row.params:,}",
            f"{row.active:,}",
            f"{row.train_flops_per_token / 1e6:.2f}",
            bias,
        )
    console.print(out)
    say(
        "MFLOP/tok: training FLOPs per token (3 x forward, causal); "
        "active: the parameters one token passes through"
    )


def _alpha_cell(sl: Any) -> Text:
    if sl.alpha is None:
        return Text("-", style="dim")
    lo, hi = sl.ci if sl.ci else (float("nan"), float("nan"))
    cell = Text(f"{sl.alpha:.3f} ")
    cell.append(f"[{lo:.3f}, {hi:.3f}]", style="dim")
    return cell


def depth_width_table(rows: list[Any], quality: str, compute: str) -> None:
    t = Table(title=f"depth vs width: {quality} ~ x^-alpha (95% bootstrap)", title_justify="left")
    for c in ("arch", "direction", "fixed", "values", f"alpha vs {compute}", "alpha vs N"):
        t.add_column(c, no_wrap=True)
    for r in rows:
        fixed = f"d_model={r.fixed}" if r.direction == "depth" else f"n_layer={r.fixed}"
        _row(
            t,
            r.arch,
            r.direction,
            fixed,
            ",".join(map(str, r.values)),
            _alpha_cell(r.vs_compute),
            _alpha_cell(r.vs_params),
        )
    console.print(t)


def comparison(cmp: Any, quality: str, compute: str, bootstrap: int) -> None:
    t = Table(
        title=f"{quality} ~ k x^-alpha per architecture (95% bootstrap, {bootstrap} resamples)",
        title_justify="left",
    )
    for c in ("arch", "pts", f"alpha vs {compute}", "alpha vs N", "E + A N^-a: E, a", "loss"):
        t.add_column(c, no_wrap=True, justify="left" if c == "arch" else "right")
    for a in sorted(cmp.archs, key=lambda a: -(a.vs_compute.alpha or -1e9)):
        p = a.power_params.params
        name = Text(a.arch)
        if a.n_kind == "active_non_embedding":
            name.append(" (active N)", style="dim")
        _row(
            t,
            name,
            str(a.n_points),
            _alpha_cell(a.vs_compute),
            _alpha_cell(a.vs_params),
            f"{p['E']:.3g}, {p['alpha']:.3f}" if p else "-",
            f"{a.loss_range[1]:.3f} -> {a.loss_range[0]:.3f}",
        )
    console.print(t)
    for front in (cmp.frontier_compute, cmp.frontier_params):
        regions = "; ".join(f"{r['arch']} {r['from']:.3g}-{r['to']:.3g}" for r in front.regions)
        say(f"frontier vs {front.cost}: {regions}")
    crossings = cmp.crossovers("C")
    for c in crossings:
        if c["inside_range"]:
            say(
                f"{c['arch']} vs transformer: lines cross at {compute} {c['x']:.3g}, inside the "
                f"measured range: {c['ahead_below']} ahead below, {c['ahead_above']} above"
            )
    outside = [c["arch"] for c in crossings if not c["inside_range"]]
    if outside:
        say(
            "lines that cross the transformer's only outside the measured range "
            f"(--json for where): {', '.join(outside)}"
        )
    for note in cmp.notes():
        say(f"note: {note}")
