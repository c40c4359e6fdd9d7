"""Task results in the run directory (``RUN/tasks.json``) and in the store (table ``tasks``).

One row per (run, task, method): ``method`` is ``"zero-shot"`` for a scored pretrained run,
or the fine-tuning method (``full``, ``head``, ``lora``) with ``finetune_run_id`` naming the
fine-tuned run's own directory. Like points, the table is a cache of the run directories:
:func:`rebuild_task_results` refills it from every ``tasks.json`` under a runs directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scalelab.errors import StoreError
from scalelab.results.store import Store

TASKS_FILE = "tasks.json"

TASK_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "task": "TEXT NOT NULL",
    "method": "TEXT NOT NULL",
    "kind": "TEXT",
    "metric": "TEXT",
    "n": "INTEGER",
    "correct": "INTEGER",
    "accuracy": "REAL",
    "lo": "REAL",
    "hi": "REAL",
    "chance": "REAL",
    "seed": "INTEGER",
    "step": "INTEGER",
    "finetune_run_id": "TEXT",
    "seconds": "REAL",
    "extra_json": "TEXT",
    "updated_at": "REAL",
}


INTRINSIC_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "task": "TEXT NOT NULL",
    "projection": "TEXT NOT NULL",
    "said": "INTEGER NOT NULL",
    "initial": "INTEGER NOT NULL",  # 1: from the run's initial weights (no pretraining)
    "d90": "INTEGER",
    "D": "INTEGER",
    "full_performance": "REAL",
    "target": "REAL",
    "step": "INTEGER",
    "seconds": "REAL",
    "trials_json": "TEXT",
    "note": "TEXT",
    "updated_at": "REAL",
}


def _ensure(store: Store) -> None:
    cols = ", ".join(f'"{k}" {v}' for k, v in TASK_COLUMNS.items())
    with store.transaction() as conn:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS tasks ({cols}, PRIMARY KEY (run_id, task, method))"
        )
        icols = ", ".join(f'"{k}" {v}' for k, v in INTRINSIC_COLUMNS.items())
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS intrinsic ({icols}, "
            "PRIMARY KEY (run_id, task, projection, said, initial))"
        )


def put_task_results(db: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert or replace result rows (keys: :data:`TASK_COLUMNS`; unknown keys go to
    ``extra_json``)."""
    with Store(db) as store:
        _ensure(store)
        with store.transaction() as conn:
            for row in rows:
                values = {k: row.get(k) for k in TASK_COLUMNS if k in row}
                extra = {k: v for k, v in row.items() if k not in TASK_COLUMNS}
                if extra:
                    values["extra_json"] = json.dumps(extra, sort_keys=True, default=str)
                values["updated_at"] = time.time()
                names = list(values)
                conn.execute(
                    f"INSERT OR REPLACE INTO tasks ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' for _ in names)})",
                    [values[n] for n in names],
                )


def load_task_results(db: str | Path) -> Any:
    """Every task result in the store as a DataFrame (columns :data:`TASK_COLUMNS`), empty
    when no run was evaluated yet."""
    import pandas as pd

    with Store(db, create=False) as store:
        _ensure(store)
        rows = store.query("SELECT * FROM tasks ORDER BY run_id, task, method")
    return pd.DataFrame([dict(r) for r in rows], columns=list(TASK_COLUMNS))


def put_intrinsic(db: str | Path, row: Mapping[str, Any]) -> None:
    """Insert or replace one d90 result (keys: :data:`INTRINSIC_COLUMNS`)."""
    with Store(db) as store:
        _ensure(store)
        values = {k: row.get(k) for k in INTRINSIC_COLUMNS}
        values["updated_at"] = time.time()
        with store.transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO intrinsic ({', '.join(values)}) "
                f"VALUES ({', '.join('?' for _ in values)})",
                list(values.values()),
            )


def load_intrinsic(db: str | Path) -> Any:
    """Every d90 result in the store as a DataFrame (columns :data:`INTRINSIC_COLUMNS`)."""
    import pandas as pd

    with Store(db, create=False) as store:
        _ensure(store)
        rows = store.query("SELECT * FROM intrinsic ORDER BY run_id, task")
    return pd.DataFrame([dict(r) for r in rows], columns=list(INTRINSIC_COLUMNS))


def read_run_results(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``RUN/tasks.json`` (``{}`` if none), its shape checked: an object of result rows."""
    from scalelab import rundir

    path = Path(run_dir) / TASKS_FILE
    current = rundir.read_json(path) if path.exists() else {}
    if not isinstance(current, dict) or not all(isinstance(v, dict) for v in current.values()):
        raise StoreError(
            f"{path} is not an object of task results (damaged or edited): move it aside and "
            "score the run again"
        )
    return current


def write_run_results(run_dir: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Merge result rows into ``RUN/tasks.json`` (atomic), keyed ``task/method``."""
    from scalelab import rundir

    path = run_dir / TASKS_FILE
    current = read_run_results(run_dir)
    for row in rows:
        current[f"{row['task']}/{row['method']}"] = dict(row)
    rundir.write_json(path, current)


def rebuild_task_results(db: str | Path, runs_dir: str | Path) -> int:
    """Refill the ``tasks`` table from every ``RUNS_DIR/*/tasks.json``; returns rows written."""

    rows = []
    for path in sorted(Path(runs_dir).glob(f"*/{TASKS_FILE}")):
        rows.extend(read_run_results(path.parent).values())
    put_task_results(db, rows)
    return len(rows)
