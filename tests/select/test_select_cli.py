"""``scalelab select``: the CLI mirror of scalelab.select.select."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.select.conftest import random_words, write_jsonl


def test_select_writes_the_file_and_says_what_it_kept(tmp_path: Path, cli) -> None:
    rng = np.random.default_rng(0)
    docs = [" ".join(random_words(rng, 60)) for _ in range(30)]
    corpus = write_jsonl(tmp_path / "docs.jsonl", docs + docs[:5])
    env = {"SCALELAB_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "sel.json"
    r = cli("select", corpus, "--method", "dedup", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    assert "duplicates: " in r.stdout and "exact" in r.stdout
    d = json.loads(out.read_text())
    assert d["method"] == "dedup" and d["extra"]["duplicates"] >= 1
    r = cli("select", corpus, "--method", "random", "--keep", "0.5", "--seed", "2",
            "--out", str(out), "--json", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["method"] == "random" and abs(info["kept_fraction"] - 0.5) < 0.1


def test_select_errors_are_one_line(tmp_path: Path, cli) -> None:
    r = cli("select", "python-stdlib", "--method", "perplexity", "--keep", "0.5", "--out",
            str(tmp_path / "x.json"))  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--reference" in r.stderr
    assert not (tmp_path / "x.json").exists()
