"""The report's Tuning section and its figure: validation loss against each searched value,
one line per size, one panel per setting of the study's other axes (SP vs muP), the best
of each size marked; the best per size, and the power law of the best value against N."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from scalelab.errors import ScalelabError
from scalelab.reporting import plots

SIZE_AXES = ("size", "budget", "seed", "arch", "target_params", "params_kind")


def searched_keys(trials: Any) -> list[str]:
    """The keys the search varied (``train.lr`` first)."""
    keys = sorted({k for s in trials["searched"] for k in str(s).split(",") if k})
    return sorted(keys, key=lambda k: k != "train.lr")


def panel_keys(trials: Any, key: str) -> list[str]:
    """Columns of the study's own grid axes (``model.parametrization``): one panel each."""
    searched = set(searched_keys(trials)) if "searched" in trials else {key}
    return [
        c
        for c in trials.columns
        if "." in c and c != key and c not in searched and not c.endswith(("_lo", "_hi"))
        and c.split(".")[0] in ("model", "data", "train") and trials[c].nunique(dropna=True) > 1
    ]  # fmt: skip


def plot_search(trials: Any, path: str | Path, key: str = "train.lr", title: str = "") -> Path:
    """Loss against ``key`` per size (colour by N), a panel per other-axis setting."""

    done = trials[(trials["status"] == "finished") & ~trials["pruned"] & trials["loss"].notna()]
    panels = panel_keys(done, key)
    groups = list(done.groupby(panels, sort=True)) if panels else [((), done)]
    fig, axes = plots.figure(ncols=len(groups), height=3.6)
    axes = axes if hasattr(axes, "__len__") else [axes]
    colours = plots.colors(sorted(done["N"].unique()))
    lo = done["loss"].min()
    hi = min(done["loss"].max(), lo + 2.0)  # diverged trials would flatten the picture
    for ax, (label, g) in zip(axes, groups, strict=True):
        for n, line in g.groupby("N"):
            line = line.sort_values(key)
            size = line["size"].iloc[0]
            ax.plot(
                line[key],
                line["loss"],
                "o-",
                ms=3,
                color=colours[n],
                label=f"{size} (N={plots.si(n)})",
            )
            best = line.loc[line["loss"].idxmin()]
            ax.plot([best[key]], [best["loss"]], "*", ms=11, color=colours[n], mec="black", mew=0.5)
        ax.set_xscale("log")
        ax.set_ylim(lo - 0.05 * (hi - lo), hi)
        ax.set_xlabel(key)
        name = ", ".join(
            f"{k.split('.')[-1]} = {v}"
            for k, v in zip(panels, label if isinstance(label, tuple) else (label,), strict=False)
        )
        ax.set_title(name or title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("validation loss (nats/token)")
    axes[-1].legend(fontsize=7, loc="upper right")
    return plots.save(fig, path)


def best_shift(best: Any, key: str = "train.lr", grid: list[float] | None = None) -> dict[str, Any]:
    """How far the best value moves from the narrowest to the widest size, per panel: in
    factors and (with the search's ``grid``) in grid steps."""
    panels = panel_keys(best, key)
    out: dict[str, Any] = {}
    for label, g in best.groupby(panels, sort=True) if panels else [("all", best)]:
        g = g[g["best"].notna()].sort_values("N")
        values = [float(v) for v in g[key]]
        steps = None
        if grid:
            idx = [
                min(range(len(grid)), key=lambda i, v=v: abs(math.log(grid[i] / v))) for v in values
            ]
            steps = max(idx) - min(idx)
        name = (
            label
            if isinstance(label, str)
            else "/".join(str(x) for x in (label if isinstance(label, tuple) else (label,)))
        )
        out[str(name)] = {
            "sizes": list(g["size"]),
            "best": values,
            "moves_factor": max(values) / min(values) if values else None,
            "moves_grid_steps": steps,
        }
    return out


def tuning_section(ctx: Any) -> Any:
    """The report's section for a store with trials (``scalelab tune``); ``None`` without."""
    import html

    from scalelab.reporting.section import Section, table
    from scalelab.tune.trends import best_trials, fit_hyperparameter, trial_points

    try:
        trials = trial_points(ctx.db, ctx.study)
    except ScalelabError:
        return None
    if trials.empty:
        return None
    key = searched_keys(trials)[0]
    fig = plot_search(trials, ctx.out / "tune-search.png", key)
    best = best_trials(ctx.db, ctx.study)
    rows = []
    for r in best.to_dict("records"):
        extra = [str(r.get(c)) for c in panel_keys(trials, key)]
        rng = (
            f"{r.get(f'{key}_lo'):.3g} to {r.get(f'{key}_hi'):.3g}"
            if r.get("best") is not None
            else "-"
        )
        rows.append([r["size"], r["sampler"], *extra, f"{r['N']:.3g}", r["trials"], r["pruned"],
                     f"{r['best']:.4f}" if r.get("best") is not None else "-",
                     f"{r.get(key):.3g}" if r.get("best") is not None else "-", rng])  # fmt: skip
    header = [
        "size",
        *panel_keys(best, key),
        "N",
        "trials",
        "pruned",
        "best loss",
        f"best {key}",
        "within 1%",
    ]
    text = (
        f"<p>{len(trials)} trials (runs of kind <code>trial</code>, <code>scalelab tune</code>); "
        f"the star marks each size's best. Validation loss against <code>{html.escape(key)}</code>.</p>"
        f"<img src='{fig.name}' alt='loss against {html.escape(key)} per size'>"
    )
    data: dict[str, Any] = {"best": best.to_dict("records"), "shift": best_shift(best, key)}
    law_html = ""
    if not panel_keys(trials, key):
        try:
            law = fit_hyperparameter(best, key, bootstrap=max(ctx.bootstrap, 100))
            ci = law.ci.get("alpha")
            law_html = (
                f"<p>Fitted {html.escape(key)}*(N) = {law.k:.4g} N<sup>-{law.alpha:.3f}</sup>"
                + (f" (alpha 95% interval {ci[0]:.3f} to {ci[1]:.3f})" if ci else "")
                + f" over {law.n_points} sizes.</p>"
            )
            data["law"] = law.to_dict()
        except ScalelabError as e:
            law_html = f"<p class='note'>No power law: {html.escape(str(e))}</p>"
    return Section("Tuning", text + table(header, rows, "num") + law_html, [fig], data)


__all__ = ["best_shift", "panel_keys", "plot_search", "tuning_section"]
