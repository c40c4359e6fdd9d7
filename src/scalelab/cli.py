"""The command line: a thin typer mirror of the Python API.

Each command parses its options, calls one function of the API and prints the
result. A ``ScalelabError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

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


# --- train one model: train, export ----------------------------------------------------------


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


def main() -> None:
    """Entry point: run the app, turning a ScalelabError into one line and exit code 2."""
    try:
        app()
    except ScalelabError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
