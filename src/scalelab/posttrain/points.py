"""Points of kind ``posttrain`` in the results store.

One point per finished stage (``run_id`` = the stage's id), one per logged evaluation of an
RL stage (``<stage id>@<step>``: the KL curve) and one per n of a best-of-n sweep
(``<bon id>-n<n>``). The numbers a post-training analysis reads are in ``extra_json``:
``method``, ``task``, ``policy_N``, ``reward_run_id``, ``reward_N``, ``proxy_reward``,
``gold_reward`` (with ``_lo``/``_hi``), ``kl`` (nats per completion) and ``d`` = sqrt(kl)
(Gao et al.'s axis), ``accuracy`` (with ``_lo``/``_hi``), ``n`` (best-of-n), ``tokens`` and
``flops`` (sampling, reference and reward forwards included). ``N_total`` is the policy's
parameter count, ``D`` the stage's tokens and ``C_exact`` its FLOPs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

KIND = "posttrain"


def point(row: Mapping[str, Any], *, parent_run_id: str, arch: str, run_dir: str) -> dict[str, Any]:
    extra = dict(row)
    kl = extra.get("kl")
    if kl is not None and "d" not in extra:
        extra["d"] = math.sqrt(max(float(kl), 0.0))
    return {
        "run_id": extra["run_id"],
        "kind": KIND,
        "technique": extra["method"],
        "parent_run_id": parent_run_id,
        "arch": arch,
        "N_total": extra.get("policy_N"),
        "D": extra.get("tokens"),
        "C_exact": extra.get("flops"),
        "status": "finished",
        "step": extra.get("step"),
        "wall_seconds": extra.get("seconds"),
        "run_dir": run_dir,
        "extra_json": json.dumps(extra, default=str),
    }


def put_points(db: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    from scalelab.results.store import Store

    with Store(db) as store:
        for row in rows:
            store.put_point(row)


def load_posttrain(db: str | Path) -> Any:
    """The store's posttrain points as a DataFrame, ``extra_json``'s keys as columns."""
    import sqlite3

    from scalelab.results import load_points

    df = load_points(db, kind=KIND, extra=True)
    with sqlite3.connect(db) as conn:  # the stage's directory (load_points keeps it internal)
        dirs = dict(conn.execute("SELECT run_id, run_dir FROM points WHERE kind = ?", (KIND,)))
    df["run_dir"] = [dirs.get(r) for r in df["run_id"]]
    return df
