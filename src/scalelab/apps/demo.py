"""The demo (what ``make demo`` runs): a size ladder, a Chinchilla fit, a held-out check.

1. Sweep a ladder of transformers (5 sizes by ``size_for``, x 3 token budgets) on a corpus
   (``python-stdlib`` read as bytes by default), into ``OUT/results.db`` and ``OUT/runs``.
2. Fit L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3) with bootstrap.
3. Train one held-out model ``holdout_factor`` (4) times larger in N than the largest
   fitted run, at the largest fitted D, and compare its loss with the law's prediction.
4. Write the report (``OUT/report/index.html``) and ``OUT/summary.json``.

Design, and why (measured on a 2-core CPU; see the README for the numbers):

* **A width ladder at fixed depth** (2 layers, d_model 20 to 82, held-out 163): below a
  million parameters ``size_for``'s aspect rule alternates between 1 and 4 layers from one
  size to the next, which makes the steps of the ladder uneven (measured after 1M tokens:
  5k parameters at 1 layer 2.542 nats, 10k at 2 layers 2.526, 19k at 1 layer 2.381: gains
  of 0.016 and 0.145 for two doublings) and the fit poor.
* **Budgets as fixed token counts** (1M, 2M and 4M), not tokens per parameter: every size
  sees enough optimizer steps (>= 480) for the law's regime even at 10k parameters, and the
  held-out model is trained at a D the fit has measured, so the check isolates the
  extrapolation in N (the one users make when they scale up). Three budgets, because with
  two the D term is not identified: a 1M/3M ladder fitted beta = 17.8, B = 1.7e106 (its
  held-out error was still 0.5%, but its plans were nonsense).
* **Bytes** as tokens (vocabulary 258): no tokenizer training, and the embedding (which
  N excludes) stays a small share of the compute even for the smallest models.
* **One learning rate** (3e-3, cosine to 3e-4, 5% warmup) across the ladder: over a 16x
  range of N it is one rule for all, as the issue asks of a ladder; README, "The demo",
  gives the measured outcome.
* Re-running in the same ``OUT`` reuses finished runs (the sweep skips them).
* ``budgets = "branches"`` trains each size once, to 4M tokens with the WSD schedule, and
  branches the 1M and 2M points off it (Hägele et al. 2024): docs/branches.md measures the
  tokens, the time and the held-out error against the dedicated ladder. Every run of that
  design (the held-out model too) warms up for the same tokens (``train.warmup_tokens``,
  5% of the smallest budget), so each branch is the WSD run trained to its budget.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.config import DataConfig, TrainConfig
from scalelab.data import load_tokens
from scalelab.errors import ConfigError, ScalelabError, TrainingError
from scalelab.laws import fit_law, select_law
from scalelab.reporting import Section, plots, report
from scalelab.results.points import load_points
from scalelab.runner.sweeper import sweep

DEFAULT_PARAMS = (1e4, 2e4, 4e4, 8e4, 1.6e5)  # non-embedding targets for size_for
DEFAULT_TOKENS = (1_000_000, 2_000_000, 4_000_000)


@dataclass
class DemoDesign:
    """Everything the demo trains; the defaults are what ``make demo`` runs."""

    corpus: str = "python-stdlib"
    tokenizer: str = "bytes"
    params: Sequence[float] = DEFAULT_PARAMS
    tokens: Sequence[int] = DEFAULT_TOKENS
    holdout_factor: float = 4.0
    n_layer: int | None = 2  # fixed depth, widths by size_for (None: size_for picks depth too)
    context: int = 128
    batch_size: int = 16
    lr: float = 3e-3
    seed: int = 0
    bootstrap: int = 200
    eval_every: int = 100
    # "branches": each size trains once, to the largest budget, with the WSD schedule, and
    # the smaller budgets are branches off it that train only their cooldown (``cooldown``
    # of their length; scalelab.study.branching); the held-out model is then a WSD run too
    budgets: str = "dedicated"
    cooldown: float = 0.2

    def __post_init__(self) -> None:
        if len(self.params) < 3 or len(self.tokens) < 2:
            raise ConfigError(
                "the demo fits 5 parameters (E, A, B, alpha, beta): give at least 3 sizes "
                f"and 2 token budgets, got {len(self.params)} and {len(self.tokens)}"
            )
        if self.budgets not in ("dedicated", "branches"):
            raise ConfigError(f"budgets is 'dedicated' or 'branches', got {self.budgets!r}")
        if self.holdout_factor <= 1:
            raise ConfigError(f"holdout_factor must be > 1, got {self.holdout_factor}")


@dataclass
class DemoResult:
    out: Path
    summary: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None


def _vocab_size(design: DemoDesign) -> int:
    """The model vocabulary the corpus needs (bytes: 258; a Markov source: its symbols + 2)."""
    probe = 258 if design.tokenizer == "bytes" else 512
    data = load_tokens(DataConfig(corpus=design.corpus, tokenizer=design.tokenizer), probe)
    return probe if design.tokenizer == "bpe" else int(data.vocab_size)


def _ladder_warmup_tokens(design: DemoDesign) -> int:
    """One warmup for the whole branched design: 5% (``TrainConfig.warmup``) of the
    smallest budget, in whole steps, so a branch warms up as its dedicated twin would."""
    per_step = design.batch_size * design.context
    return round(TrainConfig.warmup * min(design.tokens) / per_step) * per_step


def _study(design: DemoDesign, name: str, vocab: int, **axes: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    if design.budgets == "branches":  # the ladder and its held-out model: WSD runs
        schedule = {
            "schedule": "wsd",
            "decay_fraction": design.cooldown,
            "warmup_tokens": _ladder_warmup_tokens(design),
        }
        if len(axes.get("tokens", ())) > 1:  # the ladder: one run per size + its branches
            axes = {**axes, "budgets": "branches", "cooldown": design.cooldown}
    return {
        "study": {
            "name": name,
            "corpus": design.corpus,
            "tokenizer": design.tokenizer,
            "arch": "transformer",
            "seeds": [design.seed],
            **axes,
        },
        "model": {
            "vocab_size": vocab,
            "context": design.context,
            **({"n_layer": design.n_layer} if design.n_layer else {}),
        },
        "train": {
            "batch_size": design.batch_size,
            "lr": design.lr,
            "eval_every": design.eval_every,
            "eval_batches": 8,
            **schedule,
        },
    }


def demo(
    out: str | Path = "demo",
    design: DemoDesign | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    log: Any = print,
) -> DemoResult:
    """Run the demo into ``out``; returns the summary (also ``out/summary.json``)."""
    design = design or DemoDesign()
    out = Path(out)
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    from scalelab.data.corpora import open_corpus
    from scalelab.runner.ray_backend import check_backend

    check_backend("local", None, workers=workers)  # at most one worker per CPU, before mkdir

    open_corpus(design.corpus)  # a bad corpus spec fails before the output folder is made
    out.mkdir(parents=True, exist_ok=True)
    db, runs = out / "results.db", out / "runs"
    workers = workers or min(2, os.cpu_count() or 1)
    t0 = time.perf_counter()
    vocab = _vocab_size(design)

    ladder = _study(design, "demo", vocab, params=list(design.params), tokens=list(design.tokens))
    log(f"1/4 ladder: {len(design.params)} sizes x {len(design.tokens)} budgets on {design.corpus}")
    swept = sweep(
        ladder,
        db=db,
        out=runs,
        workers=workers,
        threads=1 if workers > 1 else None,
        progress=progress,
    )
    # only this design's runs: an earlier design in the same OUT shares the study name
    points = load_points(db, study="demo", kind="run")
    points = points[points["run_id"].isin({r.run_id for r in swept.runs})]
    if len(points) < len(design.params) * len(design.tokens):
        raise TrainingError(
            f"only {len(points)} of {len(design.params) * len(design.tokens)} ladder runs "
            f"finished (see {runs}): fix the failed runs and run the demo again"
        )

    log(f"2/4 fitting the Chinchilla form to {len(points)} points ({design.bootstrap} bootstraps)")
    law = fit_law(points, "chinchilla", bootstrap=design.bootstrap, seed=design.seed)

    n_h = design.holdout_factor * float(points["N"].max())
    d_h = int(max(design.tokens))
    log(f"3/4 held-out model: {n_h:.3g} non-embedding parameters, {d_h:,} tokens")
    held = _study(design, "demo-holdout", vocab, params=[n_h], tokens=[d_h])
    swept_h = sweep(held, db=db, out=runs, workers=1, progress=progress)
    held_pts = load_points(db, study="demo-holdout", kind="run")
    held_pts = held_pts[held_pts["run_id"].isin({r.run_id for r in swept_h.runs})]
    if held_pts.empty:
        raise TrainingError(
            f"the held-out run did not finish (see {runs}, study demo-holdout): the ladder "
            "and its fit are kept; run the demo again to retry it"
        )
    h = held_pts.iloc[0]
    predicted = float(law.predict(N=float(h["N"]), D=float(h["D"])))
    lo, hi = law.predict_interval(N=float(h["N"]), D=float(h["D"]))
    actual = float(h["loss"])
    holdout = {
        "run_id": h["run_id"],
        "N": float(h["N"]),
        "D": float(h["D"]),
        "n_ratio": float(h["N"]) / float(points["N"].max()),
        "predicted_loss": predicted,
        "predicted_interval": [float(lo), float(hi)],
        "actual_loss": actual,
        "relative_error": (predicted - actual) / actual,
    }
    holdout["auto"] = _auto_choice(points, h, design)
    summary: dict[str, Any] = {
        "design": {**asdict(design), "params": list(design.params), "tokens": list(design.tokens)},
        "law": law.to_dict(),
        "holdout": holdout,
        "runs": len(points) + 1,
        "trained_now": sum(
            r.action in ("trained", "resumed") for r in [*swept.runs, *swept_h.runs]
        ),
        "training_seconds": float(points["wall_seconds"].sum() + h["wall_seconds"]),
    }
    entropy = points["entropy_rate"].dropna()
    if len(entropy):
        summary["entropy_rate"] = float(entropy.iloc[0])

    log("4/4 report")
    rep = report(
        db,
        out / "report",
        study="demo",
        bootstrap=design.bootstrap,
        extra=[_holdout_section(law, points, holdout, out / "report")],
    )
    summary["wall_seconds"] = time.perf_counter() - t0
    atomic.write_json(out / "summary.json", summary, indent=2, default=float)
    return DemoResult(out, summary, rep.path)


def _auto_choice(points: Any, h: Any, design: DemoDesign) -> dict[str, Any]:
    """The form chosen by extrapolation within the ladder (``select_law``: the smaller sizes
    predict the larger) and its error on the held-out model, beside the Chinchilla fit's."""
    try:
        sel = select_law(points, bootstrap=design.bootstrap, seed=design.seed)
    except ScalelabError as e:
        return {"skipped": str(e)}
    n, d, actual = float(h["N"]), float(h["D"]), float(h["loss"])
    predicted = float(sel.law.predict(N=n, D=d))
    # the interval of one run's loss, the kind whose coverage select_law measured
    lo, hi = sel.law.predict_interval(N=n, D=d, run=True) if design.bootstrap else (None, None)
    return {
        "form": sel.chosen,
        "predicted_loss": predicted,
        "predicted_interval": [lo, hi],
        "level": sel.level,
        "relative_error": (predicted - actual) / actual,
        "selection": sel.to_dict(),
    }


def _holdout_section(law: Any, points: Any, holdout: dict[str, Any], out: Path) -> Any:
    """Loss against N at the held-out model's D: the ladder, the law, the prediction, the truth."""
    import numpy as np

    d = holdout["D"]
    same_d = points[np.isclose(points["D"], d, rtol=0.02)]
    fig, ax = plots.figure()
    ax.plot(points["N"], points["loss"], "o", color="lightgrey", label="ladder (all D)")
    ax.plot(same_d["N"], same_d["loss"], "o", color="tab:blue", label=f"ladder at D={plots.si(d)}")
    grid = np.geomspace(points["N"].min() / 1.5, holdout["N"] * 1.5, 100)
    ax.plot(
        grid,
        law.predict(N=grid, D=np.full_like(grid, d)),
        "-",
        color="tab:blue",
        lw=1,
        label="fitted law at that D",
    )
    lo, hi = holdout["predicted_interval"]
    ax.errorbar(
        [holdout["N"]],
        [holdout["predicted_loss"]],
        yerr=[[holdout["predicted_loss"] - lo], [hi - holdout["predicted_loss"]]],
        fmt="s",
        color="crimson",
        capsize=4,
        label="predicted (95% interval)",
    )
    ax.plot([holdout["N"]], [holdout["actual_loss"]], "*", ms=14, color="black", label="measured")
    plots.log_axes(ax, values=[*points["loss"], holdout["actual_loss"], lo, hi])
    ax.set_xlabel("N (non-embedding parameters)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(f"Held-out model, {holdout['n_ratio']:.1f}x the largest fitted N")
    ax.legend(fontsize=7)
    png = plots.save(fig, out / "holdout.png")
    text = (
        f"<p>A model {holdout['n_ratio']:.2f}x larger in N than any fitted run, trained on "
        f"{plots.si(d)} tokens: predicted loss {holdout['predicted_loss']:.4f} "
        f"[{lo:.4f}, {hi:.4f}], measured {holdout['actual_loss']:.4f}, relative error "
        f"{100 * holdout['relative_error']:+.2f}%.</p>"
    )
    return Section(
        "Held-out prediction", text + f'<img src="{png.name}" alt="held-out">', [png], holdout
    )
