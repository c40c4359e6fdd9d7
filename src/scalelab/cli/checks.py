"""Checks every command makes before any work: one per kind of option.

* :func:`store`: a ``--db`` is a results store (or a new path beside a writable folder), read
  and schema-checked, never created here.
* :func:`seed`, :func:`rate`, :func:`count`: a seed is a whole number >= 0; a rate is finite
  and > 0; a count is bounded by what the machine has (the estimate is in the message).
* :func:`device`: a device this build and machine have.
* :func:`unused`: an option that has no effect in the combination given is refused, with why;
  :func:`given` says which options were given explicitly (whatever their value).
* :func:`out_dir`, :func:`out_file`: outputs never replace what the command did not make
  (:mod:`scalelab.outputs`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError, StoreError
from scalelab.outputs import Artefact, check_output, classify

# a count option beyond this is refused outright, whatever the memory: it is a typo
MAX_COUNT = 10**9


def store(db: Path | str | None, option: str = "--db", *, write: bool = True) -> None:
    """``db`` names a results store: an existing one whose schema is scalelab's, or a new
    path (with ``write``) in a folder that exists or can be made and is writable."""
    if db is None:
        return
    if str(db).strip() == "":
        raise StoreError(f"{option} is empty: give the results store's path")
    p = Path(db)
    if p.is_dir():
        raise StoreError(f"{option} {str(p)!r} is a directory, not a results store: give a file")
    if not p.exists():
        if not write:
            return  # the command's own reader says there is no store, with the fix
        parent = next((q for q in (p.parent, *p.parent.parents) if q.exists()), Path("."))
        if not parent.is_dir():
            raise StoreError(f"{option} {str(p)!r}: {parent} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"{option} {str(p)!r}: the folder {parent} is not writable")
        return
    art = classify(p)
    if art.kind == "inside":
        raise StoreError(f"{option} {str(p)!r} is a file of the run {art.within}, not a store")
    if art.kind != "store":
        raise StoreError(
            f"{option} {str(p)!r} is not a results store (not an SQLite file): give a store "
            "written by scalelab, or a new path"
        )
    if write and not os.access(p, os.W_OK):
        raise StoreError(f"{option} {str(p)!r} is read-only: give a writable store")
    try:
        conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{option} {str(p)!r}: not a usable SQLite results store ({e})") from None
    if tables and "points" not in tables:
        raise StoreError(
            f"{option} {str(p)!r} is an SQLite database but not a scalelab results store "
            f"(tables: {', '.join(sorted(tables)[:4])}): give another path"
        )


def seed(value: int | None, option: str) -> None:
    """A seed: a whole number >= 0 (numpy and torch take no negative seed)."""
    if value is not None and not 0 <= value < 2**63:
        raise ConfigError(f"{option} {value}: a seed is a whole number >= 0")


def rate(value: float | None, option: str) -> None:
    """A rate (a learning rate, a temperature): finite, > 0 and at most MAX_RATE (the
    same rule as the config's rates)."""
    from scalelab.ranges import check_rate

    if value is not None:
        check_rate(option, value)


def count(
    value: int | None,
    option: str,
    *,
    minimum: int = 1,
    bytes_each: float = 0.0,
    maximum: int = MAX_COUNT,
) -> None:
    """A count: a whole number in [minimum, maximum], and (with ``bytes_each``) one whose
    memory fits in what this machine has available."""
    if value is None:
        return
    if value < minimum:
        raise ConfigError(f"{option} {value}: give a whole number >= {minimum}")
    need = value * bytes_each
    have = available_memory()
    if value > maximum or (bytes_each and have is not None and need > have):
        est = f" (about {_size(need)}, and {_size(have)} is available)" if bytes_each else ""
        raise ConfigError(f"{option} {value} is more than this machine can hold{est}: give fewer")


def available_memory() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def device(name: str, option: str = "--device") -> None:
    """A device this build and machine have: cpu, cuda[:N] (a CUDA build with that GPU), mps."""
    import torch

    text = name.strip()
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ConfigError(
            f"{option} {name!r} is not a device: use cpu, cuda, cuda:N or mps"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{option} {name!r}: no CUDA GPU is visible to this build of torch "
                f"({torch.__version__}): use cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{option} {name!r}: only {torch.cuda.device_count()} GPU(s) exist")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"{option} {name!r}: MPS is not available here: use cpu")
    elif dev.type != "cpu":
        raise ConfigError(f"{option} {name!r}: scalelab runs on cpu, cuda or mps")


def unused(given: Mapping[str, Any], why: str) -> None:
    """Refuse options (name -> value given, None when not given) that ``why`` makes moot."""
    named = [k for k, v in given.items() if v is not None and v is not False]
    if named:
        raise ConfigError(
            f"{', '.join(named)} {'has' if len(named) == 1 else 'have'} no effect {why}: drop {'it' if len(named) == 1 else 'them'}"
        )


def given(*names: str) -> dict[str, bool]:
    """Which of the running command's options (by parameter name) were typed on the command
    line or set from the environment, whatever their value: an option given explicitly with
    the default value is still given (click's ParameterSource), so it can be refused where
    it has no effect."""
    try:  # typer >= 0.20 carries its own copy of click
        from typer._click.globals import get_current_context
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import get_current_context  # type: ignore[no-redef]

    ctx = get_current_context(silent=True)
    out = {}
    for name in names:
        source = ctx.get_parameter_source(name) if ctx is not None else None
        out[name] = source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")
    return out


def out_dir(
    path: Path | str | None, option: str = "--out", own: Callable[[Artefact], bool] | None = None
) -> None:
    """A folder output: new, empty, or this command's own earlier output (``own``)."""
    check_output(path, option, folder=True, own=own)


def out_file(
    path: Path | str | None, option: str = "--out", own: Callable[[Artefact], bool] | None = None
) -> None:
    """A file output: new, or a plain file (not a store, not a file of a run or an export)."""
    check_output(path, option, folder=False, own=own, may_replace_files=True)


def argv(command: Any, args: list[str]) -> None:
    """What the command line itself gets wrong, before typer parses it: an option or an
    argument given the empty string (``--out ''``), and an option that takes one value given
    twice (the last would silently win). ``command`` is the click command being run."""
    single: dict[str, str] = {}
    for param in command.params:  # typer carries its own click: known by duck type
        if (
            getattr(param, "param_type_name", "") == "option"
            and not param.multiple
            and not getattr(param, "is_flag", False)
            and not getattr(param, "count", False)
        ):
            for opt in (*param.opts, *param.secondary_opts):
                single[opt] = param.opts[0]
    seen: dict[str, int] = {}
    for i, tok in enumerate(args):
        if tok == "--":
            break
        name, eq, value = tok.partition("=")
        if tok.startswith("--") and eq and name in single and not value.strip():
            raise ConfigError(f"{name} is empty: give a value")
        if tok in single or (eq and name in single):
            key = single[name if eq else tok]
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                raise ConfigError(f"{key} is given twice: give it once")
        if not tok.strip() and not (i and args[i - 1] in ("--set",)):
            before = args[i - 1] if i and args[i - 1].startswith("-") else "an argument"
            raise ConfigError(f"{before} is empty: give a value")


def plain_help() -> None:
    """Help text is plain text: typer reads it as rich markup, which takes "[model]" in
    "sections [model], [data], [train]" for a tag and drops it. The one place typer turns
    help into rich text is made to keep it as written (highlighting kept)."""
    import inspect

    from rich.text import Text
    from typer import rich_utils

    if getattr(rich_utils._make_rich_text, "plain", False):
        return

    def make(*, text: str, style: str = "", markup_mode: Any = None) -> Any:
        return rich_utils.highlighter(Text(inspect.cleandoc(text), style=style))

    make.plain = True  # type: ignore[attr-defined]
    rich_utils._make_rich_text = make


@contextlib.contextmanager
def warnings_as_notes(note: Callable[[str], None]) -> Iterator[None]:
    """Warnings become one ``note:`` line each (scalelab's own), or are held back (another
    package's: torch, numpy and friends speak to developers, not to the user)."""
    import warnings

    import scalelab

    ours = str(Path(scalelab.__file__).parent) + os.sep
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: set[str] = set()
            for w in caught:
                if not str(w.filename).startswith(ours) or str(w.message) in seen:
                    continue
                seen.add(str(w.message))
                note(" ".join(f"note: {w.message}".split()))


__all__ = [
    "argv",
    "count",
    "device",
    "given",
    "out_dir",
    "out_file",
    "plain_help",
    "rate",
    "seed",
    "store",
    "unused",
    "warnings_as_notes",
]
