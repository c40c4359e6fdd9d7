import pytest


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test writes into the user's ~/.cache (spawned workers inherit the variable)."""
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path_factory.mktemp("study-cache")))
