"""Atomic file writes: the one writer every part of scalelab uses.

A file is written whole under a temporary name in its own directory, flushed to disk, given
the mode a plain ``open(path, "w")`` would give it (``0o666`` less the process umask:
``tempfile.mkstemp`` creates ``0o600``, which would hide reports, runs and stores from the
other users of a shared machine), then renamed over ``path``. A reader never sees half a
file, and a write that fails leaves nothing behind (the temporary is removed).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def umask() -> int:
    """The process umask, read without changing it where the OS says it (Linux
    ``/proc/self/status``); elsewhere set and restored at once, under a lock."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open(path, "w")``: 0o666 less the umask."""
    return 0o666 & ~umask()


def share_like_open(directory: str | Path) -> None:
    """Give every file under ``directory`` (one built whole, then renamed into place) the mode
    a plain ``open()`` would: safetensors creates its files ``0o600`` whatever the umask, which
    would hide checkpoints and exports from the user's group."""
    mode = file_mode()
    for p in Path(directory).rglob("*"):
        if p.is_file() and not p.is_symlink():
            os.chmod(p, mode)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that wants a file name (``savefig``,
    ``DataFrame.to_csv``); on leaving the block the file is synced, given :func:`file_mode`
    and renamed to ``path``; on an exception it is removed and ``path`` is left as it was."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(
    path: str | Path,
    obj: Any,
    *,
    indent: int | None = 1,
    sort_keys: bool = False,
    default: Callable[[Any], Any] | None = None,
    allow_nan: bool = True,
) -> Path:
    """``obj`` as JSON (one trailing newline), atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=default, allow_nan=allow_nan)
    return write_text(path, text + "\n")


__all__ = ["atomic_path", "file_mode", "umask", "write_bytes", "write_json", "write_text"]
