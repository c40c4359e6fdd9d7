"""The results store: one SQLite file, one row per point, plus the curves of every run.

Tables
------
``points``  one row per (study, run_id): shape, parameter counts (total, non-embedding,
            active), tokens ``D``, compute (``six_nd`` and the exact ``C_exact``), losses,
            throughput, seed, status and the resolved config. ``kind`` (``"run"`` for a
            trained run) and the nullable ``technique`` / ``parent_run_id`` / ``extra_json``
            leave room for points that techniques add (a distilled student, a pruned model).
``curves``  (run_id, step): tokens, train loss, validation loss and bits per byte at
            every logged step, so intermediate evaluations can serve as points too.
``studies`` one row per study: its parsed spec and the runs directory.

Writes happen in ``BEGIN IMMEDIATE`` transactions on a WAL-mode database with a busy
timeout, so several sweep workers can record runs into one file at once. The store
is a cache of the run directories: :func:`rebuild` recreates it from them alone.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from scalelab.errors import StoreError
from scalelab.results.records import SHAPE_FIELDS, RunRecord, curve_rows, point_row
from scalelab.waiting import note_if_slow

SCHEMA_VERSION = 1

# name -> SQLite type; new columns appended here are added to older stores on open
POINT_COLUMNS: dict[str, str] = {
    "study": "TEXT NOT NULL DEFAULT ''",
    "run_id": "TEXT NOT NULL",
    "kind": "TEXT NOT NULL DEFAULT 'run'",
    "technique": "TEXT",
    "parent_run_id": "TEXT",
    "arch": "TEXT",
    **{f: "INTEGER" for f in SHAPE_FIELDS},
    "corpus": "TEXT",
    "tokenizer": "TEXT",
    "size": "TEXT",
    "target_params": "REAL",
    "budget": "TEXT",
    "N_total": "INTEGER",
    "N_non_embedding": "INTEGER",
    "N_active": "INTEGER",
    "D": "INTEGER",
    "six_nd": "REAL",
    "C_exact": "REAL",
    "train_flops_per_token": "REAL",
    "loss": "REAL",
    "val_bpb": "REAL",
    "train_loss": "REAL",
    "best_val_loss": "REAL",
    "unique_tokens": "INTEGER",
    "epochs": "REAL",
    "entropy_rate": "REAL",
    "wall_seconds": "REAL",
    "tokens_per_second": "REAL",
    "precision": "TEXT",  # what the run used (train.precision = "auto" resolves per machine)
    "seed": "INTEGER",
    "step": "INTEGER",
    "status": "TEXT NOT NULL",
    "reason": "TEXT",
    "config_json": "TEXT",
    "axes_json": "TEXT",
    "extra_json": "TEXT",
    "run_dir": "TEXT",
    "updated_at": "REAL",
}
CURVE_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "step": "INTEGER NOT NULL",
    "tokens": "INTEGER",
    "train_loss": "REAL",
    "val_loss": "REAL",
    "val_bpb": "REAL",
    "lr": "REAL",
    "elapsed": "REAL",
}


def json_column(
    text: Any, column: str, row: str, where: str | Path = "the store"
) -> dict[str, Any]:
    """A point's JSON column (``extra_json``, ``axes_json``, ``config_json``) as a dict; a
    damaged one is a StoreError that names the row, not a JSONDecodeError."""
    if text is None or (isinstance(text, float) and text != text):  # SQL NULL (pandas: NaN)
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as e:
        raise StoreError(
            f"{where}: the point {row} has a damaged {column} ({e}): rebuild the store from "
            "the run directories (scalelab points --from-runs RUNS --db NEW.db)"
        ) from None
    if not isinstance(value, dict):
        raise StoreError(
            f"{where}: the point {row} has a {column} that is not a JSON object: rebuild the "
            "store from the run directories (scalelab points --from-runs RUNS --db NEW.db)"
        )
    return value


def _ddl() -> list[str]:
    cols = ", ".join(f'"{k}" {v}' for k, v in POINT_COLUMNS.items())
    curve_cols = ", ".join(f'"{k}" {v}' for k, v in CURVE_COLUMNS.items())
    return [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
        f"CREATE TABLE IF NOT EXISTS points ({cols}, PRIMARY KEY (study, run_id))",
        f"CREATE TABLE IF NOT EXISTS curves ({curve_cols}, PRIMARY KEY (run_id, step))",
        "CREATE TABLE IF NOT EXISTS studies (name TEXT PRIMARY KEY, spec_json TEXT, "
        "runs_dir TEXT, updated_at REAL)",
        "CREATE INDEX IF NOT EXISTS points_status ON points (study, status)",
    ]


class Store:
    """An open results store. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path, *, create: bool = True, timeout: float = 60.0):
        self.path = Path(path)
        self.timeout = timeout
        if not create and not self.path.is_file():
            raise StoreError(
                f"no results store at {str(self.path)!r}: run `scalelab sweep STUDY.toml --db "
                f"{self.path}` first, or rebuild it with `scalelab points --from-runs RUNS_DIR`"
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._open(timeout)
                return
            except sqlite3.OperationalError as e:
                if (conn := getattr(self, "conn", None)) is not None:
                    conn.close()  # closing one closed before is a no-op
                if "locked" not in str(e):
                    raise StoreError(
                        f"{self.path}: not a usable SQLite results store ({e})"
                    ) from None
                if time.monotonic() >= deadline:
                    raise self._locked() from None
                # SQLite answers "locked" at once, without waiting on its busy handler, when
                # two processes switch a new file to WAL together: open again until the deadline
                time.sleep(0.05)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: not a usable SQLite results store ({e})") from None

    def _open(self, timeout: float) -> None:
        # autocommit mode: every write below opens its own explicit transaction
        self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        with note_if_slow(f"{self._wait} (up to {timeout:g} s)"):
            self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            for stmt in _ddl():
                self.conn.execute(stmt)
            have = {r["name"] for r in self.conn.execute("PRAGMA table_info(points)")}
            for name, sql_type in POINT_COLUMNS.items():
                if name not in have:
                    # ADD COLUMN cannot carry NOT NULL without a default; new columns are nullable
                    self.conn.execute(
                        f'ALTER TABLE points ADD COLUMN "{name}" {sql_type.split(" NOT NULL")[0]}'
                    )
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row["value"]) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer scalelab (schema {row['value']}); "
                    "upgrade scalelab or rebuild the store from the run directories"
                )

    @property
    def _wait(self) -> str:
        return f"waiting for the results store {self.path}: another process is writing to it"

    def _locked(self) -> StoreError:
        return StoreError(
            f"{self._wait}, and it stayed locked for {self.timeout:g} s: let that process "
            "finish (a sweep, a rebuild) and run this again"
        )

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (``BEGIN IMMEDIATE``) so concurrent writers
        queue on the busy timeout instead of failing half-way; a wait says what it is for."""
        try:
            with note_if_slow(f"{self._wait} (up to {self.timeout:g} s)"):
                self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e):
                raise
            raise self._locked() from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- writes --------------------------------------------------------------------------

    def _upsert_point(self, row: Mapping[str, Any]) -> None:
        unknown = set(row) - set(POINT_COLUMNS)
        if unknown:
            raise StoreError(
                f"unknown point columns {sorted(unknown)}; known: {list(POINT_COLUMNS)}"
            )
        values = {**row, "updated_at": time.time()}
        names = list(values)
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        updates = ", ".join(
            f'"{n}" = excluded."{n}"' for n in names if n not in ("study", "run_id")
        )
        self.conn.execute(
            f"INSERT INTO points ({cols}) VALUES ({marks}) "
            f"ON CONFLICT (study, run_id) DO UPDATE SET {updates}",
            [values[n] for n in names],
        )

    def put_point(self, row: Mapping[str, Any]) -> None:
        """Insert or replace one point (a technique's point, say: set ``kind``)."""
        for key in ("run_id", "status"):
            if not row.get(key):
                raise StoreError(f"a point needs {key!r}")
        with self.transaction():
            self._upsert_point(row)

    def _put_curves(self, run_id: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.conn.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
        if rows:
            names = list(CURVE_COLUMNS)
            self.conn.executemany(
                f"INSERT INTO curves ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
                [[r.get(n) for n in names] for r in rows],
            )

    def record_run(
        self,
        rec: RunRecord,
        *,
        study: str = "",
        axes: Mapping[str, Any] | None = None,
        counts: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a run's point and its curves in one transaction; returns the point row.
        ``fields`` set point columns beyond the run's own (``kind``, ``extra_json``, ...)."""
        row = {**point_row(rec, study=study, axes=axes, counts=counts), **(fields or {})}
        curves = curve_rows(rec)
        with self.transaction():
            self._upsert_point(row)
            self._put_curves(rec.run_id, curves)
        return row

    def set_status(self, study: str, run_id: str, status: str, reason: str | None = None) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE points SET status = ?, reason = ?, updated_at = ? "
                "WHERE study = ? AND run_id = ?",
                (status, reason, time.time(), study, run_id),
            )

    def put_study(self, name: str, spec: Mapping[str, Any], runs_dir: str | Path) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO studies (name, spec_json, runs_dir, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET spec_json = excluded.spec_json, "
                "runs_dir = excluded.runs_dir, updated_at = excluded.updated_at",
                (name, json.dumps(spec, sort_keys=True, default=str), str(runs_dir), time.time()),
            )

    def put_pending(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Record planned runs as ``pending``, leaving rows that already exist alone."""
        with self.transaction():
            for row in rows:
                exists = self.conn.execute(
                    "SELECT 1 FROM points WHERE study = ? AND run_id = ?",
                    (row.get("study", ""), row["run_id"]),
                ).fetchone()
                if not exists:
                    self._upsert_point({**row, "status": "pending"})

    # -- reads ---------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params))

    def statuses(self, study: str) -> dict[str, str]:
        return {
            r["run_id"]: r["status"]
            for r in self.conn.execute(
                "SELECT run_id, status FROM points WHERE study = ?", (study,)
            )
        }


__all__ = ["CURVE_COLUMNS", "POINT_COLUMNS", "SCHEMA_VERSION", "Store"]
