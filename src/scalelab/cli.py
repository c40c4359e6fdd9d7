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
