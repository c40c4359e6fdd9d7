"""Techniques that make a small model compete: ``compress``.

(Distillation is a ``[distill]`` section of a run config: ``scalelab train`` and
``scalelab sweep`` run it.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from scalelab.cli._app import QuietOption, app, console, number, one_of, say
from scalelab.techniques.compress_options import (
    ALGORITHMS,
    BITS,
    GROUPS,
    METHODS,
    SCOPES,
    STRUCTURES,
)

PANEL = "Small vs large"


def _default_first(choices: tuple[object, ...]) -> str:
    """``a (default), b or c``: an option's choices, its default (the table's first) named."""
    return one_of([f"{choices[0]} (default)", *choices[1:]])


@app.command("compress", rich_help_panel=PANEL)
def compress_cmd(
    run: Annotated[
        str,
        typer.Argument(
            help="A finished run directory (RUNS/<run id>), or a compression study TOML "
            "(studies/compression.toml: every method and level on a ladder's runs)."
        ),
    ],
    method: Annotated[str | None, typer.Option("--method", help=f"{one_of(METHODS)}.")] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="prune: fraction removed (0.5); quant: bits ("
            + ", ".join(map(str, BITS))
            + "); lowrank: rank (8) or "
            "energy fraction (0.9); share: adjacent blocks per group (2).",
        ),
    ] = None,
    recover: Annotated[
        str | None,
        typer.Option("--recover", help="Fine-tune this many tokens after compressing (100k)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The derived run directory (default: beside RUN)."),
    ] = None,
    db: Annotated[
        Path | None, typer.Option("--db", help="Record the point in this results store.")
    ] = None,
    study: Annotated[
        str, typer.Option("--study", help="The study name of the point in --db.")
    ] = "compress",
    structure: Annotated[
        str | None,
        typer.Option("--structure", help=f"prune: {_default_first(STRUCTURES)}."),
    ] = None,
    scope: Annotated[
        str | None, typer.Option("--scope", help=f"prune: {_default_first(SCOPES)}.")
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option("--algorithm", help=f"quant: {_default_first(ALGORITHMS)}.")
    ] = None,
    group: Annotated[
        int | None,
        typer.Option(
            "--group",
            help=f"quant: weights per scale, {_default_first(GROUPS)} (0: per channel).",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu (default) or cuda.")] = "cpu",
    quiet: QuietOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Compress a finished run into a derived run: its val loss and exact size in bits."""
    from scalelab.cli import checks
    from scalelab.errors import ConfigError
    from scalelab.techniques.compress import compress

    checks.store(db)
    checks.device(device)
    if run.endswith(".toml"):
        from scalelab.techniques.compress.plan import run_study

        if method is not None or level is not None:
            raise ConfigError(
                "a compression study lists its methods and levels: drop --method/--level"
            )
        run_study(run, db or Path("results.db"), log=(lambda _m: None) if quiet else say)
        return
    if method is None or level is None:
        raise ConfigError("give --method and --level (or a compression study TOML as RUN)")
    lv = number(level, "--level") if level.strip() not in ("0", "0.0") else 0.0
    rec = int(number(recover, "--recover", integer=True)) if recover is not None else None
    r = compress(
        run,
        method,
        lv,
        recover=rec,
        out=out,
        db=db,
        study=study,
        structure=structure,
        scope=scope,
        algorithm=algorithm,
        group=group,
        device=device,
    )
    if as_json:
        print(json.dumps({"run_dir": str(r.run_dir), **r.block(), "val_loss": r.val_loss}))
        return
    if quiet:
        say(str(r.run_dir))
        return
    t = Table(title=f"{r.run_id}", show_header=False)
    rows = [
        ("directory", str(r.run_dir)),
        ("parent", r.parent_run_id),
        (
            "val loss (fp32)",
            f"{r.val_loss:.4f} (parent {r.parent_loss:.4f}, {r.val_loss - r.parent_loss:+.4f})",
        ),
        ("bits", f"{r.bits:,} (parent {r.parent_bits:,}: {r.ratio:.2f}x smaller)"),
        ("bits per parameter", f"{r.bits / r.params:.3f}"),
        ("nonzero / parameters", f"{r.nonzero:,} / {r.params:,}"),
        ("recovery tokens", f"{r.recover_tokens:,}"),
        ("seconds", f"{r.seconds:.2f} compress, {r.recover_seconds:.2f} recover"),
    ]
    if db is not None:
        rows.append(("point", f"{db} (study {study}, kind compressed)"))
    for k, v in rows:
        t.add_row(Text(k), Text(v))
    console.print(t)


@app.command("effective", rich_help_panel=PANEL)
def effective_cmd(
    law: Annotated[Path, typer.Option("--law", help="A law file written by `scalelab fit --out`.")],
    loss: Annotated[float, typer.Option("--loss", help="The loss reached (nats per token).")],
    tokens: Annotated[
        str | None, typer.Option("--tokens", help="D held fixed: give the effective N.")
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="N held fixed: give the effective D.")
    ] = None,
) -> None:
    """The N (at --tokens) or D (at --params) a plain run needs, under a law, to reach --loss."""
    from scalelab.errors import ConfigError
    from scalelab.laws import Law
    from scalelab.laws.effective import effective_d, effective_n

    if (tokens is None) == (params is None):
        raise ConfigError(
            "give one of --tokens (for the effective N) or --params (for the effective D)"
        )
    fitted = Law.load(law)
    if tokens is not None:
        e = effective_n(fitted, loss, number(tokens, "--tokens"))
    else:
        e = effective_d(fitted, loss, number(params, "--params"))  # type: ignore[arg-type]
    say(e.describe())
