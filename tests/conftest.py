"""Fixtures shared by every test area."""

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """Run `scalelab ARGS...` and see what a user's shell would: the exit code, and stdout
    and stderr at the file-descriptor level (what torch's C++ or a child process writes is
    captured too, not only Python's prints), a traceback if one escaped.

    In this process, through ``main()`` (the console entry point): a fresh interpreter costs
    about 1.5 s of imports a call, and the suite makes about 70 (issue 22: ``make test``
    under 15 minutes). ``cli_process`` runs one for the tests of process behaviour.
    ``env`` adds variables (e.g. ``SCALELAB_CACHE``) for the call.
    """
    import traceback

    from scalelab.cli import main

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        capfd.readouterr()  # what came before is not this command's
        code = 0
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            m.setattr(sys, "argv", ["scalelab", *args])
            try:
                main()
            except SystemExit as e:  # as the interpreter turns it into an exit status
                if isinstance(e.code, int) or e.code is None:
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
                    code = 1
            except Exception:  # escaped main(): the user would see this traceback
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["scalelab", *args], code, out, err)

    return run


@pytest.fixture
def cli_process() -> CliRunner:
    """``cli`` in a fresh interpreter, for tests of what only a new process shows."""

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
    # the summary's contract on the design every earlier test knew (each pair from
    # scratch); the default, branched design has its own tests (tests/apps/test_demo_branches.py)
    "budgets": "dedicated",
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
