"""The command line: a thin typer mirror of the Python API.

Each command parses its options, calls one function of the API and prints the
result. A ``ScalelabError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from scalelab.errors import ScalelabError

app = typer.Typer(
    help="scalelab: model size and performance in transformer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """scalelab: model size and performance in transformer models."""


@app.command()
def version() -> None:
    """Print the scalelab version."""
    from scalelab import __version__

    print(__version__)


# --- how big is it: count, presets ---------------------------------------------------------


@app.command("count")
def count_cmd(
    model: str = typer.Argument(
        ..., help="A preset (see `scalelab presets`), a config.json / params.json, or a model TOML."
    ),
    seq_len: int | None = typer.Option(
        None, "--seq-len", "-T", help="Sequence length (default: the model's context)."
    ),
    batch: int = typer.Option(
        1, "--batch", "-b", help="Sequences held at once (KV cache, activations)."
    ),
    dtype: str = typer.Option("bf16", help="Inference dtype: fp32, bf16, fp16, fp8, int8, int4."),
    device_memory: str | None = typer.Option(
        None, "--device-memory", help="Memory of one device: 80GiB, 80GB or 8e10."
    ),
    tokens: str | None = typer.Option(
        None, help="Training tokens, e.g. 15.6e12 or 15.6T: adds a time."
    ),
    devices: int = typer.Option(1, help="Devices training together."),
    mfu: float = typer.Option(0.4, help="Model FLOP utilisation, a fraction of the peak."),
    peak_flops: str = typer.Option(
        "989e12", help="Peak FLOP/s of one device (default: H100 SXM, dense BF16)."
    ),
    recompute: str = typer.Option("none", help="Activation recomputation: none, selective, full."),
    causal: bool = typer.Option(
        False, "--causal", help="Count attention FLOPs over earlier tokens only."
    ),
    grad_dtype: str = typer.Option(
        "bf16", help="Gradient dtype in training: bf16 (16 B/param) or fp32 (18)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """How big is this model: exact parameters, FLOPs per token and memory."""
    from scalelab.accounting import count

    c = count(
        model,
        seq_len=seq_len,
        batch=batch,
        dtype=dtype,
        device_memory=device_memory,
        tokens=tokens,
        devices=devices,
        mfu=mfu,
        peak_flops=peak_flops,
        recompute=recompute,
        causal=causal,
        grad_dtype=grad_dtype,
    )
    if json_out:
        import json

        print(json.dumps(c.to_dict(), indent=2))
        return
    from scalelab.accounting.display import count_table

    console.print(count_table(c))


@app.command("presets")
def presets_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every preset with its total and non-embedding parameters."""
    from scalelab.accounting import count
    from scalelab.presets import list_presets

    rows = [(p.name, p.family, count(p.name), p.description) for p in list_presets()]
    if json_out:
        import json

        print(
            json.dumps(
                [
                    {"name": name, "family": family, "description": description,
                     **{k: getattr(c.params, k) for k in ("total", "non_embedding", "active", "embedding")}}
                    for name, family, c, description in rows
                ],
                indent=2,
            )
        )  # fmt: skip
        return
    from scalelab.accounting.display import presets_rich_table

    console.print(presets_rich_table([(name, family, c) for name, family, c, _ in rows]))


# --- train one model: train, export ----------------------------------------------------------


@app.command("train")
def train_cmd(
    config: str | None = typer.Argument(
        None, help="run config TOML with sections model, data, train (defaults if omitted)"
    ),
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="section.key=value, e.g. --set train.lr=1e-3 (repeatable)"),
    ] = None,
    out: str = typer.Option("runs", "--out", help="runs go to OUT/<run id>/"),
    resume: bool = typer.Option(
        False, "--resume", help="continue from the run's last checkpoint (or reuse its result)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of a table"),
) -> None:
    """Train one model; the run is OUT/<hash of the resolved config>/."""
    import json

    from scalelab.config import load_run_config
    from scalelab.train import train

    cfg = load_run_config(config, overrides or [])
    summary = train(cfg, out, resume=resume, progress=progress)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        from rich.table import Table

        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        t = Table(title=f"run {summary.run_id}: {summary.status}", show_header=False)
        t.add_row("directory", summary.path)
        t.add_row("steps", f"{summary.step} of {summary.steps}")
        t.add_row("tokens", f"{summary.tokens:,} ({summary.epochs:.3g} epochs)")
        t.add_row("train loss", num(summary.train_loss, ".4f"))
        t.add_row("val loss (nats/token)", num(summary.val_loss, ".4f"))
        t.add_row("val bits per byte", num(summary.val_bpb, ".4f"))
        t.add_row("best val loss", num(summary.best_val_loss, ".4f"))
        if summary.entropy_rate is not None:
            t.add_row("entropy rate (floor)", f"{summary.entropy_rate:.4f}")
        t.add_row(
            "params total / non-embedding",
            f"{summary.params['total']:,} / {summary.params['non_embedding']:,}",
        )
        t.add_row("training FLOPs", f"{summary.flops_total:.3g} (6ND {summary.six_nd:.3g})")
        t.add_row("tokens/s (training steps)", num(summary.tokens_per_second, ",.0f"))
        t.add_row("wall seconds", f"{summary.wall_seconds:.1f}")
        t.add_row("device, precision", f"{summary.device}, {summary.precision}")
        console.print(t)
    if summary.status == "failed":
        err_console.print(f"[bold red]run failed:[/] {summary.reason}", highlight=False)
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    run: str = typer.Argument(..., help="a run directory (OUT/<run id>)"),
    format: str = typer.Option(
        "hf", "--format", help="hf: Hugging Face config.json + model.safetensors"
    ),
    out: str | None = typer.Option(None, "--out", help="output directory (default RUN/hf)"),
) -> None:
    """Export a run's newest checkpoint (GPT2LMHeadModel or LlamaForCausalLM)."""
    from scalelab.train.export import export

    path = export(run, out, format=format)
    console.print(f"wrote {path}", highlight=False)


@app.command("corpus")
def corpus_cmd(
    spec: str = typer.Argument(
        "python-stdlib",
        help="corpus spec: python-stdlib[:max_bytes=N], markov:order=K,vocab=V,seed=S, "
        "text:PATH, jsonl:PATH:FIELD, hf:NAME[:CONFIG]",
    ),
    tokenizer: str = typer.Option("bpe", help="bpe (trained at --vocab-size) or bytes"),
    vocab_size: int = typer.Option(512, "--vocab-size", help="the model's vocabulary size"),
    val_fraction: float = typer.Option(0.02, help="share of documents held out, by hash"),
    cache_dir: str | None = typer.Option(
        None, help="default: $SCALELAB_CACHE or ~/.cache/scalelab"
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="tokenize again even if cached"),
    show: int = typer.Option(0, help="print the first N validation tokens, decoded"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Tokenize a corpus into the shared cache (once) and describe it."""
    import json

    from rich.status import Status
    from rich.table import Table

    from scalelab.config import DataConfig
    from scalelab.data import load_tokens

    data = DataConfig(
        corpus=spec, tokenizer=tokenizer, val_fraction=val_fraction, cache_dir=cache_dir
    )
    with Status(f"loading {spec} ...", console=err_console):
        td = load_tokens(data, vocab_size, rebuild=rebuild)
    info = td.describe()
    if as_json:
        print(json.dumps(info))
    else:
        table = Table(show_header=False, box=None)
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(
                    f"{k} {v:.2f}s" if key == "build_seconds" else f"{k} {v:,}"
                    for k, v in value.items()
                )
            elif isinstance(value, float):
                value = f"{value:.4f}"
            elif isinstance(value, int):
                value = f"{value:,}"
            table.add_row(key, str(value))
        console.print(table)
    if show:
        print(td.tokenizer.decode(td.val[:show].tolist()))


# --- studies: sweep, points ------------------------------------------------------------------


# --- laws and plans: fit, plan -----------------------------------------------------------------


# --- report and demo ---------------------------------------------------------------------------


# --- architectures: archs --------------------------------------------------------------------


@app.command("archs")
def archs_cmd(
    n_layer: int = typer.Option(4, "--n-layer", help="Shape at which to count each architecture."),
    d_model: int = typer.Option(128, "--d-model"),
    n_head: int = typer.Option(4, "--n-head"),
    context: int = typer.Option(128, "--context"),
    vocab_size: int = typer.Option(512, "--vocab-size"),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every architecture: its inductive bias, its own config fields, and its size at one shape."""
    from scalelab.models import archs_table

    table = archs_table(
        n_layer=n_layer, d_model=d_model, n_head=n_head, context=context, vocab_size=vocab_size
    )
    if json_out:
        print(table.to_json(orient="records", indent=2))
        return
    from rich.table import Table

    out = Table(
        title=f"{n_layer} x {d_model}, {n_head} heads, context {context}, vocab {vocab_size}",
        title_justify="left",
    )
    out.add_column("arch", style="bold", no_wrap=True)
    out.add_column("params", justify="right", no_wrap=True)
    out.add_column("active", justify="right", no_wrap=True)
    out.add_column("MFLOP/tok", justify="right", no_wrap=True)
    out.add_column("inductive bias [dim](own fields)[/]")
    for row in table.itertuples():
        own = ", ".join(f"{k}={'auto' if v is None else v}" for k, v in row.fields.items())
        out.add_row(
            row.arch,
            f"{row.params:,}",
            f"{row.active:,}",
            f"{row.train_flops_per_token / 1e6:.2f}",
            row.description + (f" [dim]({own})[/]" if own else ""),
        )
    console.print(out)
    console.print(
        "MFLOP/tok: training FLOPs per token (3 x forward, causal); "
        "active: the parameters one token passes through"
    )


def main() -> None:
    """Entry point: run the app, turning a ScalelabError into one line and exit code 2."""
    try:
        app()
    except ScalelabError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
