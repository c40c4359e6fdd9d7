"""Fixtures shared by every test area."""

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli() -> CliRunner:
    """Run `scalelab ARGS...` in a fresh interpreter, as a user's shell would.

    A subprocess (not typer's in-process runner) so that exit codes, stderr and the absence of a
    traceback are what a user sees. ``env`` adds variables (e.g. ``SCALELAB_CACHE``).
    """

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from scalelab.cli import main; main()", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
        )

    return run
