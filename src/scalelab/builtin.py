"""The built-in techniques, registered as plug-ins (:mod:`scalelab.plugin`) from above the core.

``import scalelab`` runs :func:`register_builtin`, so every entry point (the CLI, the Python
API, a sweep's worker process) sees the same plug-ins, and the core (config, data, models,
train, study) imports none of them. Each plug-in lives in a light module (no torch) of its
technique; the order of :data:`BUILTIN_PLUGINS` is the order their hooks run in (and their
report sections appear in). A new built-in technique adds one line here.
"""

from __future__ import annotations

from scalelab.intrinsic.plugin import IntrinsicPlugin
from scalelab.memorization.canaries_plugin import CanaryPlugin
from scalelab.plugin import Plugin, register_plugin
from scalelab.posttrain.plugin import PosttrainPlugin
from scalelab.tasks.hooks import TasksPlugin
from scalelab.techniques.compress_plugin import CompressPlugin
from scalelab.techniques.distill_plugin import DistillPlugin
from scalelab.techniques.select_plugin import SelectPlugin
from scalelab.tune.plugin import TunePlugin

# The order is that of the hooks, of the report's sections and of the claims on a point
# (a distilled student trained on a selection is a distilled point).
BUILTIN_PLUGINS: tuple[type[Plugin], ...] = (
    CompressPlugin,
    DistillPlugin,
    SelectPlugin,
    TasksPlugin,  # before IntrinsicPlugin: a sweep scores the tasks, then measures d90
    IntrinsicPlugin,
    TunePlugin,
    CanaryPlugin,
    PosttrainPlugin,  # after TasksPlugin and IntrinsicPlugin: it trains stages of its own
)


def register_builtin() -> list[Plugin]:
    """Register every built-in plug-in (again: a re-registration replaces the entry)."""
    return [register_plugin(cls()) for cls in BUILTIN_PLUGINS]
