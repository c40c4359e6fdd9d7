"""Say what a long wait is for: a note on stderr when a blocking call outlasts a few seconds.

A store locked by another process, a dataset hub with no network: each can block for a
minute in silence, which reads as a hang. :func:`note_if_slow` prints one line once the wait
passes ``after`` seconds, and nothing for the waits that end sooner (the usual case).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SLOW_SECONDS = 2.0


@contextlib.contextmanager
def note_if_slow(message: str, after: float = SLOW_SECONDS) -> Iterator[None]:
    """Run the block; if it is still running after ``after`` seconds, print ``message``
    (one line, ``note:`` first) on stderr."""

    def say() -> None:
        print(f"note: {message}", file=sys.stderr, flush=True)

    timer = threading.Timer(after, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


__all__ = ["SLOW_SECONDS", "note_if_slow"]
