"""The report's "Small vs large" section: the size-loss plane with each technique's points and
an arrow from their plain parent, the multipliers table, and loss against model bits with its
frontier. The numbers come from :mod:`scalelab.techniques.small_large`."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.reporting import plots
from scalelab.techniques.small_large import (
    COMPUTE_CURRENCY,
    TITLE,
    bits_table,
    distill_summary,
    load_all,
    technique_kinds,
    technique_table,
)


@dataclass
class SmallLargeSection:
    title: str
    html: str
    figures: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def _f(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}g}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_f(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table>{head}{body}</table>"


def _mult(r: Any) -> str:
    if r["status"] == "unreachable":
        return "beyond any N"
    if r["multiplier"] is None or not math.isfinite(r["multiplier"]):
        return "-"
    lo, hi = r.get("multiplier_lo"), r.get("multiplier_hi")
    ci = f" [{_f(lo, 3)}, {_f(hi, 3)}]" if lo is not None and hi is not None else ""
    return f"x{_f(r['multiplier'], 3)}{ci}"


def _opts(o: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in (o or {}).items())


def plot_plane(db: str | Path, table: pd.DataFrame, law: Any, out: Path) -> Path:
    """The size-loss plane: the plain ladder, its law, distilled students with arrows from
    their scratch twins."""

    pts = load_all(db)
    plain = pts[pts["kind"] == "run"]
    fig, ax = plots.figure()
    ax.plot(plain["N"], plain["loss"], "o", color="black", ms=4, label="plain runs")
    n = np.geomspace(plain["N"].min() / 1.5, plain["N"].max() * 3, 100)
    d = float(np.median(plain["D"]))
    ax.plot(n, law.predict(N=n, D=d), "-", color="grey", lw=1, label=f"law at D = {plots.si(d)}")
    dist = table[table["kind"] == "distilled"]
    alphas = sorted(dist["alpha"].dropna().unique())
    cmap = plots.pyplot().get_cmap("tab10")
    for i, a in enumerate(alphas):
        g = dist[dist["alpha"] == a]
        ax.plot(g["N"], g["loss"], "s", color=cmap(i + 1), ms=5, label=f"distilled, alpha {a:g}")
        for _, r in g.iterrows():
            if r["twin_loss"] is not None and math.isfinite(r["twin_loss"]):
                ax.annotate(
                    "",
                    xy=(r["N"], r["loss"]),
                    xytext=(r["N"], r["twin_loss"]),
                    arrowprops={"arrowstyle": "->", "color": cmap(i + 1), "lw": 0.8},
                )
    plots.log_axes(ax, values=pd.concat([plain["loss"], dist["loss"]]))
    ax.set_xlabel("N (non-embedding parameters)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Distilled students on the plain ladder's plane")
    ax.legend(fontsize=7)
    return plots.save(fig, out / "small-large-plane.png")


def plot_bits(bits: pd.DataFrame, out: Path) -> Path:
    """Loss against model bits: every compressed model, arrows from its 16-bit parent, and
    the frontier (Dettmers and Zettlemoyer 2023, fig. 1)."""
    from scalelab.laws import pareto_frontier

    fig, ax = plots.figure(width=9.0)
    cmap = plots.pyplot().get_cmap("tab20")
    labels = sorted(set(bits["label"]) - {"16-bit (plain)"})
    plain = bits[bits["label"] == "16-bit (plain)"]
    ax.plot(plain["bits"], plain["loss"], "o", color="black", ms=5, label="16-bit (plain)")
    by_id = plain.set_index("run_id")
    for i, lab in enumerate(labels):
        g = bits[bits["label"] == lab]
        ax.plot(g["bits"], g["loss"], ".", color=cmap(i % 20), ms=6, label=lab)
    comp = bits[bits["label"] != "16-bit (plain)"]
    for _, r in comp.iterrows():
        if r["parent"] in by_id.index:
            p = by_id.loc[r["parent"]]
            p = p.iloc[0] if isinstance(p, pd.DataFrame) else p
            ax.plot([p["bits"], r["bits"]], [p["loss"], r["loss"]], "-", color="grey", lw=0.3)
    front = pareto_frontier(bits, cost="bits", quality="loss")
    ax.step(front["bits"], front["loss"], where="post", color="red", lw=1.2, label="frontier")
    plots.log_axes(ax, values=bits["loss"].clip(upper=bits["loss"].min() * 2.0))
    ax.set_xlabel("model bits (counted: codes, scales, zero points, indices)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("Loss against model bits")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return plots.save(fig, out / "small-large-bits.png")


def small_large_section(
    db: str | Path, out: str | Path, *, study: str | None = None, bootstrap: int = 200
) -> SmallLargeSection | None:
    """The report's "Small vs large" section, or None when the store has no technique point."""
    from scalelab.laws import pareto_frontier

    out = Path(out)
    pts = load_all(db, study)
    if not pts["kind"].isin(technique_kinds()).any():
        return None
    try:
        table, law = technique_table(db, study, bootstrap=bootstrap)
    except FitError as e:
        return SmallLargeSection(TITLE, f"<p class='note'>{html.escape(str(e))}</p>")
    parts, figs = [], []
    form = (
        "L(N, D) = E + A/N^alpha + B/D^beta"
        if law.form == "chinchilla"
        else ("L(N) = E + A/N^alpha at the ladder's one D")
    )
    parts.append(
        f"<p>Effective N: the size a plain run would need, under the plain ladder's law "
        f"({html.escape(form)}, {len(law.samples) if law.samples is not None else 0} "
        "bootstrap refits), to reach the technique's loss at its D; the multiplier is "
        "N<sub>eff</sub>/N with its 95% interval.</p>"
    )
    summary = distill_summary(table)
    if not summary.empty:
        figs.append(plot_plane(db, table, law, out))
        parts.append(f'<img src="{figs[-1].name}" alt="distillation plane">')
        parts.append("<h3>Distillation</h3>")
        parts.append(
            _table(
                [
                    "student",
                    "N",
                    "alpha",
                    "teacher N",
                    "seeds",
                    "loss",
                    "seed spread",
                    "scratch loss",
                    "scratch spread",
                    "gap",
                    "multiplier",
                    "teacher FLOPs share",
                    "N at equal total compute",
                    "its law loss",
                    "wins at equal total compute",
                ],
                [
                    [
                        r["size"],
                        r["N"],
                        r["alpha"],
                        r["teacher_N"],
                        r["seeds"],
                        r["loss"],
                        r["loss_spread"],
                        r["scratch_loss"],
                        r["scratch_spread"],
                        r["gap"],
                        f"x{_f(r['multiplier'], 3)} [{_f(r['multiplier_lo'], 3)}, "
                        f"{_f(r['multiplier_hi'], 3)}]",
                        r["C_teacher_share"],
                        r["N_at_total_compute"],
                        r["plain_loss_at_total_compute"],
                        "yes" if r["wins_at_total_compute"] else "no",
                    ]
                    for _, r in summary.iterrows()
                ],
            )
        )
        parts.append(
            "<p>Gap: scratch twins' mean loss minus the students' (positive: distillation "
            "helps). Teacher FLOPs share: of the exact C<sub>total</sub>. Equal total "
            "compute: the law's loss for a plain model of N<sub>c</sub>, the teacher's "
            "forward FLOPs spent on a larger student instead, both sides counted in the "
            f"law's currency ({html.escape(COMPUTE_CURRENCY)}): "
            "N<sub>c</sub> = N + N<sub>teacher</sub>/3 when the teacher runs on every "
            "token.</p>"
        )
    comp = table[table["kind"] == "compressed"]
    if not comp.empty:
        bits = bits_table(db, study)
        figs.append(plot_bits(bits, out))
        parts.append("<h3>Compression</h3>")
        parts.append(f'<img src="{figs[-1].name}" alt="loss against model bits">')
        front = pareto_frontier(bits, cost="bits", quality="loss")
        parts.append(
            "<p>Frontier (lowest loss at each bit budget): "
            + html.escape(
                ", ".join(
                    f"{lab} ({_f(b, 3)} bits)"
                    for lab, b in zip(front["label"], front["bits"], strict=True)
                )
            )
            + "</p>"
        )
        parts.append(
            _table(
                [
                    "parent",
                    "method",
                    "level",
                    "recover",
                    "bits/param",
                    "loss",
                    "parent loss",
                    "multiplier",
                ],
                [
                    [
                        r["size"],
                        r["technique"],
                        r["level"],
                        r["recover_tokens"],
                        r["bits_per_param"],
                        r["loss"],
                        r["twin_loss"],
                        _mult(r),
                    ]
                    for _, r in comp.sort_values(["N", "technique", "level"]).iterrows()
                ],
            )
        )
    data = {
        "law": law.to_dict(samples=False),
        "distillation": summary.to_dict("records") if not summary.empty else [],
        "techniques": table.to_dict("records"),
    }
    return SmallLargeSection(TITLE, "\n".join(parts), figs, data)
