from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scalelab.config import RunConfig, load_run_config

# A first-order Markov source over 16 symbols (as tests/train): learnt by tiny models in seconds.
CORPUS = "markov:order=1,vocab=16,seed=0,tokens=40000"
TINY = (
    "model.vocab_size=32",
    "model.n_layer=2",
    "model.d_model=32",
    "model.n_head=2",
    "model.context=32",
    "train.batch_size=8",
    "train.lr=1e-2",
    "train.eval_every=10",
    "train.eval_batches=2",
    "train.checkpoint_every=10",
    "train.precision=fp32",
)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("token-cache")


@pytest.fixture
def make_cfg(cache_dir: Path) -> Callable[..., RunConfig]:
    """A tiny fp32 run on the Markov corpus; positional arguments are ``--set`` overrides."""

    def make(*overrides: str) -> RunConfig:
        base = [f"data.corpus={CORPUS}", f"data.cache_dir={cache_dir}", *TINY]
        if not any(o.startswith(("train.tokens", "train.epochs")) for o in overrides):
            base.append("train.tokens=7680")  # 30 steps of 8 x 32 tokens
        return load_run_config(None, [*base, *overrides])

    return make


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A finished 4-layer teacher (about 10 s on one core)."""
    from scalelab.train import train

    out = tmp_path_factory.mktemp("teacher-runs")
    cfg = load_run_config(
        None,
        [
            f"data.corpus={CORPUS}",
            f"data.cache_dir={cache_dir}",
            *TINY,
            "model.n_layer=4",
            "model.d_model=64",
            "train.tokens=40960",
            "train.eval_every=40",
            "train.checkpoint_every=1000",
        ],
    )
    s = train(cfg, out, progress=False)
    assert s.status == "finished"
    return out / cfg.run_id()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A finished 2-layer, d_model 16 run (6,864 parameters; 20 steps, about a second)."""
    from scalelab.train import train

    out = tmp_path_factory.mktemp("tiny-runs")
    cfg = load_run_config(
        None,
        [
            f"data.corpus={CORPUS}",
            f"data.cache_dir={cache_dir}",
            *TINY,
            "model.d_model=16",
            "model.context=8",
            "train.tokens=1280",
        ],
    )
    assert train(cfg, out, progress=False).status == "finished"
    return out / cfg.run_id()
