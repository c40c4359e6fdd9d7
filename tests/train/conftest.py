from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scalelab.config import RunConfig, load_run_config

# A first-order Markov source over 16 symbols: its entropy rate is known exactly, it is
# generated in milliseconds, and a 2-layer model of a few thousand parameters learns it.
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
    # losses are compared to 1e-4 and below: pinned to fp32, since "auto" picks bf16 on CPUs
    # with bf16 matrix units (AVX512-BF16, AMX); the bf16 path has tests of its own
    "train.precision=fp32",
)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("token-cache")


@pytest.fixture
def make_cfg(cache_dir: Path) -> Callable[..., RunConfig]:
    """A tiny run on the Markov corpus; positional arguments are extra ``--set`` overrides."""

    def make(*overrides: str) -> RunConfig:
        base = [f"data.corpus={CORPUS}", f"data.cache_dir={cache_dir}", *TINY]
        if not any(o.startswith(("train.tokens", "train.epochs")) for o in overrides):
            base.append("train.tokens=7680")  # 30 steps of 8 x 32 tokens
        return load_run_config(None, [*base, *overrides])

    return make
