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


# A demo small enough for the default test run: a Markov source (its entropy rate known),
# 3 sizes x 2 budgets of tiny transformers and the 4x held-out model, in a few seconds.
TINY_DEMO = {
    "corpus": "markov:order=1,vocab=8,seed=0,tokens=200000",
    "params": (600, 1200, 2400),
    "n_layer": 1,
    "tokens": (10240, 20480),
    "context": 32,
    "batch_size": 8,
    "bootstrap": 20,
    "eval_every": 40,
}


@pytest.fixture(scope="session")
def tiny_design():  # -> scalelab.apps.demo.DemoDesign
    from scalelab.apps.demo import DemoDesign

    return DemoDesign(**TINY_DEMO)


@pytest.fixture(scope="session")
def tiny_demo(tiny_design, tmp_path_factory: pytest.TempPathFactory):  # -> DemoResult
    from scalelab.apps.demo import demo

    out = tmp_path_factory.mktemp("tiny-demo")
    os.environ.setdefault("SCALELAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    return demo(out, tiny_design, workers=1, progress=False, log=lambda *_: None)
