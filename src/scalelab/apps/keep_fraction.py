"""The keep-fraction experiment: methods x keep fractions x sizes x seeds on one corpus.

Steps (each resumable; a second call reuses what is done):

1. a small **reference** run on the corpus (``perplexity`` and ``prototype`` score with it);
2. one **selection** file per method and keep fraction (``scalelab select``);
3. two studies in one store: ``keep-ladder`` (the whole training split at smaller token
   budgets: with the ``full`` runs of the next study they are the plain ladder whose fitted
   law turns a loss into effective data) and ``keep-fraction`` (``select = [...]`` with the
   token budget fixed, so a smaller selection is repeated more);
4. the analysis (:mod:`scalelab.select.analysis`).

``studies/keep-fraction.toml`` and ``studies/keep-ladder.toml`` are this module's
:func:`write_studies` output for the default design.

    python -m scalelab.apps.keep_fraction --out runs/keep-fraction
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.data.subset_file import SelectionError


@dataclass(frozen=True)
class KeepDesign:
    """What the keep-fraction experiment trains (the defaults: about 10 minutes on 2 cores)."""

    corpus: str = "python-stdlib:sample=0.03"  # ~290 KB spread over the whole library
    unit: str = "chunk"  # 24 files are too few documents to choose among: 512-token chunks
    chunk_tokens: int = 512
    methods: tuple[str, ...] = ("random", "dedup", "perplexity-low", "prototype-hard")
    # (the reference run's config is also the small model of every active round)
    keeps: tuple[float, ...] = (0.1, 0.3, 0.6)
    # active learning (Li et al. 2023) at these keeps only: each round trains a small model
    active_keeps: tuple[float, ...] = (0.3,)
    active_rounds: int = 2
    params: tuple[float, ...] = (1.2e4, 4e4)  # non-embedding
    tokens: int = 250_000  # about one pass over the whole training split
    ladder_tokens: tuple[int, ...] = (62_500, 125_000)
    seeds: tuple[int, ...] = (0, 1)
    reference_params: float = 5e3
    reference_tokens: int = 100_000
    context: int = 128
    batch_size: int = 16
    lr: float = 3e-3
    extra: dict[str, Any] = field(default_factory=dict)

    def selection_labels(self) -> list[tuple[str, str, str | None, float]]:
        """(label, method, order, keep) of every selection file."""
        out = []
        for m in self.methods:
            method, _, order = m.partition("-")
            for k in self.keeps:
                out.append((f"{m}@{k:g}", method, order or None, k))
        out += [(f"active@{k:g}", "active", None, k) for k in self.active_keeps]
        # active learning against random growth at equal data: the kept set after each
        # intermediate round, and random at the same share (the start is random@keep/(R+1))
        for k in self.active_keeps:
            for r in range(1, self.active_rounds):
                share = round(k / (self.active_rounds + 1) * (1 + r), 6)
                out.append((f"active@{k:g}-round{r}", "active", None, share))
                if not any(m == "random" and abs(kk - share) < 1e-9 for _, m, _, kk in out):
                    out.append((f"random@{share:g}", "random", None, share))
        return out


def _model_table(design: KeepDesign) -> str:
    return f"vocab_size = 258\ncontext = {design.context}\n"


def _train_table(design: KeepDesign) -> str:
    return (
        f"batch_size = {design.batch_size}\nlr = {design.lr}\n"
        "eval_every = 100\neval_batches = 8\ncheckpoint_every = 1000\n"
    )


def write_studies(design: KeepDesign, study_dir: Path, selections: Path) -> tuple[Path, Path]:
    """Write ``keep-fraction.toml`` and ``keep-ladder.toml`` into ``study_dir`` (selection
    paths relative to it)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    rel = Path(os.path.relpath(selections.resolve(), study_dir.resolve()))
    files = ", ".join(
        f'"{(rel / f"{label}.json").as_posix()}"' for label, *_ in design.selection_labels()
    )
    params = ", ".join(f"{p:g}" for p in design.params)
    seeds = ", ".join(str(s) for s in design.seeds)
    head = (
        "# The keep-fraction experiment (scalelab.apps.keep_fraction): which share of the\n"
        "# training data, chosen how, trains as well as all of it. Selections are made first:\n"
        "#   python -m scalelab.apps.keep_fraction --out runs/keep-fraction\n"
        "# (reference run, selection files, both studies, analysis), or by hand with\n"
        "#   scalelab select CORPUS --method M --keep F [--reference RUN] --unit chunk --out F.json\n"
    )
    keep = (
        head
        + "[study]\n"
        + 'name = "keep-fraction"\n'
        + f'description = "{len(design.methods)} selection methods x keep {list(design.keeps)} '
        + f'x {len(design.params)} sizes x {len(design.seeds)} seeds, {design.tokens} tokens each"\n'
        + f'corpus = "{design.corpus}"\ntokenizer = "bytes"\n'
        + f"params = [{params}]\ntokens = [{design.tokens}]\nseeds = [{seeds}]\n"
        + f'select = ["full", {files}]\n\n[model]\n'
        + _model_table(design)
        + "\n[train]\n"
        + _train_table(design)
    )
    ladder = (
        "# The plain ladder under the keep-fraction study: the whole training split at smaller\n"
        "# token budgets. With keep-fraction's `full` runs it fits the law that turns a\n"
        "# selected run's loss into effective data (scalelab.laws.effective_d).\n"
        "[study]\n"
        + 'name = "keep-ladder"\n'
        + f'corpus = "{design.corpus}"\ntokenizer = "bytes"\n'
        + f"params = [{params}]\n"
        + f"tokens = [{', '.join(str(t) for t in design.ladder_tokens)}]\nseeds = [0]\n\n[model]\n"
        + _model_table(design)
        + "\n[train]\n"
        + _train_table(design)
    )
    a, b = study_dir / "keep-fraction.toml", study_dir / "keep-ladder.toml"
    a.write_text(keep)
    b.write_text(ladder)
    return a, b


def train_reference(design: KeepDesign, out: Path, *, progress: bool = False) -> Path:
    """The small reference run (resumed if finished); returns its directory."""
    from scalelab.accounting import size_for
    from scalelab.config import DataConfig, RunConfig, TrainConfig
    from scalelab.train import train

    model = size_for(design.reference_params, vocab_size=258, context=design.context)
    cfg = RunConfig(
        model=model,
        data=DataConfig(corpus=design.corpus, tokenizer="bytes"),
        train=TrainConfig(
            batch_size=design.batch_size,
            lr=design.lr,
            tokens=design.reference_tokens,
            eval_every=100,
            checkpoint_every=1000,
        ),
    )
    s = train(cfg, out, resume=(out / cfg.run_id()).exists(), progress=progress)
    if s.status not in ("finished", "stopped_early"):
        raise SelectionError(f"the reference run {s.run_id} {s.status}: {s.reason}")
    return out / s.run_id


def make_selections(
    design: KeepDesign, reference: Path, out: Path, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """One selection file per (method, keep) in ``out`` (existing files are kept)."""
    from scalelab.select import select

    paths: dict[str, Path] = {}
    for label, method, order, keep in design.selection_labels():
        path = out / f"{label}.json"
        if "-round" in label:  # written by the active selection it belongs to
            base, _, r = label.partition("-round")
            rounds = out / f"{base}.rounds" / f"round-{r}.json"
            if not rounds.is_file():
                raise SelectionError(f"{rounds} is missing: make {base} first")
            path.write_bytes(rounds.read_bytes())
            paths[label] = path
            continue
        if not path.is_file():
            t0 = time.perf_counter()
            sel = select(
                design.corpus,
                method,
                keep,
                reference=reference if method in ("perplexity", "prototype", "active") else None,
                rounds=design.active_rounds if method == "active" else None,
                order=order or None,
                unit=design.unit,
                chunk_tokens=design.chunk_tokens if design.unit == "chunk" else None,
                seed=0,
                out=path,
            )
            log(
                f"selection {label}: kept {sel.kept_fraction:.3f} of the tokens "
                f"({len(sel.kept)}/{sel.n_units} units) in {time.perf_counter() - t0:.1f} s"
            )
        paths[label] = path
    return paths


def run(
    out: str | Path,
    design: KeepDesign | None = None,
    *,
    workers: int = 2,
    threads: int = 1,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """The whole experiment into ``out`` (``results.db``, ``runs/``, ``selections/``,
    the two study files, ``summary.json``); returns the store's path."""
    from scalelab.runner import sweep

    design = design or KeepDesign()
    out = Path(out)
    t0 = time.perf_counter()
    ref = train_reference(design, out / "reference", progress=progress)
    log(f"reference run: {ref}")
    make_selections(design, ref, out / "selections", log)
    keep_toml, ladder_toml = write_studies(design, out, out / "selections")
    db = out / "results.db"
    for study in (ladder_toml, keep_toml):
        sweep(study, db=db, out=out / "runs", workers=workers, threads=threads, progress=progress)
    from scalelab.select.analysis import keep_analysis

    analysis = keep_analysis(db)
    atomic.write_json(
        out / "summary.json",
        {**analysis.to_dict(), "wall_seconds": time.perf_counter() - t0, "reference": str(ref)},
        indent=2,
        sort_keys=True,
        default=str,
    )
    log(analysis.describe())
    return db


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--out", default="runs/keep-fraction")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    run(a.out, workers=a.workers, threads=a.threads, progress=not a.quiet)


if __name__ == "__main__":
    main()
