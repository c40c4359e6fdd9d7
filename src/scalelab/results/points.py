"""Reading points out of the store (the contract with ``scalelab.laws``), exporting
them, and rebuilding the store from run directories.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scalelab import atomic
from scalelab.config import run_config_from_dict
from scalelab.errors import StoreError
from scalelab.results.records import (
    FINISHED,
    SHAPE_FIELDS,
    RunRecord,
    curve_rows,
    iter_run_dirs,
    point_row,
    read_run,
)
from scalelab.results.store import Store
from scalelab.study.cost import config_counts, planned_tokens
from scalelab.study.manifest import read_manifests

N_KINDS = ("non_embedding", "total", "active")
Statuses = str | Sequence[str] | None

# the column order of load_points (the contract in docs/internals.md comes first)
LEADING = [
    "run_id",
    "study",
    "arch",
    *SHAPE_FIELDS,
    "N",
    "N_total",
    "N_non_embedding",
    "N_active",
    "D",
    "C",
    "C_exact",
    "loss",
    "val_bpb",
    "train_loss",
    "unique_tokens",
    "epochs",
    "seed",
    "status",
    "wall_seconds",
    "tokens_per_second",
]
INTERNAL = ["config_json", "axes_json", "extra_json", "run_dir", "updated_at"]


def _where(study: str | None, status: Statuses, kind: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if study is not None:
        clauses.append("p.study = ?")
        params.append(study)
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        clauses.append(f"p.status IN ({', '.join('?' for _ in wanted)})")
        params += wanted
    if kind is not None:
        clauses.append("p.kind = ?")
        params.append(kind)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _read_sql(db: str | Path, sql: str, params: Sequence[Any]) -> pd.DataFrame:
    with Store(db, create=False) as store:
        try:
            return pd.read_sql_query(sql, store.conn, params=list(params))
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
            raise StoreError(f"{db}: cannot read points ({e})") from None


def load_points(
    db: str | Path,
    *,
    n: str = "non_embedding",
    study: str | None = None,
    status: Statuses = FINISHED,
    kind: str | None = None,
    curves: bool = False,
    config: bool = False,
    one_per_run: bool = False,
    extra: bool = False,
) -> pd.DataFrame:
    """The store's points as a DataFrame, one row per point.

    A run that belongs to two studies has a point in each; ``one_per_run=True`` keeps one
    row per run, so that a fit over several studies counts every run once. A ``study`` the
    store does not hold is a ``StoreError`` naming the studies it does hold.

    ``N`` is the non-embedding parameter count by default (Kaplan et al. 2020 fit their
    laws to it); ``n="total"`` or ``n="active"`` picks another. ``C = 6 N D`` uses that
    same ``N``; ``C_exact`` is the trainer's exact count of training FLOPs (the trainer's
    own ``six_nd``, with N total, stays in the store's ``six_nd`` column).

    ``status`` filters points (default: runs that finished or stopped early; ``None``
    keeps every row, pending and failed ones too). ``study`` and ``kind`` filter too.

    With ``curves=True`` every evaluation of every run after its first step is a point
    (the evaluation at step 0, before training, is not): ``D`` is the tokens seen there, ``loss`` the validation loss there, and ``step``/``final`` say
    where on the curve it lies. Under a cosine schedule an intermediate point has not
    had its learning rate annealed, so it sits above the loss of a run trained to that
    budget (Hoffmann et al. 2022, sec. 3.1 and fig. A1); prefer the final points for
    fitting, or a ``wsd`` schedule whose decay you evaluate.

    Axes of the study's grid (``study.grid``) come back as columns named by their key
    (``train.lr``), and ``size``, ``target_params`` and ``budget`` say where on the
    ladder each point lies. ``config=True`` keeps the resolved config as ``config_json``.
    ``extra=True`` adds the keys of each point's ``extra_json`` (the numbers a technique or a
    post-training stage records beside the store's columns) as columns; a key that names a
    store column is left out.
    """
    if n not in N_KINDS:
        raise StoreError(f"n = {n!r} is not one of {', '.join(N_KINDS)}")
    where, params = _where(study, status, kind)
    df = _read_sql(db, f"SELECT p.* FROM points p{where} ORDER BY p.study, p.rowid", params)
    if study is not None and df.empty:
        known = _read_sql(db, "SELECT DISTINCT study FROM points ORDER BY study", [])["study"]
        if study not in set(known):
            have = ", ".join(map(str, known)) or "none"
            raise StoreError(
                f"--study {study!r}: the store {db} has no such study (it has: {have})"
            )
    if one_per_run:
        df = df.drop_duplicates("run_id", keep="first").reset_index(drop=True)
    df["N"] = df[f"N_{n}"]
    if curves:
        curve = _read_sql(
            db,
            "SELECT c.run_id, c.step, c.tokens, c.train_loss, c.val_loss, c.val_bpb "
            f"FROM curves c JOIN points p ON p.run_id = c.run_id{where}"
            f"{' AND' if where else ' WHERE'} c.val_loss IS NOT NULL AND c.tokens > 0",
            params,
        ).drop_duplicates(["run_id", "step"])
        final_step = df.set_index(["study", "run_id"])["step"]
        df = df.drop(columns=["D", "loss", "val_bpb", "train_loss", "step"]).merge(
            curve.rename(columns={"tokens": "D", "val_loss": "loss"}), on="run_id"
        )
        df["final"] = [
            final_step.get((s, r)) == st
            for s, r, st in zip(df["study"], df["run_id"], df["step"], strict=True)
        ]
        df = df.sort_values(["study", "run_id", "step"], kind="stable").reset_index(drop=True)
    df["C"] = 6.0 * df["N"] * df["D"]
    if curves:
        df["C_exact"] = df["train_flops_per_token"] * df["D"]
    axes = _axis_columns(df, db) if len(df) else pd.DataFrame(index=df.index)
    for col in axes.columns:
        if col not in df.columns:
            df[col] = axes[col]
    if extra and len(df):
        keys = pd.DataFrame(
            [json.loads(e) if isinstance(e, str) and e else {} for e in df["extra_json"]],
            index=df.index,
        )
        for col in keys.columns:
            if col not in df.columns:
                df[col] = keys[col]
    drop = [c for c in INTERNAL if not (config and c == "config_json")]
    df = df.drop(columns=[c for c in drop if c in df.columns])
    rest = [c for c in df.columns if c not in LEADING]
    return df[LEADING + rest].reset_index(drop=True)


def _axis_columns(df: pd.DataFrame, db: str | Path) -> pd.DataFrame:
    """Grid axes (``"train.lr"``-style keys) of each point as columns."""
    from scalelab.results.store import json_column

    rows = [
        json_column(a, "axes_json", f"{s}/{r}", db)
        for a, s, r in zip(df["axes_json"], df["study"], df["run_id"], strict=True)
    ]
    keyed = [{k: v for k, v in r.items() if "." in k} for r in rows]
    return pd.DataFrame(keyed, index=df.index)


def load_curves(
    db: str | Path, *, study: str | None = None, run_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """Every logged step of every run (train loss; validation loss at evaluations),
    with the run's study, arch, size, budget and parameter counts beside it."""
    where, params = _where(study, None, None)
    if run_ids is not None:
        ids = list(run_ids)
        where += (" AND" if where else " WHERE") + f" c.run_id IN ({', '.join('?' for _ in ids)})"
        params += ids
    return _read_sql(
        db,
        "SELECT c.*, p.study, p.arch, p.size, p.budget, p.seed, p.N_total, p.N_non_embedding, "
        f"p.N_active, p.status FROM curves c JOIN points p ON p.run_id = c.run_id{where} "
        "ORDER BY p.study, c.run_id, c.step",
        params,
    )


def export_points(
    db: str | Path, path: str | Path, *, format: str | None = None, **kwargs: Any
) -> Path:
    """Write ``load_points(db, **kwargs)`` to CSV or Parquet (by suffix, or ``format``),
    atomically. Parquet needs pyarrow (``pip install 'scalelab[parquet]'``)."""
    out = Path(path)
    fmt = format or {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}.get(out.suffix.lower())
    if fmt not in ("csv", "parquet"):
        raise StoreError(
            f"cannot tell the export format of {str(out)!r}: name it *.csv or *.parquet, "
            "or pass format='csv'/'parquet'"
        )
    df = load_points(db, **kwargs)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise StoreError(
                "parquet export needs pyarrow: pip install 'scalelab[parquet]' "
                "(or export CSV with --csv)"
            ) from None
    with atomic.atomic_path(out) as tmp:
        if fmt == "csv":
            df.to_csv(tmp, index=False)
        else:
            df.to_parquet(tmp, index=False)
    return out


@dataclass
class RebuildResult:
    db: Path
    runs: int = 0  # run directories read
    points: int = 0  # rows written (a run in two studies is two points)
    pending: int = 0  # planned runs with no directory yet
    studies: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreadable run directories, with why


Counter = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


def pending_row(
    study: str,
    run_id: str,
    config: Mapping[str, Any],
    axes: Mapping[str, Any] | None,
    counts: Mapping[str, Any] | None,
    runs_dir: str | Path,
) -> dict[str, Any]:
    """The store's row for a planned run not started yet: its size and planned cost."""
    rec = RunRecord(Path(runs_dir) / run_id, run_id, dict(config), None)
    row = point_row(rec, study=study, axes=axes, counts=counts)
    tokens = planned_tokens(run_config_from_dict(config), counts, None) if config else None
    return {**row, "status": "pending", "D": tokens, "run_dir": None}


def rebuild(
    runs_dir: str | Path,
    db: str | Path,
    *,
    study: str | None = None,
    counter: Counter | None = None,
) -> RebuildResult:
    """Recreate the store's points and curves from the run directories under ``runs_dir``.

    Study membership and axes come from the manifests the sweep writes
    (``runs_dir/_studies/*.json``); runs no manifest names become points of study
    ``""``. With ``study`` only that study's points are rebuilt (others are kept).
    Everything happens in one transaction: a failed rebuild leaves the store as it was.
    """
    counter = counter or config_counts
    manifests = read_manifests(runs_dir)
    if study is not None and study not in manifests:
        raise StoreError(
            f"no manifest for study {study!r} under {runs_dir}/_studies "
            f"(known: {', '.join(sorted(manifests)) or 'none'})"
        )
    result = RebuildResult(Path(db))
    records: dict[str, RunRecord] = {}
    for d in iter_run_dirs(runs_dir):
        try:
            rec = read_run(d)
        except StoreError as e:
            result.skipped.append(str(e))
            continue
        records[rec.run_id] = rec
    result.runs = len(records)
    member: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for name, m in manifests.items():
        if study is not None and name != study:
            continue
        for entry in m["runs"]:
            member.setdefault(str(entry["run_id"]), []).append((name, entry))
    with Store(db) as store, store.transaction() as conn:
        if study is None:
            conn.execute("DELETE FROM points")
            conn.execute("DELETE FROM curves")
            conn.execute("DELETE FROM studies")
        else:
            conn.execute("DELETE FROM points WHERE study = ?", (study,))
        # in each study's grid order (as the sweep wrote them), then runs no study names
        curves_done: set[str] = set()
        for name, m in manifests.items():
            if study is not None and name != study:
                continue
            for entry in m["runs"]:
                run_id = str(entry["run_id"])
                rec = records.get(run_id)
                if rec is None:  # planned, never started
                    cfg = dict(entry.get("config") or {})
                    row = pending_row(name, run_id, cfg, entry.get("axes"), counter(cfg), runs_dir)
                    store._upsert_point(row)
                    result.pending += 1
                else:
                    store._upsert_point(point_row(rec, study=name, axes=entry.get("axes")))
                    if run_id not in curves_done:
                        store._put_curves(run_id, curve_rows(rec))
                        curves_done.add(run_id)
                result.points += 1
        if study is None:
            for run_id, rec in records.items():
                if run_id not in member:
                    store._upsert_point(point_row(rec, study=""))
                    store._put_curves(run_id, curve_rows(rec))
                    result.points += 1
        for name, m in manifests.items():
            if study is None or name == study:
                conn.execute(
                    "INSERT OR REPLACE INTO studies (name, spec_json, runs_dir, updated_at) "
                    "VALUES (?, ?, ?, strftime('%s','now'))",
                    (
                        name,
                        json.dumps(m.get("spec"), sort_keys=True),
                        str(Path(runs_dir).resolve()),
                    ),
                )
                result.studies.append(name)
    return result


__all__ = ["N_KINDS", "RebuildResult", "export_points", "load_curves", "load_points", "rebuild"]
