"""One error hierarchy for everything a user can get wrong.

Every message says what is wrong *and* what to do about it. The CLI turns a
``ScalelabError`` into a one-line message and exit code 2, never a traceback;
anything else escaping is a bug in scalelab.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class ScalelabError(Exception):
    """Base class: bad input or a state the user can fix."""


class ConfigError(ScalelabError):
    """A config (TOML, override, Hugging Face config.json, preset name) is invalid."""


class DataError(ScalelabError):
    """A corpus, tokenizer or token cache cannot be used."""


class TrainingError(ScalelabError):
    """A run cannot start, or stopped (NaN/inf loss, broken checkpoint)."""


class FitError(ScalelabError):
    """A law cannot be fitted (too few points, non-positive N or D, NaN losses)."""


class StoreError(ScalelabError):
    """A results store or run directory cannot be read or written."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix naming the nearest valid choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_user_text(path: str | Path, what: str, error: type[ScalelabError] | None = None) -> str:
    """The text of a file the user named (a config, a study, a law): UTF-8, or one error that
    names the file and the first bad byte (a Latin-1 or UTF-16 file, a binary given by
    mistake). A directory or an unreadable file is an error of the same kind; a missing file
    raises ``FileNotFoundError`` for the caller to word."""
    p = Path(path)
    cls = error or ConfigError
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise cls(f"{what} {str(p)!r} is a directory: give a file") from None
    except PermissionError:
        raise cls(f"{what} {str(p)!r} cannot be read (permission denied)") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise cls(
            f"{what} {str(p)!r} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
            f"{e.start}): save it as UTF-8"
        ) from None
