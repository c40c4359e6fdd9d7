"""Every ``console`` example in README.md runs, so no example rots.

A quick command runs in full and the output the README shows must appear in what it prints,
line by line and in order (``...`` stands for lines left out; numbers agree to 1%, so a last
digit that moves with the CPU's float kernels does not fail the test, but a changed result
does). A long command (``make``, ``train``, a sweep that trains, ``report`` of a store the
tour builds, ``demo``) runs as a dry run or with ``--help``: it must still exist and take the
options the README gives it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NUMBER = re.compile(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?%?", re.IGNORECASE)


@dataclass
class Example:
    command: str
    shown: list[str] = field(default_factory=list)
    line: int = 0


def examples(text: str) -> list[Example]:
    """The ``$ command`` lines of every console block, with the output lines under each."""
    found: list[Example] = []
    block = False
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("```"):
            block = raw.strip() == "```console"
            continue
        if not block:
            continue
        if pending or raw.startswith("$ "):
            part = raw[2:] if not pending else raw
            pending += part.rstrip("\\").strip() + " "
            if not raw.endswith("\\"):
                found.append(Example(pending.strip(), line=number))
                pending = ""
        elif found:
            found[-1].shown.append(raw.rstrip())
    return found


def _long(argv: list[str]) -> list[str] | None:
    """The stand-in for a command too long for a test, or None to run it in full."""
    if argv[0] == "make":
        return ["make", "-n", *argv[1:]]
    command = argv[1]
    if command in {"train", "report", "demo", "tune", "finetune"}:
        return [argv[0], command, "--help"]
    if command == "sweep" and "--dry-run" not in argv:
        return [*argv, "--dry-run"]
    return None


def _tokens(line: str) -> list[str]:
    return line.split()


def _same(expected: str, actual: str) -> bool:
    a, b = _tokens(expected), _tokens(actual)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        nx, ny = NUMBER.fullmatch(x.strip("[](),")), NUMBER.fullmatch(y.strip("[](),"))
        if not (nx and ny):
            return False
        fx, fy = (float(t.strip("[](),").rstrip("%").replace(",", "")) for t in (x, y))
        if abs(fx - fy) > 0.01 * max(abs(fx), abs(fy)) + 1e-12:
            return False
    return True


def shown_in(shown: list[str], printed: str) -> str | None:
    """None if every shown line appears in order in ``printed``; else the first missing one."""
    lines = [ln.rstrip() for ln in printed.splitlines()]
    at = 0
    for want in shown:
        if not want.strip() or want.strip() == "...":
            continue
        while at < len(lines) and not _same(want, lines[at]):
            at += 1
        if at == len(lines):
            return want
        at += 1
    return None


EXAMPLES = examples(README.read_text())


def test_the_readme_has_examples_and_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= 300
    commands = [e.command.split()[0] for e in EXAMPLES]
    assert commands.count("make") == 2 and commands.count("scalelab") >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"line{e.line}")
def test_readme_example_runs(example: Example, tmp_path: Path) -> None:
    argv = shlex.split(example.command)
    assert argv[0] in {"make", "scalelab"}, f"README line {example.line}: {example.command}"
    stand_in = _long(argv)
    run = stand_in or argv
    if run[0] == "scalelab":
        run = [sys.executable, "-m", "scalelab", *run[1:]]
    # the tour names the repository's files; anything it writes goes to tmp_path
    for name in ("studies", "examples", "Makefile", "pyproject.toml", "constraints.txt"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        run, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=240, check=False
    )
    assert proc.returncode == 0, f"README line {example.line}: {run}\n{proc.stderr[-2000:]}"
    if stand_in is None:
        missing = shown_in(example.shown, proc.stdout)
        assert missing is None, (
            f"README line {example.line} shows {missing!r}, not in what `{example.command}` "
            f"printed:\n{proc.stdout[-3000:]}"
        )


def test_shown_in_finds_order_and_tolerance() -> None:
    printed = "a 1.000\nb 2,000\nc x\n"
    assert shown_in(["a 1.001", "...", "c x"], printed) is None
    assert shown_in(["c x", "a 1.000"], printed) == "a 1.000"  # order matters
    assert shown_in(["b 2,100"], printed) == "b 2,100"  # 5% off is a changed result
    assert shown_in(["a 1.000 extra"], printed) == "a 1.000 extra"
