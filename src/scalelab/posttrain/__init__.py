"""Post-training: SFT, reward models, DPO, RL (GRPO) and best-of-n on verifiable tasks.

Every stage is a run directory derived from its parent (:mod:`.stage`), resumable, and a
point of kind ``posttrain`` in the store (:mod:`.points`). ``posttrain(run, method, task)``
runs one stage (``scalelab posttrain``), ``best_of_n(run, reward, task, ns)`` a best-of-n
sweep (``scalelab bon``). The tasks and their graders are :mod:`.tasks` (importing this
package registers them beside the other downstream tasks).
"""

from __future__ import annotations

from scalelab._lazy import lazy_api
from scalelab.posttrain.config import PosttrainConfig, posttrain_config
from scalelab.posttrain.tasks import VERIFIABLE, get_verifiable, prompts, write_corpus

_LAZY = {
    "posttrain": "scalelab.posttrain.api",
    "best_of_n": "scalelab.posttrain.api",
    "load_posttrain": "scalelab.posttrain.points",
}

__getattr__, __dir__ = lazy_api(__name__, _LAZY, globals())

__all__ = [
    "VERIFIABLE",
    "PosttrainConfig",
    "get_verifiable",
    "posttrain_config",
    "prompts",
    "write_corpus",
    *_LAZY,
]
