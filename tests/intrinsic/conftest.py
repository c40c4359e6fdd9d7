import pytest


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny models on a shared 2-core machine: one thread is many times faster (ThreadPolicy)."""
    monkeypatch.setenv("SCALELAB_THREADS", "1")
