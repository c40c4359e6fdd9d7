"""Downstream tasks: an offline registry, zero-shot scoring and fine-tuning.

``tasks_table()`` lists the tasks (``scalelab tasks``), ``evaluate(run, tasks)`` scores a
run zero-shot (``scalelab eval``), ``finetune(run, task)`` fine-tunes it
(``scalelab finetune``); results go to ``RUN/tasks.json`` and the store's ``tasks`` table
(``load_task_results(db)``). Heavy parts (torch) load on first use.
"""

from __future__ import annotations

from scalelab._lazy import lazy_api

# Bound here, not lazily: the function shares its module's name, and a lazy lookup after the
# module was imported would find the module (finetune.py imports torch only when it runs).
from scalelab.tasks.finetune import FinetuneConfig, finetune
from scalelab.tasks.registry import TASKS, Task, get_task, task_names, tasks_table

_LAZY = {
    "evaluate": "scalelab.tasks.evaluation",
    "load_task_results": "scalelab.tasks.results",
    "put_task_results": "scalelab.tasks.results",
    "rebuild_task_results": "scalelab.tasks.results",
    "wilson": "scalelab.tasks.scoring",
}

__getattr__, __dir__ = lazy_api(__name__, _LAZY, globals())


__all__ = [
    "TASKS",
    "FinetuneConfig",
    "Task",
    "finetune",
    "get_task",
    "task_names",
    "tasks_table",
    *_LAZY,
]
