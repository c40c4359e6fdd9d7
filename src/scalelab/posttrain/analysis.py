"""Tables and a figure from a store's posttrain points (the studies of docs/posttrain.md).

* :func:`stage_table`: one row per finished stage: task, policy size, method, the settings
  that differ from the defaults, accuracy with its interval, gold reward, KL.
* :func:`gain_table`: per task and policy size, the accuracy after each stage and the gains
  of DPO and RL over SFT and of SFT over pretraining (Hou et al. 2024's question: does a
  larger policy gain less from a fixed reward?).
* :func:`reward_table`: the reward models: size, pairs, held-out pair accuracy.
* :func:`overopt_fits`: Gao et al.'s laws fitted per curve (best-of-n and RL against each
  proxy) with :func:`scalelab.laws.gao.fit_gao_curves`, and their trends in log RM size.
* :func:`figure`: gold and proxy reward against d = sqrt(KL), and accuracy against N.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab.posttrain.config import PosttrainConfig
from scalelab.posttrain.points import load_posttrain


def _settings(run_dir: str) -> str:
    """The stage's posttrain settings that differ from the defaults, as k=v."""
    try:
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["posttrain"]
    except (OSError, KeyError, ValueError):
        return ""
    default = vars(PosttrainConfig())
    keep = ("steps", "lr", "beta", "loss", "pairs", "chosen_right", "kl_coef", "group")
    out = [f"{k}={cfg[k]}" for k in (*keep, "batch_size") if k in cfg and cfg[k] != default[k]]
    if cfg.get("pairs_file"):
        out.append(f"pairs_file={Path(cfg['pairs_file']).name}")
    return " ".join(out)


def stage_table(db: str | Path) -> pd.DataFrame:
    """One row per stage summary (curve points left out)."""
    df = load_posttrain(db)
    if df.empty:
        return df
    df = df[~df["run_id"].str.contains("@") & ~df["run_id"].str.contains(r"-n\d+$")].copy()
    df["settings"] = [_settings(d) for d in df["run_dir"]]
    cols = [
        "run_id",
        "parent_run_id",
        "task",
        "method",
        "policy_N",
        "reward_N",
        "reward_run_id",
        "settings",
        "accuracy",
        "accuracy_lo",
        "accuracy_hi",
        "gold_reward",
        "gold_reward_lo",
        "gold_reward_hi",
        "kl",
        "pairs",
        "pair_accuracy",
        "pair_accuracy_lo",
        "pair_accuracy_hi",
        "flops",
        "seconds",
    ]
    return df[[c for c in cols if c in df.columns]].reset_index(drop=True)


def diff_interval(
    a: float, a_lo: float, a_hi: float, b: float, b_lo: float, b_hi: float
) -> tuple[float, float, float]:
    """a - b with the 95% interval of a difference of two proportions from their own
    intervals (Newcombe 1998, method 10: the square-and-add of the two Wilson intervals),
    which also serves two means with normal intervals."""
    d = a - b
    lo = d - ((a - a_lo) ** 2 + (b_hi - b) ** 2) ** 0.5
    hi = d + ((a_hi - a) ** 2 + (b - b_lo) ** 2) ** 0.5
    return d, lo, hi


def gain_table(db: str | Path, reward_models: bool = False) -> pd.DataFrame:
    """Per (task, policy size, DPO/RL settings): pretrain, SFT and the stage's greedy accuracy
    and sampled gold reward, and the stage's gain over SFT in both, with 95% intervals.
    ``reward_models``: also the DPO and RL stages trained against a reward-model run (the
    ``reward`` column names it; else every row's reward is the grader)."""
    st = stage_table(db)
    if st.empty:  # a store without post-training points yet
        return pd.DataFrame()
    by_grader = st["reward_N"].isna() if "reward_N" in st.columns else True
    keep = by_grader | (reward_models & st["method"].isin(["dpo", "rl"]))
    st = st[st["method"].isin(["eval", "sft", "dpo", "rl"]) & keep]
    rows = []
    for (task, n), g in st.groupby(["task", "policy_N"]):
        base = {m: g[g["method"] == m] for m in ("eval", "sft")}
        pre = base["eval"].iloc[0] if len(base["eval"]) else None
        sft = base["sft"].iloc[0] if len(base["sft"]) else None
        for method in ("dpo", "rl"):
            for r in g[g["method"] == method].itertuples():
                row: dict[str, Any] = {
                    "task": task,
                    "policy_N": int(n),
                    "method": method,
                    "settings": r.settings,
                    "reward": _reward_name(r),
                    "pretrain": None if pre is None else pre["accuracy"],
                    "sft": None if sft is None else sft["accuracy"],
                    "after": r.accuracy,
                    "after_lo": r.accuracy_lo,
                    "after_hi": r.accuracy_hi,
                    "gold_after": r.gold_reward,
                    "sft_gold": None if sft is None else sft["gold_reward"],
                    "kl": r.kl,
                }
                if sft is not None:
                    acc = diff_interval(
                        r.accuracy, r.accuracy_lo, r.accuracy_hi,
                        sft["accuracy"], sft["accuracy_lo"], sft["accuracy_hi"],
                    )  # fmt: skip
                    gold = diff_interval(
                        r.gold_reward, r.gold_reward_lo, r.gold_reward_hi,
                        sft["gold_reward"], sft["gold_reward_lo"], sft["gold_reward_hi"],
                    )  # fmt: skip
                    row.update(zip(("gain_over_sft", "gain_lo", "gain_hi"), acc, strict=True))
                    row.update(
                        zip(("gold_gain", "gold_gain_lo", "gold_gain_hi"), gold, strict=True)
                    )
                if pre is not None and sft is not None:
                    row["sft_gain_over_pretrain"] = sft["accuracy"] - pre["accuracy"]
                rows.append(row)
    return pd.DataFrame(rows)


def _reward_name(r: Any) -> str:
    rn = getattr(r, "reward_N", None)
    if rn is None or pd.isna(rn):
        return "grader"
    return str(getattr(r, "reward_run_id", None) or f"RM N={int(rn)}")


def gain_trend(
    gains: pd.DataFrame, column: str = "gain_over_sft", draws: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Slope of a gain against log10 N (least squares over the sizes), with a 95% interval
    from redrawing each gain from a normal of its own interval (its half-width / 1.96):
    Hou et al. (2024)'s "does a larger policy gain less" is a negative slope whose interval
    lies below 0."""
    import numpy as np

    lo, hi = {
        "gain_over_sft": ("gain_lo", "gain_hi"),
        "gold_gain": ("gold_gain_lo", "gold_gain_hi"),
    }[column]
    g = gains.dropna(subset=[column]).sort_values("policy_N")
    x = np.log10(g["policy_N"].to_numpy(float))
    y = g[column].to_numpy(float)
    se = (g[hi].to_numpy(float) - g[lo].to_numpy(float)) / (2 * 1.96)
    if len(x) < 3:
        raise ValueError(f"a trend needs at least 3 policy sizes, got {len(x)}")
    slope = float(np.polyfit(x, y, 1)[0])
    rng = np.random.default_rng(seed)
    sims = [float(np.polyfit(x, y + rng.normal(0, se), 1)[0]) for _ in range(draws)]
    s_lo, s_hi = np.percentile(sims, [2.5, 97.5])
    return {"slope_per_decade": slope, "lo": float(s_lo), "hi": float(s_hi), "sizes": len(x)}


def reward_table(db: str | Path) -> pd.DataFrame:
    st = stage_table(db)
    return st[st["method"] == "reward"].sort_values(["reward_N", "pairs"]).reset_index(drop=True)


def curves(db: str | Path) -> pd.DataFrame:
    """The KL-curve points: best-of-n (one per n) and RL (one per evaluation)."""
    df = load_posttrain(db)
    df = df[df["method"].isin(["bon", "rl"]) & df["reward_N"].notna()]
    return df[df["run_id"].str.contains("@") | df["run_id"].str.contains(r"-n\d+$")].copy()


def overopt_fits(
    db: str | Path, bootstrap: int = 200, exclude: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Gao fits of gold reward per curve, their coefficients against RM size, and trends
    (``exclude``: stage ids left out, e.g. a trial run with other settings)."""
    from scalelab.errors import FitError
    from scalelab.laws.gao import coefficient_trend, fit_gao_curves, stage_of

    df = curves(db)
    df = df[~df["run_id"].map(stage_of).isin(exclude)]
    out: dict[str, Any] = {}
    for law in ("gao-bon", "gao-rl"):
        fitted = fit_gao_curves(df, law, reward="gold", bootstrap=bootstrap)
        rows = []
        for c in fitted:
            p, ci = c.law.params, c.law.ci
            rows.append(
                {
                    "reward_N": c.reward_N,
                    "alpha": p.get("alpha"),
                    "alpha_ci": ci.get("alpha"),
                    "beta": p.get("beta"),
                    "beta_ci": ci.get("beta"),
                    "d_star": p.get("d_star"),
                    "d_star_ci": ci.get("d_star"),
                    "d_peak_measured": p.get("d_peak_measured"),
                    "n_points": c.law.n_points,
                }
            )
        trends = {}
        for name in ("alpha", "beta"):
            try:
                trends[name] = coefficient_trend(fitted, name)
            except FitError as e:
                trends[name] = {"error": str(e)}
        out[law] = {"curves": rows, "trends": trends}
    return out


def figure(db: str | Path, out: str | Path, exclude: tuple[str, ...] = ()) -> Path:
    """Three panels: best-of-n and RL gold (solid) and proxy (dashed) reward against
    d = sqrt(KL) per proxy size, and accuracy after each stage against policy size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from scalelab.laws.gao import stage_of

    df = curves(db)
    df = df[~df["run_id"].map(stage_of).isin(exclude)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    sizes = sorted(df["reward_N"].dropna().unique())
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(len(sizes), 1)))
    for ax, method, title in ((axes[0], "bon", "best-of-n"), (axes[1], "rl", "RL (GRPO)")):
        part = df[df["method"] == method]
        for color, n in zip(colors, sizes, strict=False):
            g = part[part["reward_N"] == n].sort_values("kl")
            if g.empty:
                continue
            d = np.sqrt(g["kl"].clip(lower=0).astype(float))
            ax.plot(d, g["gold_reward"], "-o", color=color, ms=3, label=f"RM {int(n):,}")
            ax.plot(d, g["proxy_reward"], "--", color=color, alpha=0.6)
        ax.set_xlabel("d = sqrt(KL) (nats^0.5)")
        ax.set_ylabel("reward (gold: solid, proxy: dashed)")
        ax.set_title(f"dyck: {title} against proxy reward models")
        ax.legend(fontsize=7)
    gains = gain_table(db)
    st = stage_table(db)
    ax = axes[2]
    for method, marker in (("eval", "s"), ("sft", "o"), ("dpo", "v"), ("rl", "^")):
        g = st[(st["method"] == method) & st["reward_N"].isna()]
        if method == "dpo":
            g = g[g["settings"] == g["settings"].mode().iloc[0]] if len(g) else g
        g = g.groupby("policy_N", as_index=False).first().sort_values("policy_N")
        if g.empty:
            continue
        err = [g["accuracy"] - g["accuracy_lo"], g["accuracy_hi"] - g["accuracy"]]
        label = "pretrain" if method == "eval" else method.upper()
        ax.errorbar(g["policy_N"], g["accuracy"], yerr=err, marker=marker, capsize=2, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("policy parameters N")
    ax.set_ylabel("greedy exact-match accuracy (95% interval)")
    ax.set_title("dyck: accuracy after each stage")
    ax.legend(fontsize=7)
    del gains
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def common_heldout_accuracy(rm_dirs: list[str], pairs_file: str, first: int) -> pd.DataFrame:
    """Pair accuracy of reward models on one shared test set: the pairs of ``pairs_file``
    from line ``first`` on (none of them trained on it when each read at most ``first``
    pairs), with Wilson intervals: reward models trained on different numbers of pairs
    compared on the same pairs."""
    from scalelab.posttrain.pairs import read_pairs
    from scalelab.posttrain.reward import pair_accuracy, pair_tensors
    from scalelab.posttrain.stage import build_lm, open_policy, stage_record, tokenizer_of
    from scalelab.tasks.scoring import wilson

    rows = []
    for d in rm_dirs:
        parent = open_policy(d)
        task = stage_record(parent)["task"]
        test = read_pairs(pairs_file, task)[first:]
        acc = pair_accuracy(build_lm(parent).eval(), pair_tensors(tokenizer_of(parent), task, test))
        lo, hi = wilson(round(acc * len(test)), len(test))
        rows.append(
            {
                "run_id": parent.run_id,
                "pairs": stage_record(parent)["posttrain"]["pairs"],
                "test_pairs": len(test),
                "accuracy": acc,
                "lo": lo,
                "hi": hi,
            }
        )
    return pd.DataFrame(rows).sort_values("pairs").reset_index(drop=True)


def gain_figure(gains: pd.DataFrame, out: str | Path) -> Path:
    """Two panels against policy size: DPO's and RL's gain over SFT in greedy accuracy and in
    sampled gold reward, one line per (task, method) or per ``series`` where the frame names
    them, with the 95% intervals of :func:`gain_table` (Hou et al. 2024's question: does the
    gain shrink with N?)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (
        ("gain_over_sft", "gain_lo", "gain_hi", "greedy accuracy gain over SFT"),
        ("gold_gain", "gold_gain_lo", "gold_gain_hi", "sampled gold reward gain over SFT"),
    )
    for ax, (y, lo, hi, label) in zip(axes, panels, strict=True):
        data = gains.dropna(subset=[y])
        if "series" not in data.columns:  # one line per (task, method) unless named
            data = data.assign(series=data["task"] + " " + data["method"].str.upper())
        for series, g in data.groupby("series"):
            g = g.sort_values("policy_N")
            err = [g[y] - g[lo], g[hi] - g[y]]
            rl = (g["method"] == "rl").all()
            ax.errorbar(g["policy_N"], g[y], yerr=err, marker="o" if rl else "v", capsize=2,
                        label=series)  # fmt: skip
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("policy parameters N")
        ax.set_ylabel(label + " (95% interval)")
        ax.legend(fontsize=7)
    axes[0].set_title("Gain against policy size: greedy accuracy")
    axes[1].set_title("Gain against policy size: sampled reward (T = 1)")
    fig.tight_layout()
    path = Path(out)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
