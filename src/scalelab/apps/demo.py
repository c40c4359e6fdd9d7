"""The demo (what ``make demo`` runs): a size ladder, a Chinchilla fit, a held-out check.

1. Sweep a ladder of transformers (5 sizes by ``size_for``, x 3 token budgets) on a corpus
   (``python-stdlib`` read as bytes by default), into ``OUT/results.db`` and ``OUT/runs``,
   and, in the same pool (``sweep_studies``), one held-out model ``holdout_factor`` (4)
   times larger in N than the largest ladder run, at the largest budget: the longest run,
   it starts first and keeps one worker busy while the other trains the ladder (trained
   after the ladder, it left a worker idle for its whole length, 207 of the demo's 540 s).
2. Fit L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3) with bootstrap.
3. Compare the held-out model's loss with the law's prediction.
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
* **One learning rate** (3e-3, decayed to 3e-4) across the ladder: over a 16x range of N it
  is one rule for all, as the issue asks of a ladder; README, "The demo", gives the
  measured outcome.
* **Branches** (``budgets = "branches"``, the default): each size trains once, to 4M tokens
  with the warmup-stable-decay schedule (20% linear cooldown), and the 1M and 2M points
  branch off its stable phase and train only their cooldown (Hägele et al. 2024): 34% fewer
  tokens than training every (size, budget) from scratch. Every run (the held-out model
  too) warms up for the same tokens (``train.warmup_tokens``: 5% of the largest budget, 98
  steps), so each branch *is* the WSD run trained from scratch to its budget. With 5% of
  the *smallest* budget (24 steps) the held-out model ended 0.11 nats worse and the law
  missed it by -9.45%; with 98 steps, -0.10% (docs/branches.md, "The demo both ways").
  ``budgets = "dedicated"`` is the earlier design: every pair from scratch, cosine with 5%
  warmup of each run.
* Re-running in the same ``OUT`` reuses finished runs (the sweep skips them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.config import DataConfig
from scalelab.data import load_tokens
from scalelab.errors import ConfigError, ScalelabError, TrainingError
from scalelab.laws import Selection, fit_law, select_law
from scalelab.reporting import Section, plots, report
from scalelab.results.points import load_points
from scalelab.runner.sweeper import sweep_studies
from scalelab.study.cost import config_counts
from scalelab.study.grid import expand
from scalelab.study.studyfile import BUDGET_MODES, as_study

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
    budgets: str = "branches"
    cooldown: float = 0.2

    def __post_init__(self) -> None:
        if len(self.params) < 3 or len(self.tokens) < 2:
            raise ConfigError(
                "the demo fits 5 parameters (E, A, B, alpha, beta): give at least 3 sizes "
                f"and 2 token budgets, got {len(self.params)} and {len(self.tokens)}"
            )
        if self.budgets not in BUDGET_MODES:
            raise ConfigError(f"budgets is one of {', '.join(BUDGET_MODES)}, got {self.budgets!r}")
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


def _ladder_plan(study: dict[str, Any]) -> tuple[float, int | None]:
    """From a ladder's planned runs, before any trains: its largest non-embedding N (as the
    store counts it) and the warmup in tokens its runs share (a branched ladder's, picked by
    :func:`scalelab.study.branching.ladder_warmup`; None for dedicated runs), so the held-out
    model warms up as the ladder does."""
    runs = expand(as_study(study))
    n = max(float(config_counts(r.config)["params"]["non_embedding"]) for r in runs)
    return n, runs[0].config.train.warmup_tokens


def _study(
    design: DemoDesign, name: str, vocab: int, warmup_tokens: int | None = None, **axes: Any
) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    if design.budgets == "branches":  # the ladder and its held-out model: WSD runs
        schedule = {"schedule": "wsd", "decay_fraction": design.cooldown}
        if warmup_tokens is not None:  # the held-out model: the ladder's warmup
            schedule["warmup_tokens"] = warmup_tokens
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
    # the held-out model's size is the design's, not the ladder's outcome: holdout_factor x
    # the largest N the ladder plans, so it trains in the ladder's pool (its one long run
    # keeps a worker busy while the other works through the ladder; README, "The demo")
    largest, warmup = _ladder_plan(ladder)
    n_h = design.holdout_factor * largest
    d_h = int(max(design.tokens))
    held = _study(design, "demo-holdout", vocab, warmup, params=[n_h], tokens=[d_h])
    log(
        f"1/4 ladder: {len(design.params)} sizes x {len(design.tokens)} budgets on "
        f"{design.corpus}, and the held-out model ({n_h:.3g} non-embedding parameters, "
        f"{d_h:,} tokens) beside it"
    )
    swept, swept_h = sweep_studies(
        [ladder, held],
        db=db,
        out=runs,
        workers=workers,
        threads=1 if workers > 1 else None,
        progress=progress,
    )
    t_swept = time.perf_counter()
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

    log(f"3/4 held-out model: {n_h:.3g} non-embedding parameters, {d_h:,} tokens")
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
    t_report = time.perf_counter()
    rep = report(
        db,
        out / "report",
        study="demo",
        bootstrap=design.bootstrap,
        extra=[_holdout_section(law, points, holdout, out / "report")],
    )
    # the report chose a form on these very runs (seed 0): reused, not chosen twice (each
    # choice refits every form on every split with its bootstrap: 15 s of the demo)
    same = rep.run_ids == frozenset(points["run_id"]) and design.seed == 0
    holdout["auto"] = _auto_choice(points, h, design, rep.selection if same else None)
    now = time.perf_counter()
    summary["wall_seconds"] = now - t0
    # where the time went: the sweep (vocabulary probe, ladder and held-out model), the fit
    # and the held-out check, the report (with its choice of form)
    summary["phase_seconds"] = {
        "sweep": t_swept - t0,
        "fit": t_report - t_swept,
        "report": now - t_report,
    }
    atomic.write_json(out / "summary.json", summary, indent=2, default=float)
    return DemoResult(out, summary, rep.path)


def _auto_choice(
    points: Any, h: Any, design: DemoDesign, chosen: Selection | None = None
) -> dict[str, Any]:
    """The form chosen by extrapolation within the ladder (``select_law``: the smaller sizes
    predict the larger; ``chosen`` if already made on these points) and its error on the
    held-out model, beside the Chinchilla fit's."""
    sel = chosen
    if sel is None:
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
