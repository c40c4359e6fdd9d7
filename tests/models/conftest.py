from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run as fast on one thread, and a second one only adds waiting: on a busy
    machine each of the many small parallel regions waits for a descheduled thread (switch's
    routing tests took 10 s instead of 0.3 s that way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
