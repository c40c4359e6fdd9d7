from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.config import DataConfig
from scalelab.data import TokenData, load_tokens

# Short documents of varied text: code, prose, unicode, so BPE has pairs to merge.
DOCS = [
    f"def f{i}(x):\n    return x * {i} + {i * i}  # note {i}\n"
    + ("naïve café " * (i % 3))
    + f"\nclass C{i}:\n    pass\n"
    for i in range(40)
]


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test writes into the user's ~/.cache."""
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path_factory.mktemp("default-cache")))


@pytest.fixture
def docs() -> list[str]:
    return list(DOCS)


@pytest.fixture
def text_dir(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for i, doc in enumerate(DOCS):
        (d / f"doc{i:02d}.txt").write_text(doc)
    return d


@pytest.fixture(scope="session")
def stdlib_bpe(tmp_path_factory: pytest.TempPathFactory) -> TokenData:
    """The real python-stdlib corpus, capped at 1 MB, BPE at 512: tokenized once per session."""
    cache = tmp_path_factory.mktemp("stdlib-cache")
    data = DataConfig(corpus="python-stdlib:max_bytes=1000000", cache_dir=str(cache))
    return load_tokens(data, 512)
