"""Helpers for the selection tests: small JSONL corpora with known structure, tiny runs."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest

from scalelab.config import DataConfig, ModelConfig, RunConfig, TrainConfig


def write_jsonl(path: Path, docs: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return f"jsonl:{path}:text"


def random_words(rng: np.random.Generator, n: int, vocab: int = 5000) -> list[str]:
    return [f"w{i}" for i in rng.integers(0, vocab, n)]


def tiny_config(corpus: str, cache: Path, **train: object) -> RunConfig:
    return RunConfig(
        model=ModelConfig(n_layer=1, d_model=32, n_head=2, vocab_size=258, context=32),
        data=DataConfig(corpus=corpus, tokenizer="bytes", cache_dir=str(cache)),
        train=TrainConfig(
            **{
                "batch_size": 8,
                "tokens": 20480,
                "eval_every": 1000,
                "eval_batches": 2,
                "checkpoint_every": 1000,
                "precision": "fp32",
                "lr": 3e-3,
                **train,
            }
        ),
    )


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


NOISE_CHARS = string.ascii_letters + string.digits


def _markov_doc(rng: np.random.Generator, n: int) -> str:
    # order 1 over 8 letters, each with 2 likely successors: about 0.7 nats/char
    letters = "abcdefgh"
    nxt = {c: (letters[(i + 1) % 8], letters[(i + 3) % 8]) for i, c in enumerate(letters)}
    c, out = "a", []
    for _ in range(n):
        out.append(c)
        c = nxt[c][int(rng.random() < 0.3)] if rng.random() < 0.95 else letters[rng.integers(8)]
    return "".join(out)


def _noise_doc(rng: np.random.Generator, n: int) -> str:
    return "".join(NOISE_CHARS[i] for i in rng.integers(0, len(NOISE_CHARS), n))


@pytest.fixture
def mixed(tmp_path: Path, cache: Path) -> tuple[str, Path]:
    from scalelab.train import train

    rng = np.random.default_rng(0)
    docs = [_noise_doc(rng, 300) if i % 5 == 0 else _markov_doc(rng, 300) for i in range(100)]
    corpus = write_jsonl(tmp_path / "mixed.jsonl", docs)
    summary = train(tiny_config(corpus, cache, tokens=20480), tmp_path / "runs", progress=False)
    return corpus, tmp_path / "runs" / summary.run_id
