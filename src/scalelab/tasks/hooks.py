"""The downstream tasks a study scores on each finished run (``study.tasks``), as a
plug-in (:class:`TasksPlugin`, registered by :mod:`scalelab.builtin`), skipping what the run
directory already holds, so a re-run sweep adds only what is missing.

    [study]
    tasks = ["code-next-line", "code-brackets", "code-indent", "cloze"]

The intrinsic dimension measured the same way (``study.intrinsic``) is its own plug-in,
:mod:`scalelab.intrinsic.plugin`. Torch-free: the scoring is imported when a run is scored.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError, ScalelabError
from scalelab.plugin import Plugin

if TYPE_CHECKING:
    from scalelab.config import RunConfig


def check_tasks(value: Any) -> tuple[str, ...]:
    """Validate ``study.tasks`` (a list of task names; torch-free)."""
    from scalelab.tasks.registry import get_task

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError('study.tasks is a list of task names, e.g. ["cloze", "code-brackets"]')
    return tuple(get_task(n).name for n in names)


def after_run(run_dir: str | Path, db: str | Path | None, tasks: Sequence[str]) -> None:
    """Score ``tasks`` on a finished run (what is missing only). A task that cannot be
    scored on this run is a warning, not a failed run. With ``db=None`` the results go to
    the run directory only (a remote worker's half: the driver records them in the store
    afterwards)."""
    from scalelab.tasks.registry import get_task
    from scalelab.tasks.results import put_task_results, read_run_results

    run_dir = Path(run_dir)
    done = read_run_results(run_dir)
    try:
        zero = [
            t for t in tasks if get_task(t).kind == "zero-shot" and f"{t}/zero-shot" not in done
        ]
        if zero:
            from scalelab.tasks.evaluation import evaluate

            evaluate(run_dir, zero, db=db)
        else:  # already scored: make sure the store has the rows (a store rebuilt afresh)
            rows = [v for k, v in done.items() if k.split("/")[0] in tasks]
            if rows and db is not None:
                put_task_results(db, rows)
        for t in tasks:
            if get_task(t).kind == "fine-tune" and f"{t}/full" not in done:
                from scalelab.tasks.finetune import finetune

                finetune(run_dir, t, db=db)
    except ScalelabError as e:
        warnings.warn(f"{run_dir.name}: downstream measurement skipped: {e}", stacklevel=2)


class TasksPlugin(Plugin):
    """``study.tasks``: downstream tasks scored on every finished run of a sweep, and
    the fine-tuned points they write."""

    name = "tasks"
    study_keys = ("tasks",)
    point_kinds = ("finetune",)
    report = "scalelab.reporting.downstream:downstream"
    cli = "scalelab.cli.tasks"

    def parse_study(self, key: str, value: Any) -> tuple[str, ...]:
        return check_tasks(value)

    def comparison(
        self,
        cmp: Any,
        db: str | Path,
        *,
        study: str | None,
        bootstrap: int,
        seed: int,
        archs: Any,
    ) -> None:
        from scalelab.tasks.analysis import add_downstream

        add_downstream(cmp, db, study=study, bootstrap=bootstrap, seed=seed, archs=archs)

    def after_run(
        self,
        run_dir: Path,
        cfg: RunConfig | None,
        summary: Mapping[str, Any] | None,
        *,
        settings: Mapping[str, Any],
        db: str | Path | None = None,
    ) -> None:
        after_run(run_dir, db, settings["tasks"])
