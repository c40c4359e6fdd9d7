"""A tiny trained run on a small Python corpus (30 standard-library files, read as bytes)."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

FILES = [
    "abc.py",
    "bisect.py",
    "bdb.py",
    "calendar.py",
    "cmd.py",
    "code.py",
    "codeop.py",
    "colorsys.py",
    "copy.py",
    "copyreg.py",
    "dis.py",
    "fnmatch.py",
    "functools.py",
    "genericpath.py",
    "getopt.py",
    "glob.py",
    "heapq.py",
    "hmac.py",
    "keyword.py",
    "linecache.py",
    "netrc.py",
    "opcode.py",
    "operator.py",
    "queue.py",
    "reprlib.py",
    "sched.py",
    "shlex.py",
    "stat.py",
    "string.py",
    "textwrap.py",
]


def tiny_config(corpus: str, cache: Path, **train: object) -> dict:
    return {
        "model": {"n_layer": 1, "d_model": 32, "n_head": 2, "vocab_size": 258, "context": 64},
        "data": {
            "corpus": corpus,
            "tokenizer": "bytes",
            "val_fraction": 0.3,
            "cache_dir": str(cache),
        },
        "train": {
            "tokens": 24576,
            "batch_size": 8,
            "eval_every": 20,
            "precision": "fp32",
            **train,
        },
    }


@pytest.fixture(scope="session")
def code_corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = tmp_path_factory.mktemp("code")
    for name in FILES:
        shutil.copy(root / name, out / name)
    return f"text:{out}"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, code_corpus: str) -> Path:
    """A trained tiny transformer's run directory."""
    from scalelab.config import run_config_from_dict
    from scalelab.train import train

    base = tmp_path_factory.mktemp("runs")
    cfg = run_config_from_dict(tiny_config(code_corpus, base / "cache"))
    summary = train(cfg, base / "runs", progress=False)
    return Path(summary.path)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny models on a shared 2-core machine: one thread is many times faster (ThreadPolicy)."""
    monkeypatch.setenv("SCALELAB_THREADS", "1")
