"""Outputs never replace what a command did not make.

:func:`classify` says what an existing path is (a finished run, a derived run, an export,
a results store, a file, a folder, nothing); :func:`check_output` refuses, before any work,
an output path that holds something the command did not make. A command may write only to
a new path, an empty folder, or its own earlier output for the same inputs (a resume, a
re-run); it says which by ``own``. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scalelab import rundir
from scalelab.errors import ConfigError

SQLITE_MAGIC = b"SQLite format 3\x00"
FINISHED = ("finished", "stopped_early")

Kind = Literal[
    "missing", "empty", "run", "unfinished run", "derived run", "export", "store", "file",
    "folder", "inside",
]  # fmt: skip


@dataclass
class Artefact:
    """What is at ``path``: ``kind`` and, for runs and exports, their records."""

    path: Path
    kind: Kind
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)  # an export's scalelab.json
    within: Path | None = None  # kind "inside": the run or export the path lies in

    def describe(self) -> str:
        what = {
            "run": "a finished run",
            "unfinished run": "a run directory (not finished)",
            "derived run": f"a derived run ({self.derived_kind})",
            "export": "a Hugging Face export of a run",
            "store": "a results store",
            "file": "an existing file",
            "folder": "a folder that holds other files",
            "inside": f"inside the run or export {self.within}",
            "empty": "an empty folder",
            "missing": "a new path",
        }[self.kind]
        return what

    @property
    def derived_kind(self) -> str:
        if self.config.get("kind"):
            return str(self.config["kind"])
        if "compression" in self.summary:
            return "compressed"
        return "derived"


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _is_store(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _run_above(path: Path) -> Path | None:
    """The run directory or export that ``path`` lies inside, if any."""
    for parent in path.parents:
        if (parent / rundir.CONFIG).is_file() and (
            (parent / rundir.SUMMARY).is_file()
            or (parent / rundir.CHECKPOINTS).is_dir()
            or (parent / rundir.EXPORT_META).is_file()
        ):
            return parent
    return None


def classify(path: str | Path) -> Artefact:
    """What is at ``path`` (see :data:`Kind`)."""
    p = Path(path)
    if p.is_dir():
        if (p / rundir.EXPORT_META).is_file():
            return Artefact(p, "export", meta=_json(p / rundir.EXPORT_META))
        if (p / rundir.CONFIG).is_file() and (
            (p / rundir.SUMMARY).is_file()
            or (p / rundir.CHECKPOINTS).is_dir()
            or (p / rundir.METRICS).is_file()
        ):
            config, summary = _json(p / rundir.CONFIG), _json(p / rundir.SUMMARY)
            if config.get("kind") or "compression" in summary or (p / "compression.json").exists():
                return Artefact(p, "derived run", config, summary)
            kind: Kind = "run" if summary.get("status") in FINISHED else "unfinished run"
            return Artefact(p, kind, config, summary)
        try:
            empty = not any(p.iterdir())
        except OSError:
            empty = False
        # a folder with a config.json alone: a run killed before its first checkpoint
        return Artefact(p, "empty" if empty else "folder", _json(p / rundir.CONFIG))
    if not p.exists():
        return Artefact(p, "missing")  # a new path, even inside a run, replaces nothing
    within = _run_above(p)
    if within is not None:
        return Artefact(p, "inside", within=within)
    return Artefact(p, "store" if _is_store(p) else "file")


def check_output(
    path: str | Path | None,
    option: str,
    *,
    folder: bool,
    own: Callable[[Artefact], bool] | None = None,
    may_replace_files: bool = False,
) -> Artefact | None:
    """Refuse an output path that holds what the command did not make; return what is there.

    ``folder``: the command writes a directory (a run, an export, a report), else one file.
    ``own(artefact)``: whether an existing artefact is this command's own earlier output for
    the same inputs (then it may be resumed or replaced). ``may_replace_files``: a plain file
    that is none of the project's artefacts may be replaced (a CSV, a figure)."""
    if path is None:
        return None
    if str(path).strip() == "":
        raise ConfigError(f"{option} is empty: give the path to write to")
    art = classify(path)
    if art.kind in ("missing",) or (folder and art.kind == "empty"):
        return art
    if own is not None and own(art):
        return art
    if not folder and art.kind == "file" and may_replace_files:
        return art
    shown = str(art.path)
    if folder and art.kind in ("file", "store"):
        raise ConfigError(f"{option} {shown!r} is {art.describe()}: give a folder")
    if not folder and art.kind in ("empty", "folder", "run", "unfinished run", "derived run",
                                   "export"):  # fmt: skip
        raise ConfigError(f"{option} {shown!r} is {art.describe()}: give the path of a file")
    raise ConfigError(
        f"{option} {shown!r} is {art.describe()}, which this command did not make: it writes "
        "only to a new path or to its own earlier output; give another path"
    )


__all__ = ["Artefact", "check_output", "classify"]
