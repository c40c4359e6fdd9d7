"""scalelab: how big is a model, what happens when you scale it, and how a small one can match a big one.

The public API is imported lazily, so ``import scalelab`` (and the CLI) stays quick
for commands that never touch torch.
"""

from __future__ import annotations

import os

from scalelab._lazy import lazy_api

__version__ = "0.1.0"

# OpenMP threads that spin while they wait turn a CPU shared with other jobs into a trap:
# measured on a 2-core machine with one other busy process, a training step on 2 threads
# ran 6-13x slower with the default wait policy than with PASSIVE (benchmarks/omp_contention.py).
# OpenMP reads this when torch loads it, so it is set here, before scalelab imports torch;
# a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    "ARCHS": "scalelab.architectures",
    "archs_table": "scalelab.accounting.display",
    "example_config": "scalelab.config",
    # how big is it
    "count": "scalelab.accounting",
    "size_for": "scalelab.accounting",
    "parse_size": "scalelab.accounting",
    "Count": "scalelab.accounting",
    "list_presets": "scalelab.presets",
    "get_preset": "scalelab.presets",
    "presets_table": "scalelab.accounting.display",
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
    "read_metrics": "scalelab.rundir",
    "export": "scalelab.train.export",
    # laws and plans
    "Law": "scalelab.laws",
    "fit_law": "scalelab.laws",
    "plan": "scalelab.laws",
    "published_law": "scalelab.laws",
    "isoflop": "scalelab.laws",
    "envelope": "scalelab.laws",
    "parametric": "scalelab.laws",
    "pareto_frontier": "scalelab.laws",
    "loglog_slope": "scalelab.laws",
    # studies: grid, sweep, results store
    "Study": "scalelab.study",
    "SweepResult": "scalelab.study",
    "load_study": "scalelab.study",
    "sweep": "scalelab.study",
    "sweep_studies": "scalelab.study",
    "load_points": "scalelab.study",
    "load_curves": "scalelab.study",
    "export_points": "scalelab.study",
    # the report and the demo
    "report": "scalelab.reporting",
    "Section": "scalelab.reporting",
    "demo": "scalelab.apps.demo",
    "DemoDesign": "scalelab.apps.demo",
    # architectures: how their scaling compares
    "compare": "scalelab.analysis.arch_compare",
    "depth_width": "scalelab.analysis.depth_vs_width",
    "depth_width_toml": "scalelab.analysis.depth_vs_width",
    # downstream tasks, fine-tuning, intrinsic dimension
    "tasks_table": "scalelab.tasks",
    "finetune": "scalelab.tasks",
    "intrinsic_dimension": "scalelab.intrinsic",
}


__getattr__, __dir__ = lazy_api(__name__, _API, globals())

# the built-in techniques register as plug-ins here, above the core (scalelab.builtin)
from scalelab.builtin import register_builtin as _register_builtin  # noqa: E402

_register_builtin()


__all__ = sorted(_API)
