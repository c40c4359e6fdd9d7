"""scalelab: how big is a model, what happens when you scale it, and how a small one can match a big one.

The public API is imported lazily, so ``import scalelab`` (and the CLI) stays quick
for commands that never touch torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it; each area adds its entry points here
_API: dict[str, str] = {
    "ScalelabError": "scalelab.errors",
    "ModelConfig": "scalelab.config",
    "DataConfig": "scalelab.config",
    "TrainConfig": "scalelab.config",
    "RunConfig": "scalelab.config",
    "load_run_config": "scalelab.config",
    "build_model": "scalelab.models",
    # architectures
    "ARCHS": "scalelab.models",
    "archs_table": "scalelab.models",
    "example_config": "scalelab.models",
    # how big is it
    "count": "scalelab.accounting",
    "size_for": "scalelab.accounting",
    "parse_size": "scalelab.accounting",
    "Count": "scalelab.accounting",
    "list_presets": "scalelab.presets",
    "get_preset": "scalelab.presets",
    "presets_table": "scalelab.presets",
    # data: corpora, tokenizers, token cache, loss metrics
    "load_tokens": "scalelab.data",
    "TokenData": "scalelab.data",
    "open_corpus": "scalelab.data",
    "MarkovSource": "scalelab.data",
    "bits_per_byte": "scalelab.data",
    "perplexity": "scalelab.data",
    # train one model: the loop, run summaries, export
    "train": "scalelab.train",
    "RunSummary": "scalelab.train",
    "read_metrics": "scalelab.train",
    "export": "scalelab.train.export",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'scalelab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = sorted(_API)
