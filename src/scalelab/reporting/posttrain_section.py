"""The report's "Post-training" section: reward against sqrt(KL) per reward model, gain against N.

Reads the points of kind ``posttrain`` (written by ``scalelab posttrain`` and ``scalelab bon``;
their numbers are in ``extra_json``, read with ``load_points(extra=True)``):

* **Overoptimisation** (Gao, Schulman & Hilton 2022, fig. 1): the gold and the proxy reward of
  best-of-n and RL against d = sqrt(KL), one colour per proxy reward model, with each gold
  curve's fitted law (``gao-bon`` / ``gao-rl``, :mod:`scalelab.laws.gao`) and a table of the
  coefficients, the predicted peak d* and the measured one.
* **Gain against N**: each method's accuracy minus the pretrained policy's (the ``eval`` point
  of the lineage's root run) against the policy's parameters; where a lineage has no ``eval``
  point, the accuracy itself is shown. One line per task, method and **setting**: stages
  whose chain of settings (their own and their parent stages', and the reward) differ are
  drawn as separate lines, labelled by what differs, so two DPO learning rates at one size
  are two lines, not one line through both.

Without posttrain points the section is left out.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.laws.gao import fit_gao_curves, stage_of
from scalelab.reporting import plots
from scalelab.reporting.section import ReportContext, Section, esc, img, table
from scalelab.results.points import load_points

CURVE_METHODS = {"bon": "gao-bon", "rl": "gao-rl"}
GAIN_METHODS = ("sft", "dpo", "rl", "bon")  # the stages whose accuracy is a gain over the root
# settings that change when and how a stage logs, not what it learns: not a line of their own
BOOKKEEPING = ("eval_every", "checkpoint_every")


def posttrain_points(ctx: ReportContext) -> pd.DataFrame:
    df = load_points(ctx.db, study=ctx.study, kind="posttrain", extra=True)
    if df.empty:
        return df
    df = df.drop_duplicates("run_id").reset_index(drop=True)
    for col in ("method", "task", "kl", "gold_reward", "proxy_reward", "reward_N", "policy_N"):
        if col not in df.columns:
            df[col] = None
    df = df.assign(stage=[stage_of(r) for r in df["run_id"]])
    if "settings" not in df.columns:
        df["settings"] = None
    missing = [not isinstance(s, dict) for s in df["settings"]]
    if any(missing):  # points written before stages logged their settings: the stage's config
        dirs = _run_dirs(ctx.db)
        df["settings"] = [
            _config_settings(dirs.get(r), Path(ctx.db).parent) if m else s
            for r, s, m in zip(df["run_id"], df["settings"], missing, strict=True)
        ]
    return df


def _run_dirs(db: Any) -> dict[str, str]:
    with sqlite3.connect(db) as conn:  # load_points keeps run_dir internal
        rows = conn.execute("SELECT run_id, run_dir FROM points WHERE kind = 'posttrain'")
        return {r: d for r, d in rows if d}


def _config_settings(run_dir: str | None, db_dir: Path) -> dict[str, Any] | None:
    """A stage's ``posttrain`` settings from its config.json (its directory as recorded, or
    relative to the store's folder, where a sweep run from that folder records it)."""
    if not run_dir:
        return None
    for d in (Path(run_dir), db_dir / run_dir):
        try:
            cfg = json.loads((d / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(cfg.get("posttrain"), dict):
            return dict(cfg["posttrain"])
    return None


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def _with_ci(law: Any, k: str) -> str:
    v = law.params.get(k)
    if v is None:
        return "none" if k == "d_star" else "-"
    ci = law.ci.get(k)
    return _fmt(v) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")


def _label(c: Any) -> str:
    return (
        f"RM N = {plots.si(c.reward_N)}"
        if c.reward_N
        else str(c.key.get("reward_run_id") or "grader")
    )


def reward_figure(df: pd.DataFrame, fits: dict[str, list[Any]], path: Any) -> Any:
    """One panel per method (best-of-n, RL): gold (solid, filled) and proxy (dotted, open)
    reward against sqrt(KL), a colour per reward model, the fitted gold law dashed."""
    methods = [m for m in CURVE_METHODS if fits.get(m)]
    fig, axes = plots.figure(len(methods))
    axes = np.atleast_1d(axes)
    sizes = [c.reward_N or 1.0 for m in methods for c in fits[m]]
    col = plots.colors(sizes)
    for ax, m in zip(axes, methods, strict=True):
        for c in fits[m]:
            mine = df[(df["method"] == m) & (df["stage"] == c.key["stage"])]
            g = mine.assign(d=np.sqrt(mine["kl"].astype(float).clip(lower=0)))
            g = g.groupby("d", as_index=False)[["gold_reward", "proxy_reward"]].mean()
            color = col[c.reward_N or 1.0]
            ax.plot(g["d"], g["gold_reward"], "o-", color=color, ms=4, label=f"{_label(c)} gold")
            if g["proxy_reward"].notna().any():
                ax.plot(g["d"], g["proxy_reward"], "o:", color=color, ms=4, mfc="none", alpha=0.7)
            grid = np.linspace(0.0, float(g["d"].max()) * 1.05, 60)
            ax.plot(grid, c.law.predict(kl=grid**2), "--", color=color, lw=1)
        ax.set_xlabel("d = sqrt(KL to the initial policy), nats^0.5")
        ax.set_ylabel("reward")
        ax.set_title(
            f"{'Best-of-n' if m == 'bon' else 'RL'}: gold (solid), proxy (dotted), law (dashed)"
        )
        ax.legend(fontsize=7)
    return plots.save(fig, path)


def gains(df: pd.DataFrame) -> pd.DataFrame:
    """One row per finished stage of a gain method: its policy N, accuracy (with Wilson
    interval) and, where its lineage's root run has an ``eval`` point on the same task, the
    gain over it with an approximate interval (the two half-widths added in quadrature)."""
    if "accuracy" not in df.columns or "method" not in df.columns:
        return pd.DataFrame()
    final = df[df["run_id"] == df["stage"]]  # a stage's own point, not its curve's
    parent = dict(zip(final["run_id"], final["parent_run_id"], strict=True))

    def root(run_id: str) -> str:
        seen = set()
        while run_id in parent and run_id not in seen and isinstance(parent[run_id], str):
            seen.add(run_id)
            run_id = parent[run_id]
        return run_id

    chains = _setting_chains(final, parent)
    evals = final[(final["method"] == "eval") & final["accuracy"].notna()]
    base = {(root(r["run_id"]), r.get("task")): r for r in evals.to_dict("records")}
    rows = []
    done = final[final["method"].isin(GAIN_METHODS) & final["accuracy"].notna()]
    for r in done.to_dict("records"):
        acc = float(r["accuracy"])
        row = {
            "task": r.get("task"),
            "method": r["method"],
            "policy_N": r.get("policy_N"),
            "accuracy": acc,
            "accuracy_lo": r.get("accuracy_lo"),
            "accuracy_hi": r.get("accuracy_hi"),
            "base_accuracy": None,
            "gain": None,
            "gain_half": None,
            "chain": chains[r["run_id"]],
        }
        b = base.get((root(r["run_id"]), r.get("task")))
        if b is not None:
            row["base_accuracy"] = float(b["accuracy"])
            row["gain"] = acc - float(b["accuracy"])
            row["gain_half"] = math.hypot(_half(r), _half(b))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["setting"] = _setting_labels(out)
    return out.drop(columns="chain")


def _setting_chains(final: pd.DataFrame, parent: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage, the settings that made it, flattened over its chain of stages up to the
    pretrained run: ``{"sft.lr": 1e-3, "dpo.beta": 0.1, "dpo.reward": "grader", ...}``."""
    rows = {r["run_id"]: r for r in final.to_dict("records")}
    out = {}
    for run_id in rows:
        flat: dict[str, Any] = {}
        seen: set[str] = set()
        cur: Any = run_id
        while cur in rows and cur not in seen:
            seen.add(cur)
            r = rows[cur]
            m = r.get("method")
            settings = r.get("settings")
            if isinstance(settings, dict):
                for k, v in settings.items():
                    if k not in BOOKKEEPING:
                        flat[f"{m}.{k}"] = v
            reward = r.get("reward_run_id") or r.get("reward")
            if isinstance(reward, str):
                flat[f"{m}.reward"] = reward
            cur = parent.get(cur)
        out[run_id] = flat
    return out


def _setting_labels(g: pd.DataFrame) -> list[str]:
    """Per row, the settings in which its (task, method) line differs from the others: ""
    where the task and method were run with one setting only."""
    labels = [""] * len(g)
    for _, part in g.groupby(["task", "method"], dropna=False):
        chains = list(part["chain"])
        keys = sorted({k for c in chains for k in c})
        differ = [k for k in keys if len({json.dumps(c.get(k), default=str) for c in chains}) > 1]
        for i, c in zip(part.index, chains, strict=True):
            labels[g.index.get_loc(i)] = " ".join(f"{k}={_short(c.get(k))}" for k in differ)
    return labels


def _short(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _half(r: dict[str, Any]) -> float:
    lo, hi = r.get("accuracy_lo"), r.get("accuracy_hi")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return float("nan")
    return (float(hi) - float(lo)) / 2


def _accuracy_cell(r: dict[str, Any]) -> str:
    text = f"{r['accuracy']:.3f}"
    if r["accuracy_lo"] is not None and not pd.isna(r["accuracy_lo"]):
        text += f" [{r['accuracy_lo']:.3f}, {r['accuracy_hi']:.3f}]"
    return text


def _gain_cell(r: dict[str, Any]) -> str:
    if r["gain"] is None or pd.isna(r["gain"]):
        return "-"
    return f"{r['gain']:+.3f} ± {r['gain_half']:.3f}"


def gain_lines(g: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The figure's lines: one per task, method and setting (``gains``' ``setting``), each
    with its label and rows in order of N."""
    use_gain = g["gain"].notna().any()
    y = "gain" if use_gain else "accuracy"
    setting = g["setting"] if "setting" in g.columns else pd.Series("", index=g.index)
    lines = []
    for (task, m, s), part in g.assign(setting=setting).groupby(
        ["task", "method", "setting"], dropna=False
    ):
        part = part[part[y].notna()].sort_values("policy_N")
        if not part.empty:
            lines.append((f"{task}: {m}" + (f" ({s})" if s else ""), part))
    return lines


def gain_figure(g: pd.DataFrame, path: Any) -> Any:
    """Gain (or accuracy, where no baseline) against the policy's N, one line per method and
    setting (:func:`gain_lines`)."""
    fig, ax = plots.figure()
    use_gain = g["gain"].notna().any()
    y = "gain" if use_gain else "accuracy"
    for label, part in gain_lines(g):
        err = part["gain_half"] if use_gain else (part["accuracy_hi"] - part["accuracy_lo"]) / 2
        ax.errorbar(part["policy_N"], part[y], yerr=err, fmt="o-", capsize=3, label=label)
    ax.set_xscale("log")
    if use_gain:
        ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("policy N (parameters)")
    ax.set_ylabel("accuracy gain over the pretrained policy" if use_gain else "accuracy")
    ax.set_title("Post-training gain against policy size")
    ax.legend(fontsize=7)
    return plots.save(fig, path)


def posttrain_section(ctx: ReportContext) -> Section | None:
    df = posttrain_points(ctx)
    if df.empty:
        return None
    html, figures, data = [], [], {}
    fits: dict[str, list[Any]] = {}
    notes = []
    for m, form in CURVE_METHODS.items():
        if "method" not in df.columns or not (df["method"] == m).any():
            continue
        rows = df[(df["method"] == m) & df["kl"].notna() & df["gold_reward"].notna()]
        try:
            fits[m] = fit_gao_curves(rows, form, bootstrap=max(ctx.bootstrap, 50))
        except FitError as e:
            notes.append(f"<p class='note'>No {form} law: {esc(e)}</p>")
    if fits:
        png = reward_figure(df, fits, ctx.out / "posttrain-reward-vs-kl.png")
        figures.append(png)
        html.append(
            "<h3>Reward against sqrt(KL)</h3><p>Gold and proxy reward of best-of-n and RL "
            "against d = sqrt(KL(policy || initial policy)), one colour per proxy reward "
            "model; dashed: the gold reward's fitted law (Gao, Schulman &amp; Hilton 2022: "
            "best-of-n R = R0 + d(alpha - beta d), RL R = R0 + d(alpha - beta log d)). The "
            "peak d* is where the law turns down: alpha/(2 beta) for best-of-n, "
            "exp(alpha/beta - 1) for RL; measured: the d of the highest mean gold reward "
            f"observed. Intervals: {next(iter(fits.values()))[0].law.ci_level:.0%} bootstrap "
            "(points resampled).</p>"
        )
        html.append(img(png, "gold and proxy reward against sqrt(KL)"))
        rows = []
        for m, curves in fits.items():
            for c in curves:
                ci = [_with_ci(c.law, k) for k in ("alpha", "beta", "d_star")]
                measured = _fmt(c.law.params["d_peak_measured"])
                rows.append([m, _label(c), c.law.n_points, *ci, measured])
        header = [
            "method",
            "reward model",
            "points",
            "alpha",
            "beta",
            "d* predicted",
            "d* measured",
        ]
        html.append(table(header, rows, "num"))
        data["gao"] = [dict(c.to_dict(), method=m) for m, cs in fits.items() for c in cs]
    html.extend(notes)
    g = gains(df)
    if not g.empty:
        png = gain_figure(g, ctx.out / "posttrain-gain-vs-n.png")
        figures.append(png)
        html.append(
            "<h3>Gain against N</h3><p>Accuracy (greedy, Wilson interval) of each stage and "
            "its gain over the pretrained policy of the same lineage (its <code>eval</code> "
            "point); the gain's interval adds the two half-widths in quadrature "
            "(approximate). One line per task, method and setting: where a method was run "
            "with several settings, each line names the settings in which it differs "
            "(<code>stage.key=value</code>, over the chain of stages behind it).</p>"
        )
        html.append(img(png, "accuracy gain against policy N"))
        rows = [
            [
                r["task"],
                r["method"],
                r["setting"] or "-",
                plots.si(r["policy_N"]) if r["policy_N"] else "-",
                _accuracy_cell(r),
                _fmt(r["base_accuracy"], 3),
                _gain_cell(r),
            ]
            for r in g.sort_values(["task", "method", "setting", "policy_N"]).to_dict("records")
        ]
        header = ["task", "method", "setting", "policy N", "accuracy", "pretrained", "gain"]
        html.append(table(header, rows, "num"))
        data["gain"] = g.to_dict("records")
        data["gain_lines"] = [
            {"label": label, "policy_N": [float(n) for n in part["policy_N"]]}
            for label, part in gain_lines(g)
        ]
    if not html:
        return None
    return Section("Post-training", "".join(html), figures, data)
