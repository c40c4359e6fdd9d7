"""The intrinsic dimension a study measures on each finished run (``study.intrinsic``), as a
plug-in (:class:`IntrinsicPlugin`, registered by :mod:`scalelab.builtin`), skipping what the
run directory already holds, so a re-run sweep adds only what is missing.

    [study]
    intrinsic = { task = "syntax", dims = [10, 30, 100, 300, 1000], projection = "fastfood",
                  steps = 150, initial = true }

``initial = true`` measures d90 from the run's weights before pretraining as well (the
"no pretraining" point of d90 against pretraining steps). Torch-free: the search is imported
when a run is measured.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError, ScalelabError, did_you_mean
from scalelab.intrinsic.options import PROJECTIONS
from scalelab.plugin import Plugin

if TYPE_CHECKING:
    from scalelab.config import RunConfig

INTRINSIC_KEYS: dict[str, type | tuple[type, ...]] = {
    "task": str,
    "dims": list,
    "projection": str,
    "said": bool,
    "initial": bool,
    "steps": int,
    "lr": (int, float),
    "full_lr": (int, float),
    "full_steps": int,
    "batch_size": int,
    "resolution": (int, float),
    "seed": int,
}


def check_intrinsic_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a ``study.intrinsic`` table (torch-free: a study is checked before it runs)."""
    from scalelab.tasks.registry import get_task

    for key, value in values.items():
        if key not in INTRINSIC_KEYS:
            raise ConfigError(
                f"unknown key study.intrinsic.{key}{did_you_mean(key, INTRINSIC_KEYS)}; "
                f"keys: {', '.join(INTRINSIC_KEYS)}"
            )
        if not isinstance(value, INTRINSIC_KEYS[key]) or (
            isinstance(value, bool) and INTRINSIC_KEYS[key] is not bool
        ):
            raise ConfigError(f"study.intrinsic.{key} has the wrong type: {value!r}")
    if "task" not in values:
        raise ConfigError('study.intrinsic needs a task, e.g. task = "syntax"')
    if values["task"] != "lm":  # "lm": pretraining from scratch, the run's own objective
        task = get_task(values["task"])
        if task.kind != "fine-tune":
            raise ConfigError(
                f"study.intrinsic.task {task.name!r} must be a fine-tune task (or lm)"
            )
    dims = values.get("dims", [10, 30, 100, 300, 1000])
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ConfigError(f"study.intrinsic.dims must be positive integers, got {dims!r}")
    projection = values.get("projection", "fastfood")
    if projection not in PROJECTIONS:
        raise ConfigError(
            f"study.intrinsic.projection {projection!r} is not "
            f"{', '.join(PROJECTIONS[:-1])} or {PROJECTIONS[-1]}"
        )
    return dict(values)


def measure_intrinsic(
    run_dir: str | Path, db: str | Path | None, intrinsic: Mapping[str, Any]
) -> None:
    """Measure d90 of a finished run with the ``study.intrinsic`` settings (what is missing
    only; a run it cannot be measured on is a warning, not a failed run)."""
    from scalelab import rundir
    from scalelab.intrinsic.runs import record_intrinsic, run_intrinsic

    run_dir = Path(run_dir)
    settings = {k: v for k, v in intrinsic.items() if k not in ("task", "initial")}
    try:
        for initial in (False, True) if intrinsic.get("initial") else (False,):
            name = (
                f"{intrinsic['task']}-{settings.get('projection', 'fastfood')}"
                f"{'-said' if settings.get('said') else ''}{'-initial' if initial else ''}"
            )
            path = run_dir / "intrinsic" / f"{name}.json"
            saved = rundir.read_json(path) if path.exists() else None
            asked = {k: v for k, v in settings.items() if k not in ("projection", "said")}
            if saved is not None and all(
                saved.get("settings", {}).get(k) == v for k, v in asked.items()
            ):
                if db is not None:  # measured already, with these settings
                    record_intrinsic(db, saved)
            else:
                run_intrinsic(run_dir, intrinsic["task"], initial=initial, db=db, **settings)
    except ScalelabError as e:
        warnings.warn(f"{run_dir.name}: downstream measurement skipped: {e}", stacklevel=2)


class IntrinsicPlugin(Plugin):
    """``study.intrinsic``: d90 of every finished run of a sweep."""

    name = "intrinsic"
    study_keys = ("intrinsic",)

    def parse_study(self, key: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ConfigError(
                'study.intrinsic is a table, e.g. {task = "syntax", dims = [10, 100]}'
            )
        return check_intrinsic_settings(value) if value else {}

    def after_run(
        self,
        run_dir: Path,
        cfg: RunConfig | None,
        summary: Mapping[str, Any] | None,
        *,
        settings: Mapping[str, Any],
        db: str | Path | None = None,
    ) -> None:
        measure_intrinsic(run_dir, db, settings["intrinsic"])
