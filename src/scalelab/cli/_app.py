"""The typer app every command module registers on, and the grammar they share.

One grammar for every command (docs/cli.md lists it):

* ``--db PATH``: the results store, default ``results.db``, in every command that reads or
  writes one; ``--study NAME`` narrows every command that reads one.
* ``--runs DIR``: the directory that holds run directories (``runs``).
* ``--out PATH``: the one file or folder the command writes (a law, a report, an export).
* ``--quiet``: no progress view; every long command shows one otherwise.
* ``--seed``: the seed of the runs a command trains; ``--bootstrap-seed`` the resampling's.
* ``--devices`` is a number of devices; ``--device`` names devices (``cuda:0,cuda:1``).
* Numbers take ``1e21``, ``15.6T`` and ``1_000``; sizes in bytes take ``80GiB`` too.

Errors are plain text (no markup), one line on stderr, exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from scalelab.errors import ConfigError

app = typer.Typer(
    help="scalelab: model size and performance in transformer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Redirected to a file or a pipe, output keeps every column whole (a terminal gets its width).
console = Console(width=None if sys.stdout.isatty() else 100_000)
err_console = Console(stderr=True)

DEFAULT_DB = Path("results.db")
DEFAULT_RUNS = Path("runs")

# The shared options, declared once so that each means the same in every command.
DbOption = Annotated[Path, typer.Option("--db", help="The SQLite results store.")]
StudyOption = Annotated[str | None, typer.Option("--study", help="Only this study's points.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress view.")]
RunsOption = Annotated[
    Path, typer.Option("--runs", help="Directory of run directories (RUNS/<run id>/).")
]
# sweep and tune: where runs train, and how many at once
BackendOption = Annotated[
    str,
    typer.Option("--backend", help="local (worker processes here) or ray (each run a Ray task)."),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The Ray cluster to join: HOST:PORT, ray://HOST:PORT or auto (default: a local "
        "instance).",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        "-j",
        help="Runs trained at once: worker processes (default 1), or Ray tasks in flight "
        "(default: the cluster's capacity).",
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", help="Torch threads per run (default 1 when runs share the CPUs)."),
]
BootstrapOption = Annotated[
    str, typer.Option("--bootstrap", help="Bootstrap refits for the intervals (e.g. 200, 1e3).")
]
BootstrapSeedOption = Annotated[
    int, typer.Option("--bootstrap-seed", help="Seed of the bootstrap resampling.")
]


def one_of(choices: Iterable[object], *, last: str = "or") -> str:
    """``a, b or c``: the entries of one of the API's tables, for a help text. Help texts
    take their choices from the table the API checks against, so an entry added there shows
    in ``--help`` without editing the command."""
    items = [str(c) for c in choices]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def say(text: str) -> None:
    """Print plain text to stdout: no markup, so brackets and paths survive as written."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """A note on stderr, plain text."""
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def error_line(message: object) -> None:
    """The one line a ScalelabError becomes: plain text, on stderr."""
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"error: {text}", file=sys.stderr, flush=True)


def number(text: str | float, option: str, *, integer: bool = False) -> float:
    """A positive number option as ``1e21``, ``15.6T``, ``300M`` or ``1_000``."""
    from scalelab.accounting.memory import parse_count

    value = parse_count(text, option)
    if integer:
        if value != int(value) or value > 2**31:
            raise ConfigError(f"{option} must be a whole number below 2^31, got {text!r}")
        return int(value)
    return value


# bootstrap refits: each is a whole fit (milliseconds to a second), and intervals settle by a
# few thousand; more is a typo that would run for days and hold every refit in memory
MAX_BOOTSTRAP = 100_000


def count_option(text: str, option: str, *, allow_zero: bool = True) -> int:
    """A whole-number option such as ``--bootstrap`` (``0`` allowed where it means none)."""
    if allow_zero and text.strip() in ("0", "0.0"):
        return 0
    value = int(number(text, option, integer=True))
    if option == "--bootstrap" and value > MAX_BOOTSTRAP:
        raise ConfigError(
            f"{option} {value:,} refits would take days (each is a fit of its own, about "
            f"10 ms to 1 s): give at most {MAX_BOOTSTRAP:,} (intervals settle by a few thousand)"
        )
    return value


def out_file(path: Path | None, option: str) -> None:
    """An output option that names a file: refuse, before any work, a directory, a results
    store (unless ``--db``: then it must be one) or a file of a run or an export there."""
    from scalelab.cli import checks

    if option == "--db":
        checks.store(path, option)
    else:
        checks.out_file(path, option)


def out_folder(path: Path | str | None, option: str) -> None:
    """An output option that names a folder of runs (``--runs``): refuse, before any work, a
    file, a store, or a run, derived run or export (runs would be written inside it)."""
    from scalelab.cli import checks

    checks.out_dir(path, option, own=lambda a: a.kind == "folder")
