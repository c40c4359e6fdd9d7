"""Which law predicts the larger models? Free, tied and over-training forms against the form
chosen by extrapolation, on every public set of runs in tests/data/laws/ that spans sizes.

Protocol, the same on every set: the points at the ``--holdout`` (2) largest model sizes are
held out; every form is fitted (Huber on log residuals, as `scalelab fit`) on the points
below them and scored by the mean absolute relative error of its predictions of the held-out
losses. ``auto`` is ``select_law`` run on the fit points only (rolling origin over *their*
largest sizes, never seeing the held-out ones), then its chosen form's error on the held-out
points. Coverage: the share of held-out losses inside each form's 90% bootstrap prediction
interval (fit sizes resampled whole, plus a resampled residual), and the same share over the
rolling-origin splits inside ``auto``.

    .venv/bin/python benchmarks/laws_extrapolation.py            # table; ~1-2 min on 2 cores
    .venv/bin/python benchmarks/laws_extrapolation.py --plot docs/laws-auto.png
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from scalelab.laws import fit_law, select_law
from scalelab.laws.fit import _cols, size_groups
from scalelab.laws.form_choice import prediction_interval
from scalelab.laws.forms import make_form

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "laws"
FORMS = ("chinchilla", "chinchilla-tied", "overtrain")
LEVEL = 0.9


def _epoch() -> pd.DataFrame:
    df = pd.read_csv(DATA / "epoch_chinchilla_245.csv").rename(
        columns={"N_params": "N", "D_tokens": "D", "C_flop": "C"}
    )
    return df[df["loss"] < np.sort(df["loss"].to_numpy())[-5]]  # as Besiroglu et al.


def _gadre(corpus: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        df = pd.read_csv(DATA / "gadre2024_c4_val_loss.csv")
        df = df[df["dataset"] == corpus]
        return df.rename(columns={"params": "N", "tokens": "D", "loss_c4_val": "loss"})

    return load


def _marin(corpus: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        df = pd.read_csv(DATA / "marin2026_isoflops.csv")
        df = df[(df["dataset"] == corpus) & ~df["outlier"]]  # that repository's QC flags
        # C: the sweep's own FLOP count, which is not 6ND (0.74-1.07x it)
        return df.rename(columns={"params": "N", "tokens": "D", "budget": "C"})

    return load


def _misfitting() -> pd.DataFrame:
    df = pd.read_csv(DATA / "misfitting_last_ckpt.csv")
    # the best learning rate of each (model, tokens): the sweep's point on the loss surface
    best = df.loc[df.groupby(["N", "D"])["loss"].idxmin()]
    return best[["N", "D", "loss"]].assign(C=lambda d: 6.0 * d["N"] * d["D"])


def _datablations() -> pd.DataFrame:
    df = pd.read_csv(DATA / "datablations_fit_set_182.csv")
    df = df.rename(columns={"N_params": "N", "D_tokens": "D", "val_loss": "loss"})
    # the forms compared have no repetition term: single-epoch runs only
    return df[df["D"] <= df["U_unique_tokens"]]


def _cs336() -> pd.DataFrame:
    df = pd.read_csv(DATA / "cs336_isoflops.csv")
    return df.rename(
        columns={"parameters": "N", "tokens_C_over_6N": "D", "final_loss": "loss"}
    ).assign(C=lambda d: d["compute_budget"])


SETS: dict[str, Callable[[], pd.DataFrame]] = {
    "Gadre et al. 2024, C4": _gadre("c4_original"),
    "Gadre et al. 2024, RedPajama": _gadre("rpj"),
    "Gadre et al. 2024, RefinedWeb": _gadre("rw_original"),
    "Epoch (Chinchilla), 240 points": _epoch,
    "Marin 2026, comma": _marin("comma"),
    "Marin 2026, dclm": _marin("dclm"),
    "Marin 2026, nemotron": _marin("nemotron"),
    "(Mis)Fitting 2025, best LR": _misfitting,
    "Datablations, single epoch": _datablations,
    "CS336, synthetic IsoFLOPs": _cs336,
}
SKIPPED = {
    "bnsl_4digit_addition.csv": "one variable (training set size): no N and D to compare forms on",
}


def measure(df: pd.DataFrame, holdout: int, bootstrap: int, seed: int) -> dict:
    df = df.reset_index(drop=True)
    if "C" not in df.columns:
        df = df.assign(C=6.0 * df["N"] * df["D"])
    labels = size_groups(df["N"].to_numpy(dtype=float))
    cut = labels.max() - holdout + 1
    fit, held = df[labels < cut], df[labels >= cut]
    actual = held["loss"].to_numpy()
    row: dict = {
        "sizes": f"{labels.max() + 1}",
        "fit N": f"{fit['N'].min():.3g}-{fit['N'].max():.3g}",
        "held N": ", ".join(
            f"{n:.3g}" for n in sorted(held.groupby(labels[labels >= cut])["N"].median())
        ),
        "n fit/held": f"{len(fit)}/{len(held)}",
    }
    for form in FORMS:
        law = fit_law(fit, form, bootstrap=0, extrapolation=False)
        spec = make_form(form)
        pred = law.predict(N=held["N"].to_numpy(), D=held["D"].to_numpy(), C=held["C"].to_numpy())
        rel = (pred - actual) / actual
        row[form] = float(np.mean(np.abs(rel)))
        row[f"{form} max"] = float(np.max(np.abs(rel)))
        theta = spec.from_public(law.params)
        feats = spec.features(_cols(fit, spec))
        lo, hi = prediction_interval(
            spec,
            feats,
            np.log(fit["loss"].to_numpy()),
            theta,
            spec.features(_cols(held, spec)),
            size_groups(fit["N"].to_numpy(dtype=float)),
            bootstrap,
            LEVEL,
            seed,
        )
        row[f"{form} covered"] = int(np.sum((actual >= lo) & (actual <= hi)))
    sel = select_law(fit, FORMS, holdout, bootstrap=bootstrap, seed=seed, level=LEVEL)
    row["auto"] = sel.chosen
    row["auto error"] = row[sel.chosen]
    row["auto rolling coverage"] = sel.coverage
    row["auto rolling held"] = int(sel.table.query("form == @sel.chosen")["n_held"].sum())
    row["n held"] = len(held)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--holdout", type=int, default=2)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", type=Path, default=None, help="write the bar chart here (PNG)")
    ap.add_argument("--json", type=Path, default=None, help="write the measurements here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = {}
    for name, load in SETS.items():
        rows[name] = measure(load(), args.holdout, args.bootstrap, args.seed)
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print_table(rows)
    for f, why in SKIPPED.items():
        print(f"skipped {f}: {why}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)
        print(f"wrote {args.plot}")
    print(f"{time.perf_counter() - t0:.0f} s")


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def print_table(rows: dict[str, dict]) -> None:
    head = (
        "| set | sizes | fit N | held-out N | points fit/held | free | tied | overtrain "
        "| auto (choice) | 90% interval held: free / tied / overtrain | auto, rolling origin |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, r in rows.items():
        n = r["n held"]
        cov = " / ".join(f"{r[f'{f} covered']}/{n}" for f in FORMS)
        roll = f"{r['auto rolling coverage']:.0%} of {r['auto rolling held']}"
        print(
            f"| {name} | {r['sizes']} | {r['fit N']} | {r['held N']} | {r['n fit/held']} | "
            f"{_pct(r['chinchilla'])} | {_pct(r['chinchilla-tied'])} | {_pct(r['overtrain'])} | "
            f"{_pct(r['auto error'])} ({r['auto']}) | {cov} | {roll} |"
        )
    mean = {f: np.mean([r[f] for r in rows.values()]) for f in (*FORMS, "auto error")}
    print(
        f"| mean over sets | | | | | {_pct(mean['chinchilla'])} | {_pct(mean['chinchilla-tied'])} "
        f"| {_pct(mean['overtrain'])} | {_pct(mean['auto error'])} | | |"
    )


def plot(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    colors = {"chinchilla": "#4477aa", "chinchilla-tied": "#ee6677", "overtrain": "#228833"}
    labels = {
        "chinchilla": "chinchilla (free: alpha, beta)",
        "chinchilla-tied": "chinchilla-tied (alpha = beta)",
        "overtrain": "overtrain (Gadre et al. 2024, eq. 4)",
    }
    w = 0.2
    for i, f in enumerate(FORMS):
        vals = [100 * rows[n][f] for n in names]
        ax.bar(x + (i - 1.5) * w, vals, w, color=colors[f], label=labels[f])
    auto = [100 * rows[n]["auto error"] for n in names]
    ax.bar(
        x + 1.5 * w,
        auto,
        w,
        color="white",
        edgecolor="black",
        hatch="///",
        label="auto (chosen on the fit sizes only)",
    )
    for xi, n in zip(x, names, strict=True):
        ax.text(xi + 1.5 * w, auto[list(names).index(n)] + 0.1, rows[n]["auto"].replace("chinchilla-", ""),
                rotation=90, fontsize=7, ha="center", va="bottom")  # fmt: skip
    ax.set_xticks(x, [n.replace(", ", "\n", 1).replace(" (", "\n(") for n in names], fontsize=7)
    ax.set_ylabel("mean |relative error| on the 2 largest sizes (%)")
    ax.set_title("Fit below the 2 largest model sizes, predict them: which form extrapolates?")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
