"""Memorization: ``capacity`` (bits stored) and ``memorization`` (extractable share)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scalelab.cli._app import QuietOption, StudyOption, app, console, say
from scalelab.errors import ConfigError
from scalelab.memorization.quantize import PRECISIONS

PANEL = "Memorization"

RunsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Run directories (default: every finished run of --study in --db)."),
]
MeasureDbOption = Annotated[
    Path | None,
    typer.Option("--db", help="The SQLite results store: record the results as points there."),
]


def _run_dirs(runs: list[Path] | None, db: Path | None, study: str | None) -> list[Path]:
    if runs:
        return runs
    if db is None or study is None:
        raise ConfigError(
            "name run directories, or give --db and --study to measure every run of a study"
        )
    from scalelab.results.points import load_points
    from scalelab.results.store import Store

    pts = load_points(db, study=study, kind="run")
    if pts.empty:
        raise ConfigError(f"no finished runs of study {study!r} in {db}")
    with Store(db, create=False) as store:
        rows = store.query(
            "SELECT run_dir FROM points WHERE study = ? AND kind = 'run' AND run_id IN ("
            + ",".join("?" for _ in pts["run_id"])
            + ")",
            [study, *pts["run_id"]],
        )
    return [Path(r["run_dir"]) for r in rows]


def _list(text: str, option: str, cast: type = str) -> list:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes a comma-separated list, got {text!r}") from None


@app.command("capacity", rich_help_panel=PANEL)
def capacity_cmd(
    runs: RunsArg = None,
    db: MeasureDbOption = None,
    study: StudyOption = None,
    precision: Annotated[
        str, typer.Option("--precision", help=f"Comma-separated: {', '.join(PRECISIONS)} (RTN).")
    ] = "fp32",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Bits a model stores about its facts: or bits: corpus (and bits per parameter)."""
    from scalelab.cli import checks
    from scalelab.memorization.capacity import capacity

    checks.store(db)
    precisions = _list(precision, "--precision")
    if not precisions:
        raise ConfigError(f"--precision names none of {', '.join(PRECISIONS)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise ConfigError(f"--precision {p!r} is not one of {', '.join(PRECISIONS)}")
    if len(set(precisions)) < len(precisions):
        raise ConfigError(f"--precision {precision!r} names a precision twice: name each once")
    dirs = _run_dirs(runs, db, study)
    results = [capacity(run, precision=p, db=db) for run in dirs for p in precisions]
    fits = []
    if db is not None and study is not None:
        from scalelab.errors import FitError
        from scalelab.memorization.analysis import capacity_points, fit_capacity

        try:
            fits = fit_capacity(capacity_points(db, study=study))
        except FitError:
            fits = []
    if as_json:
        print(
            json.dumps(
                {"results": [r.to_dict() for r in results], "fits": [f.to_dict() for f in fits]},
                default=float,
            )
        )
        return
    # --quiet silences progress only: the result is what the command is for
    table = Table(title="bits stored (capacity)")
    for col in (
        "run",
        "corpus",
        "precision",
        "N non-emb",
        "exposures",
        "bits",
        "content",
        "bits/param",
        "bits/non-emb",
        "val bits",
        "attr loss",
    ):
        table.add_column(col, justify="left" if col in ("run", "corpus", "precision") else "right")
    for r in results:
        table.add_row(
            r.run_id,
            r.corpus,
            r.precision,
            f"{r.non_embedding_params:,}",
            f"{r.exposures:.0f}",
            f"{r.bits:,.0f}",
            f"{r.content_bits:,.0f}",
            f"{r.bits_per_param:.3f}",
            f"{r.bits_per_non_embedding_param:.3f}",
            f"{r.val_bits:,.0f}",
            f"{r.train_target_loss:.3f}",
        )
    console.print(table)
    for f in fits:
        lo, hi = f.bits_per_param_ci
        elo, ehi = f.exponent_ci
        say(
            f"{f.kind} {f.precision} {f.exposures:.0f} exposures: {f.bits_per_param:.3f} bits "
            f"per {f.n} parameter [{lo:.3f}, {hi:.3f}]; bits ~ N^{f.exponent:.2f} "
            f"[{elo:.2f}, {ehi:.2f}] over {len(f.points)} sizes"
        )


@app.command("memorization", rich_help_panel=PANEL)
def memorization_cmd(
    runs: RunsArg = None,
    db: MeasureDbOption = None,
    study: StudyOption = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Prompt lengths k, comma-separated.")
    ] = "8,16,32",
    samples: Annotated[
        int, typer.Option("--samples", help="Training and validation windows sampled.")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampled windows.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Share of canaries and training windows a model emits exactly (greedy, k-token prompt)."""
    from scalelab.cli import checks
    from scalelab.memorization.extraction import memorization
    from scalelab.runs import read_config

    checks.store(db)
    checks.seed(seed, "--seed")
    ks = tuple(_list(prefix, "--prefix", int))
    dirs = _run_dirs(runs, db, study)
    context = max(read_config(r).model.context for r in dirs)
    # each sampled window is held as int64 tokens and float64 log-probabilities, per split
    checks.count(samples, "--samples", bytes_each=2 * 16 * (context + 1))
    results = [memorization(run, prefixes=ks, samples=samples, seed=seed, db=db) for run in dirs]
    if as_json:
        print(json.dumps([r.to_dict() for r in results], default=float))
        return
    # --quiet silences progress only: the result is what the command is for
    table = Table(title="extractable share (greedy decoding emits the next tokens exactly)")
    for col in ("run", "N non-emb", "source", "repeats", "k", "extracted", "share"):
        table.add_column(col, justify="left" if col in ("run", "source") else "right")
    for r in results:
        for row in r.rows:
            table.add_row(
                r.run_id,
                f"{r.non_embedding_params:,}",
                row["source"],
                "" if row["repeats"] is None else str(row["repeats"]),
                str(row["k"]),
                f"{row['extracted']}/{row['n']}",
                f"{row['share']:.3f}",
            )
    console.print(table)
