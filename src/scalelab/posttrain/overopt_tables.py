"""Tables and a figure of an overoptimisation study (:mod:`.overopt`'s ``overopt.json`` and
the store it wrote): the curves, Gao et al.'s fits per proxy, the coefficients against log
proxy size, the pair-count curve.

* :func:`curve_points`: every best-of-n and RL point of the study's curves, with the proxy's
  size, the method, the KL coefficient and d = sqrt(KL).
* :func:`fits`: ``gao-bon`` / ``gao-rl`` per proxy on the gold (or proxy) reward, with
  bootstrap intervals, and each coefficient's slope in log10 proxy size
  (:func:`scalelab.laws.gao.fit_gao_curves`, :func:`~scalelab.laws.gao.coefficient_trend`).
* :func:`figure`: gold (solid) and proxy (dashed) reward against d, one colour per proxy,
  a panel per method and KL coefficient, and the pair-count curve.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalelab.errors import FitError
from scalelab.laws.gao import coefficient_trend, fit_gao_curves, stage_of

FORMS = {"bon": "gao-bon", "rl": "gao-rl"}


def read_result(path: str | Path) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def curve_points(db: str | Path, result: dict[str, Any]) -> pd.DataFrame:
    """The points of the study's curves (one row per n or RL evaluation)."""
    from scalelab.study import load_points

    df = load_points(db, kind="posttrain", extra=True).drop_duplicates("run_id")
    stages = {Path(c["run_dir"]).name: c for c in result["curves"]}
    df = df.assign(stage=[stage_of(r) for r in df["run_id"]])
    df = df[df["stage"].isin(stages) & (df["run_id"] != df["stage"])].copy()
    df["proxy"] = [stages[s]["proxy"] for s in df["stage"]]
    df["kl_coef"] = [stages[s].get("kl_coef") for s in df["stage"]]
    df["d"] = np.sqrt(df["kl"].astype(float).clip(lower=0))
    return df.sort_values(["method", "kl_coef", "reward_N", "d"], na_position="first")


def centred(points: pd.DataFrame) -> pd.DataFrame:
    """Each curve's gold and proxy reward minus its value at the initial policy (its point
    of least KL: n = 1, RL step 0), as Gao et al. measure them (R(0) := 0)."""
    out = points.copy()
    for _, g in points.groupby("stage"):
        first = g.loc[g["kl"].astype(float).idxmin()]
        for col in ("gold_reward", "proxy_reward"):
            out.loc[g.index, col] = g[col].astype(float) - float(first[col])
    return out


def fits(
    points: pd.DataFrame,
    method: str,
    *,
    kl_coef: float = 0.0,
    reward: str = "gold",
    bootstrap: int = 200,
    centre: bool = True,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[Any]]:
    """(one row per proxy: alpha, beta, R0, d* predicted and measured with intervals; the
    trends of alpha and beta in log10 proxy size; the fitted curves). ``centre``: the
    paper's form, rewards measured from the initial policy's and R0 fixed at 0 (else R0 is
    fitted: with few points the d and d log d columns of the RL form are nearly collinear
    and the intercept absorbs the slope)."""
    part = points[points["method"] == method]
    if method == "rl":
        part = part[part["kl_coef"] == kl_coef]
    if part.empty:
        raise FitError(f"no {method} points (kl_coef {kl_coef}) to fit")
    if centre:
        part = centred(part)
    curves = fit_gao_curves(part.drop(columns=["proxy", "kl_coef", "d"]), FORMS[method],
                            reward=reward, bootstrap=bootstrap,
                            fix={"R0": 0.0} if centre else None)  # fmt: skip
    rows = []
    for c in curves:
        p, ci = c.law.params, c.law.ci
        row: dict[str, Any] = {"reward_N": c.reward_N, "points": c.law.n_points}
        for k in ("alpha", "beta", "R0", "d_star"):
            row[k] = p.get(k)
            row[f"{k}_lo"], row[f"{k}_hi"] = ci.get(k, (None, None))
        row["d_peak_measured"] = p["d_peak_measured"]
        rows.append(row)
    trends = []
    for k in ("alpha", "beta"):
        with contextlib.suppress(FitError):  # one proxy size: no trend to give
            trends.append(coefficient_trend(curves, k))
    return pd.DataFrame(rows), trends, curves


def figure(points: pd.DataFrame, result: dict[str, Any], out: str | Path) -> Path:
    """Gold and proxy reward (each minus its value at d = 0, as Gao et al. plot them)
    against d = sqrt(KL): one panel per method and RL KL coefficient, one colour per proxy;
    the last panel the pair-count curve and the proxies' test pair accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, float | None]] = [("bon", None)]
    rl = points[points["method"] == "rl"]
    panels += [("rl", float(c)) for c in sorted(rl["kl_coef"].dropna().unique())]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(4.6 * (len(panels) + 1), 4.2))
    sizes = sorted(points["reward_N"].dropna().unique())
    colors = dict(zip(sizes, plt.cm.viridis(np.linspace(0, 0.85, len(sizes))), strict=True))
    for ax, (method, coef) in zip(axes, panels, strict=False):
        part = points[points["method"] == method]
        if coef is not None:
            part = part[part["kl_coef"] == coef]
        for n in sizes:
            g = part[part["reward_N"] == n]
            # an RL curve in the order of its steps (its KL need not grow at every one)
            g = g.sort_values("step" if method == "rl" and "step" in g.columns else "d")
            if g.empty:
                continue
            g0 = g.iloc[0]
            ax.plot(g["d"], g["gold_reward"] - g0["gold_reward"], "-o", ms=3, color=colors[n],
                    label=f"proxy {int(n):,}")  # fmt: skip
            ax.plot(g["d"], g["proxy_reward"] - g0["proxy_reward"], "--", color=colors[n],
                    alpha=0.6)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("d = sqrt(KL to the initial policy), nats^0.5")
        ax.set_ylabel("reward - reward at d = 0 (gold RM units)")
        what = "best-of-n" if method == "bon" else f"RL (GRPO), kl_coef {coef:g}"
        ax.set_title(f"{what}: gold (solid), proxy (dashed)", fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[-1]
    pc = pd.DataFrame(result["pair_curve"]).sort_values("pairs")
    if not pc.empty:
        err = [pc["test_accuracy"] - pc["test_accuracy_lo"],
               pc["test_accuracy_hi"] - pc["test_accuracy"]]  # fmt: skip
        ax.errorbar(pc["pairs"], pc["test_accuracy"], yerr=err, marker="o", capsize=3,
                    label=f"proxy {int(pc['reward_N'].iloc[0]):,} against pairs")  # fmt: skip
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    ax.axvline(2000, color="grey", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xlabel("gold-labelled training pairs")
    ax.set_ylabel("test pair accuracy (95% Wilson)")
    ax.set_title("reward models against pairs (chance 0.5)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def collapse(run_dir: str | Path, task: str, n: int = 500, seed: int = 0) -> dict[str, Any]:
    """How far a policy has collapsed onto one answer: on ``n`` validation prompts, its
    greedy completions' number of distinct strings, the share of the most common one and
    the accuracy (the last RL study's policies wrote one closing string to every prompt)."""
    from collections import Counter

    from scalelab.posttrain.grade import grade
    from scalelab.posttrain.rollout import sample
    from scalelab.posttrain.stage import build_lm, open_policy, tokenizer_of
    from scalelab.posttrain.tasks import get_verifiable, prompts

    parent = open_policy(run_dir)
    ps = [p for p, _ in prompts(task, "val", n, seed)]
    r = sample(build_lm(parent).eval(), tokenizer_of(parent), ps,
               get_verifiable(task).max_answer + 1, temperature=0.0)  # fmt: skip
    counts = Counter(r.completions)
    text, top = counts.most_common(1)[0]
    scores = grade(task, ps, r.completions)
    return {"distinct": len(counts), "top_share": top / n, "top": text,
            "accuracy": sum(s == 1.0 for s in scores) / n}  # fmt: skip


def _ci(row: Any, k: str, digits: int = 3) -> str:
    v, lo, hi = row.get(k), row.get(f"{k}_lo"), row.get(f"{k}_hi")
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "none"
    out = f"{v:.{digits}g}"
    if lo is not None and not (isinstance(lo, float) and np.isnan(lo)):
        out += f" [{lo:.{digits}g}, {hi:.{digits}g}]"
    return out


def markdown(db: str | Path, result: dict[str, Any], bootstrap: int = 200) -> str:
    """The study's tables as markdown (what docs/posttrain-laws.md shows)."""
    pts = curve_points(db, result)
    out = []
    g = result["gold"]
    out.append(
        f"gold RM {g['size']} ({g['reward_N']:,} parameters, {g['pairs']:,} grader pairs): "
        f"held-out pair accuracy {g['pair_accuracy']:.3f} [{g['pair_accuracy_lo']:.3f}, "
        f"{g['pair_accuracy_hi']:.3f}]; agrees with the grader on {g['grader_agreement']:.3f} "
        f"of {g['grader_untied']} untied test pairs\n"
    )
    out.append("| proxy | N | test pair accuracy |\n|---|---|---|")
    for p in result["proxies"]:
        out.append(f"| {p['size']} | {p['reward_N']:,} | {_ci(p, 'test_accuracy')} |")
    out.append("\n| pairs | test pair accuracy |\n|---|---|")
    for p in result["pair_curve"]:
        out.append(f"| {p['pairs']:,} | {_ci(p, 'test_accuracy')} |")
    rl_coefs = sorted({c["kl_coef"] for c in result["curves"] if c["method"] == "rl"})
    for method, coefs in (("bon", [0.0]), ("rl", rl_coefs)):
        for coef in coefs:
            part = pts[pts["method"] == method]
            if method == "rl":
                part = part[part["kl_coef"] == coef]
            out.append(f"\n{method} (kl_coef {coef}) curves: gold / proxy at d\n")
            for n, c in part.groupby("reward_N"):
                cells = ", ".join(
                    f"{r.d:.2f}: {r.gold_reward:.3f}/{r.proxy_reward:.3f}" for r in c.itertuples()
                )
                out.append(f"* {int(n):,}: {cells}")
            for reward in ("gold", "proxy"):
                try:
                    table, trends, _ = fits(pts, method, kl_coef=coef, reward=reward,
                                            bootstrap=bootstrap)  # fmt: skip
                except FitError as e:
                    out.append(f"\n{reward}: {e}")
                    continue
                out.append(
                    f"\n{FORMS[method]} on the {reward} reward (kl_coef {coef})\n\n"
                    "| proxy N | alpha | beta | R0 | d* predicted | d* measured |\n"
                    "|---|---|---|---|---|---|"
                )
                for r in table.to_dict("records"):
                    out.append(
                        f"| {int(r['reward_N']):,} | {_ci(r, 'alpha')} | {_ci(r, 'beta')} | "
                        f"{_ci(r, 'R0')} | {_ci(r, 'd_star')} | {r['d_peak_measured']:.2f} |"
                    )
                for t in trends:
                    lo, hi = t.get("ci", (float("nan"), float("nan")))
                    out.append(
                        f"\n{t['coefficient']} against log10 proxy N: "
                        f"{t['slope_per_decade']:.3g} [{lo:.3g}, {hi:.3g}] per decade"
                    )
    out.append("\n| RL run | proxy | kl_coef | final KL | greedy accuracy |\n|---|---|---|---|---|")
    for c in result["curves"]:
        if c["method"] == "rl":
            out.append(
                f"| {Path(c['run_dir']).name} | {c['proxy']} | {c['kl_coef']} | {c['kl']:.2f} | "
                f"{c['accuracy']:.3f} [{c['accuracy_lo']:.3f}, {c['accuracy_hi']:.3f}] |"
            )
    out.append("\n| step | seconds | load at start, end |\n|---|---|---|")
    for s in result["steps"]:
        out.append(f"| {s['step']} | {s['seconds']:.0f} | {s['load']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """``python -m scalelab.posttrain.overopt_tables RUNS/overopt.json DB [FIGURE.png]``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    result = read_result(args[0])
    print(markdown(args[1], result))
    if len(args) > 2:
        print(figure(curve_points(args[1], result), result, args[2]))


if __name__ == "__main__":
    main()
