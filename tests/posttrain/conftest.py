"""A tiny model pretrained on a verifiable task's demonstrations, shared by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models: one thread is many times faster than two on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pretrain(root: Path, task: str, tokens: int = 60_000, **model: int) -> Path:
    """A finished run: a tiny transformer pretrained on ``task``'s training demonstrations."""
    from scalelab.config import run_config_from_dict
    from scalelab.posttrain import write_corpus
    from scalelab.train import train

    corpus = write_corpus(task, root / f"{task}.jsonl", 3000)
    cfg = run_config_from_dict(
        {
            "model": {
                "n_layer": 1,
                "d_model": 32,
                "n_head": 2,
                "vocab_size": 258,
                "context": 32,
                **model,
            },
            "data": {
                "corpus": f"jsonl:{corpus}:text",
                "tokenizer": "bytes",
                "cache_dir": str(root / "cache"),
            },
            "train": {
                "batch_size": 16,
                "tokens": tokens,
                "lr": 3e-3,
                "eval_every": 1000,
                "precision": "fp32",
                "device": "cpu",
            },
        }
    )
    summary = train(cfg, root / "runs", progress=False)
    return root / "runs" / summary.run_id


@pytest.fixture(scope="session")
def sort_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pretrain(tmp_path_factory.mktemp("pt"), "sort")
