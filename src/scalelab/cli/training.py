"""Train one model: ``train``, ``export``, ``corpus``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from scalelab.cli import render
from scalelab.cli._app import (
    DEFAULT_RUNS,
    QuietOption,
    RunsOption,
    app,
    err_console,
    one_of,
    out_folder,
    say,
    warn,
)
from scalelab.config import TOKENIZERS
from scalelab.errors import ConfigError, TrainingError
from scalelab.outputs import FINISHED

PANEL = "Train one model"


@app.command("train", rich_help_panel=PANEL)
def train_cmd(
    config: Annotated[
        str, typer.Argument(help="Run config TOML with sections [model], [data], [train].")
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="section.key=value, e.g. --set train.lr=1e-3 (repeatable)."),
    ] = None,
    runs: RunsOption = DEFAULT_RUNS,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue from the run's last checkpoint (or reuse it)."),
    ] = False,
    quiet: QuietOption = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print summary.json instead of a table.")
    ] = False,
    nproc: Annotated[
        int,
        typer.Option("--nproc", help="Data-parallel processes on this machine (gloo/NCCL)."),
    ] = 1,
) -> None:
    """Train one model; the run is RUNS/<hash of the resolved config>/."""
    from scalelab.config import load_run_config
    from scalelab.plugin import run_needs
    from scalelab.train import train
    from scalelab.train.distributed import torchrun_rank, train_distributed, train_torchrun

    out_folder(runs, "--runs")
    cfg = load_run_config(config, overrides or [])
    placed = torchrun_rank()
    if placed is not None:  # torchrun --nproc-per-node N -m scalelab train CONFIG
        summary = train_torchrun(cfg, runs, resume=resume, progress=not quiet)
        if summary is None or placed[0] != 0:  # rank 0 reports
            return
    else:
        # the runs this one needs (a distilled student's teacher TOML): trained first, each
        # in its own directory, or reused when finished (scalelab.plugin.run_needs)
        for need in run_needs(cfg):
            err_console.print(
                f"training {need.run_id()} first: {cfg.run_id()} needs it",
                markup=False,
                highlight=False,
            )
            needed = train(need, runs, resume=True, progress=not quiet)
            if needed.status not in FINISHED:
                raise TrainingError(
                    f"the run {need.run_id()} that this run needs failed: {needed.reason}"
                )
        if nproc != 1:
            summary = train_distributed(cfg, runs, nproc=nproc, resume=resume, progress=not quiet)
        else:
            summary = train(cfg, runs, resume=resume, progress=not quiet)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        render.train_summary(summary)
    if summary.status == "failed":
        err_console.print(f"run failed: {summary.reason}", markup=False, highlight=False)
        raise typer.Exit(1)


@app.command("export", rich_help_panel=PANEL)
def export_cmd(
    run: Annotated[str, typer.Argument(help="A run directory (RUNS/<run id>).")],
    format: Annotated[
        str, typer.Option("--format", help="hf: Hugging Face config.json + model.safetensors.")
    ] = "hf",
    out: Annotated[
        str | None, typer.Option("--out", help="Output directory (default RUN/hf).")
    ] = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Refuse (exit 2) when the newest checkpoint is damaged."),
    ] = False,
) -> None:
    """Export a run's newest intact checkpoint (GPT2LMHeadModel or LlamaForCausalLM)."""
    from scalelab.train.export import export

    path = export(run, out, format=format, strict=strict, note=lambda m: warn(f"note: {m}"))
    say(f"wrote {path}")


@app.command("corpus", rich_help_panel=PANEL)
def corpus_cmd(
    spec: Annotated[
        str,
        typer.Argument(
            help="Corpus spec KIND:BODY: python-stdlib[:max_bytes=N], "
            "markov:order=K,vocab=V,seed=S, text:PATH[,max_bytes=N], jsonl:PATH:FIELD, "
            "hf:NAME[:CONFIG]"
        ),
    ] = "python-stdlib",
    tokenizer: Annotated[
        str,
        typer.Option("--tokenizer", help=f"{one_of(TOKENIZERS)} (bpe is trained at --vocab-size)."),
    ] = "bpe",
    vocab_size: Annotated[
        int, typer.Option("--vocab-size", help="The model's vocabulary size.")
    ] = 512,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of documents held out, by hash.")
    ] = 0.02,
    cache_dir: Annotated[
        str | None,
        typer.Option("--cache-dir", help="Default: $SCALELAB_CACHE or ~/.cache/scalelab."),
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build again even if cached.")] = False,
    show: Annotated[
        int, typer.Option("--show", help="Print the first N validation tokens, decoded.")
    ] = 0,
    quiet: QuietOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Tokenize a corpus into the shared cache (once) and describe it."""
    from contextlib import nullcontext

    from rich.status import Status

    from scalelab.config import DataConfig
    from scalelab.data import load_tokens

    if show < 0:
        raise ConfigError(f"--show {show}: give a number of tokens >= 0")
    data = DataConfig(
        corpus=spec, tokenizer=tokenizer, val_fraction=val_fraction, cache_dir=cache_dir
    )
    waiting = nullcontext() if quiet else Status(f"loading {spec} ...", console=err_console)
    with waiting:
        td = load_tokens(data, vocab_size, rebuild=rebuild)
    info = td.describe()
    if as_json:
        print(json.dumps(info))
    else:
        render.corpus_info(info)
    if show:
        print(td.tokenizer.decode(td.val[:show].tolist()))
