"""Optuna's study state inside the results store: one table of journal entries.

Why not Optuna's ``RDBStorage`` on the same SQLite file: its schema has a table named
``studies``, which the store already has (one row per scalelab study), so the two cannot
share a file. Optuna's ``JournalStorage`` keeps the same state as an append-only log of
operations (create study, ask, set params, report, tell) and replays it on load; it takes
any backend with ``read_logs``/``append_logs``. This backend keeps that log in the
store's own table ``tune_journal``, so a search lives in one file beside its points,
every append is one SQLite transaction (a ``kill -9`` loses at most the operation in
flight, never corrupts the log), and worker processes share it through SQLite's locks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scalelab.results.store import Store

TABLE = "tune_journal"


def journal_backend(db: str | Path) -> Any:
    """An Optuna journal backend on the store ``db`` (created if missing)."""
    from optuna.storages.journal import BaseJournalBackend

    class SQLiteJournalBackend(BaseJournalBackend):
        def __init__(self, path: str | Path) -> None:
            self.path = Path(path)
            with Store(self.path) as store, store.transaction() as conn:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} "
                    "(seq INTEGER PRIMARY KEY, log TEXT NOT NULL)"
                )
            self._conn: sqlite3.Connection | None = None

        def _connect(self) -> sqlite3.Connection:
            if self._conn is None:
                self._conn = Store(self.path).conn
            return self._conn

        def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
            rows = self._connect().execute(
                f"SELECT log FROM {TABLE} WHERE seq >= ? ORDER BY seq", (log_number_from,)
            )
            return [json.loads(r[0]) for r in rows.fetchall()]

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")  # log numbers stay contiguous across processes
            try:
                (start,) = conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()
                conn.executemany(
                    f"INSERT INTO {TABLE} (seq, log) VALUES (?, ?)",
                    [(start + i, json.dumps(log)) for i, log in enumerate(logs)],
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes
            return {"path": self.path, "_conn": None}

    return SQLiteJournalBackend(db)


def optuna_storage(db: str | Path) -> Any:
    """``optuna.storages.JournalStorage`` kept in the results store ``db``."""
    from optuna.storages import JournalStorage

    return JournalStorage(journal_backend(db))


__all__ = ["TABLE", "journal_backend", "optuna_storage"]
