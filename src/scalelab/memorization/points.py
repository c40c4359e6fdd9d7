"""Memorization results as points in the results store, beside the run they measure.

A measurement of a run (its capacity at some precision, its extractable share) is a
point of its own: the run's row (shape, N, D, compute, losses) with ``kind`` naming the
measure, ``technique`` the variant, ``parent_run_id`` the run, and the numbers in
``extra_json``. It joins the parent's study when the parent is in the store, so the
points sit on the same size axis as the ladder that produced them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalelab.results.records import point_row, read_run
from scalelab.results.store import Store


def put_technique_point(
    db: str | Path, run_dir: str | Path, *, kind: str, technique: str, extra: dict[str, Any]
) -> str:
    """Record one measurement of the run in ``run_dir``; returns the point's run_id."""
    rec = read_run(run_dir)
    with Store(db) as store:
        rows = store.query(
            "SELECT study FROM points WHERE run_id = ? AND kind = 'run'", (rec.run_id,)
        )
        studies = [r["study"] for r in rows] or [""]
        point_id = f"{rec.run_id}-{kind}-{technique}"
        for study in studies:
            row = point_row(rec, study=study)
            row.update(
                run_id=point_id,
                kind=kind,
                technique=technique,
                parent_run_id=rec.run_id,
                extra_json=json.dumps(extra, default=float),
                run_dir=str(Path(run_dir).resolve()),
            )
            store.put_point(row)
    return point_id


__all__ = ["put_technique_point"]
