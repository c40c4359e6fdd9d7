from __future__ import annotations

from pathlib import Path

import pytest

# the tiny fp32 Markov runs of tests/train: one definition of the corpus, the shape and the
# fixtures that make them
from tests.train.conftest import CORPUS, TINY, cache_dir, make_cfg

from scalelab.config import load_run_config

__all__ = ["CORPUS", "TINY", "cache_dir", "make_cfg"]


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
