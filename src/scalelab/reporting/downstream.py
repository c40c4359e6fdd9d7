"""The report's "Downstream and fine-tuning" section: accuracy against N and against loss per
task (95% Wilson intervals, chance marked, Gadre et al.'s fit), fine-tuning results, and d90
against N and against pretraining tokens (from the store's ``tasks`` and ``intrinsic``
tables; the section is left out when both are empty)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalelab.reporting import plots
from scalelab.reporting.sections import ReportContext, Section, img, table


def _panels(n: int) -> tuple[Any, list[Any]]:
    fig, axes = plots.figure(ncols=n, width=4.2, height=3.6)
    return fig, list(np.atleast_1d(axes))


def _accuracy_figures(ctx: ReportContext, df: pd.DataFrame, summary: list[dict]) -> list[Any]:
    from scalelab.tasks.analysis import gadre_fit

    tasks = sorted(df["task"].unique())
    figs = []
    for what, x, xlabel in (
        ("n", "N", "N (non-embedding parameters)"),
        ("loss", "loss", "validation loss (nats/token)"),
    ):
        fig, axes = _panels(len(tasks))
        for ax, task in zip(axes, tasks, strict=True):
            g = df[df["task"] == task].sort_values(x)
            for arch, ga in g.groupby("arch"):
                yerr = [ga["accuracy"] - ga["lo"], ga["hi"] - ga["accuracy"]]
                ax.errorbar(ga[x], ga["accuracy"], yerr=yerr, fmt="o-", ms=4, capsize=2,
                            label=str(arch))  # fmt: skip
            ax.axhline(g["chance"].iloc[0], color="grey", ls="--", lw=1, label="chance")
            if what == "n":
                ax.set_xscale("log")
            else:
                fit = gadre_fit(g["loss"].to_numpy(), g["error"].to_numpy())
                if "eps" in fit:
                    grid = np.linspace(g["loss"].min() * 0.97, g["loss"].max() * 1.03, 100)
                    err = fit["eps"] - fit["k"] * np.exp(-fit["gamma"] * grid)
                    ax.plot(grid, 1 - err, "-", color="black", lw=1, alpha=0.7,
                            label="Gadre et al. fit")  # fmt: skip
                ax.invert_xaxis()  # lower loss to the right, like larger N
            ax.set_title(task, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("accuracy", fontsize=8)
            ax.legend(fontsize=6)
        figs.append(plots.save(fig, ctx.out / f"downstream-vs-{what}.png"))
    return figs


def _intrinsic_figure(ctx: ReportContext, it: pd.DataFrame, points: pd.DataFrame) -> Any:
    # the intrinsic table's D is the parameter count; the points' D the pretraining tokens
    p = points[["run_id", "N", "D"]].drop_duplicates("run_id").rename(columns={"D": "seen"})
    it = it.drop(columns=["D"]).merge(p, on="run_id", how="inner")
    it = it[it["d90"].notna()]  # no d90 (full training at chance): in the table, not drawn
    if it.empty:
        return None
    it = it.assign(tokens=np.where(it["initial"] == 1, 0, it["seen"]))
    fig, (a1, a2) = plots.figure(ncols=2)
    trained = it[it["initial"] == 0]
    for (task, proj, budget), g in trained.groupby(["task", "projection", "seen"]):
        g = g.sort_values("N")
        a1.plot(g["N"], g["d90"], "o-", label=f"{task}, {proj}, D={plots.si(budget)}")
    a1.set_xscale("log")
    a1.set_yscale("log")
    a1.set_xlabel("N (non-embedding parameters)")
    a1.set_ylabel("d90 (subspace dimension)")
    a1.set_title("d90 against pretrained N")
    a1.legend(fontsize=7)
    colors = plots.colors(list(it["N"]))
    for n, g in it.groupby("N"):
        g = g.sort_values("tokens")
        a2.plot(g["tokens"] + 1, g["d90"], "o-", color=colors[n], label=f"N={plots.si(n)}")
    a2.set_xscale("symlog", linthresh=1e5)
    a2.set_yscale("log")
    a2.set_xlabel("pretraining tokens (0: initial weights)")
    a2.set_ylabel("d90")
    a2.set_title("d90 against pretraining")
    a2.legend(fontsize=7)
    return plots.save(fig, ctx.out / "intrinsic-d90.png")


def downstream(ctx: ReportContext) -> Section | None:
    from scalelab.tasks.analysis import downstream_points, downstream_summary
    from scalelab.tasks.results import load_intrinsic, load_task_results

    df = downstream_points(ctx.db, study=ctx.study)
    results = load_task_results(ctx.db)
    tuned = results[results["method"] != "zero-shot"]
    intrinsic = load_intrinsic(ctx.db)
    if df.empty and tuned.empty and intrinsic.empty:
        return None
    html, figures, data = "", [], {}
    if not df.empty:
        summary = downstream_summary(ctx.db, study=ctx.study, bootstrap=min(ctx.bootstrap, 200))
        figures += _accuracy_figures(ctx, df, summary)
        rows = []
        for s in summary:
            gadre = s["gadre"]
            rows.append(
                [
                    s["task"],
                    s["arch"],
                    f"{min(s['accuracy']):.3f} - {max(s['accuracy']):.3f}",
                    f"{s['chance']:.3f}",
                    plots.si(s["leaves_chance_at_N"]) if s["leaves_chance_at_N"] else "never",
                    _alpha(s, "alpha_C"),
                    _alpha(s, "alpha_N"),
                    f"{gadre['eps']:.3g} - {gadre['k']:.3g} exp(-{gadre['gamma']:.3g} L)"
                    if "eps" in gadre
                    else gadre["fit_error"],
                ]
            )
        html += (
            "<p>Zero-shot accuracy of every run (log-likelihood multiple choice on held-out "
            "items; bars: 95% Wilson intervals; dashed: chance). <i>Leaves chance</i>: the "
            "smallest N whose whole interval is above chance. alpha: log-log slope of the "
            "error 1 - accuracy against compute and N (Tay et al. 2022's downstream "
            "alpha<sub>U,D</sub>; bootstrap 95% interval). Last column: Gadre et al. (2024)'s "
            "Err(L) = eps - k exp(-gamma L) fitted to error against loss.</p>"
        )
        html += table(
            ["task", "arch", "accuracy", "chance", "leaves chance at N", "alpha_C", "alpha_N",
             "error against loss"],
            rows,
            "num",
        )  # fmt: skip
        html += "".join(img(f, f.stem) for f in figures)
        data["summary"] = summary
    if not tuned.empty:
        rows = [
            [r.run_id, r.task, r.method, f"{r.accuracy:.3f} [{r.lo:.3f}, {r.hi:.3f}]",
             f"{r.chance:.3f}", r.n, r.finetune_run_id]
            for r in tuned.itertuples()
        ]  # fmt: skip
        html += "<h3>Fine-tuning</h3><p>Test accuracy of the best validation checkpoint.</p>"
        html += table(["run", "task", "method", "test accuracy", "chance", "n", "fine-tune"],
                      rows, "num")  # fmt: skip
        data["finetune"] = tuned.to_dict(orient="records")
    if not intrinsic.empty:
        fig = _intrinsic_figure(ctx, intrinsic, ctx.points)
        rows = [
            [r.run_id, r.task, r.projection, "yes" if r.said else "no",
             "initial" if r.initial else str(r.step), r.d90 if r.d90 is not None else "-",
             f"{r.full_performance:.3f}", f"{r.seconds:.0f}"]
            for r in intrinsic.itertuples()
        ]  # fmt: skip
        html += (
            "<h3>Intrinsic dimension</h3><p>d90: the smallest random subspace "
            "theta = theta_0 + P z whose training reaches 90% of full fine-tuning's validation "
            "accuracy (Li et al. 2018; Aghajanyan et al. 2021 found it falls as pretrained "
            "models grow and as pretraining goes on).</p>"
        )
        html += table(["run", "task", "projection", "SAID", "from step", "d90", "full acc",
                       "seconds"], rows, "num")  # fmt: skip
        if fig is not None:
            figures.append(fig)
            html += img(fig, "d90")
        data["intrinsic"] = intrinsic.drop(columns=["trials_json"]).to_dict(orient="records")
    return Section("Downstream and fine-tuning", html, figures, data)


def _alpha(s: dict, key: str) -> str:
    if s.get(key) is None:
        return str(s.get(f"{key}_error", "-"))
    ci = s.get(f"{key}_ci")
    return f"{s[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
