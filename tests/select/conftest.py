"""Helpers for the selection tests: small JSONL corpora with known structure, tiny runs."""

from __future__ import annotations

import json
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
