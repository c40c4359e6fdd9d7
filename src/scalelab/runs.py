"""A finished run, opened once: ``open_run(path)`` and its one error, ``RunError``.

The implementation lives beside the checkpoints and the export it reads
(:mod:`scalelab.train.runs`); this is the name every reader of a run imports.
"""

from __future__ import annotations

from scalelab.train.runs import (
    FINISHED,
    FinishedRun,
    RunError,
    export_meta,
    file_checksums,
    open_run,
    read_config,
)

__all__ = [
    "FINISHED",
    "FinishedRun",
    "RunError",
    "export_meta",
    "file_checksums",
    "open_run",
    "read_config",
]
