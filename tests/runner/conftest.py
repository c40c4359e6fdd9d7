import pytest


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test writes into the user's ~/.cache (spawned workers inherit the variable)."""
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path_factory.mktemp("study-cache")))


@pytest.fixture
def log(tmp_path, monkeypatch):
    """``$FAKE_TRAIN_LOG`` for this test: the fake trainer logs each call there (spawned
    workers inherit it); read it with ``study_fakes.train_calls`` or ``trained_ids``."""
    path = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(path))
    return path
