"""A compression study: every method at several levels on the plain runs of a ladder.

A compression study TOML names the ladder (a results store and a study in it) and lists
the methods::

    [compression]
    name = "compression"              # the study name of the compressed points
    db = "runs/distillation.db"       # the ladder's store (its plain runs are the parents)
    study = "distillation"
    sizes = ["d32", "d48", "d64"]     # the ladder sizes to compress (all when absent)
    seed = 0                          # which seed's run of each size

    [[compression.method]]
    method = "quant"
    levels = [8, 4, 3, 2]
    algorithm = "gptq"                # any option of scalelab.techniques.compress.compress
    group = 0
    recover = 100000                  # optional recovery tokens

``run_study(path, db)`` compresses each parent with each entry at each level (a derived run
already on disk is reused) and records the points, plus the parents, in ``db``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.config import read_toml
from scalelab.errors import ConfigError, did_you_mean

KEYS = ("name", "db", "study", "sizes", "seed", "method", "description")
ENTRY_KEYS = ("method", "levels", "recover", "structure", "scope", "algorithm", "group")


@dataclass
class CompressionStudy:
    name: str
    db: Path
    study: str
    sizes: list[str] | None
    seed: int
    entries: list[dict[str, Any]] = field(default_factory=list)


def load_compression_study(path: str | Path) -> CompressionStudy:
    values = read_toml(path)
    top = values.get("compression")
    if not isinstance(top, Mapping) or set(values) != {"compression"}:
        raise ConfigError(f"{path}: a compression study has one [compression] section")
    for k in top:
        if k not in KEYS:
            raise ConfigError(f"{path}: unknown key compression.{k}{did_you_mean(k, KEYS)}")
    entries = []
    for i, e in enumerate(top.get("method") or []):
        for k in e:
            if k not in ENTRY_KEYS:
                raise ConfigError(
                    f"{path}: unknown key {k!r} in [[compression.method]] {i + 1}"
                    f"{did_you_mean(k, ENTRY_KEYS)}"
                )
        if "method" not in e or not e.get("levels"):
            raise ConfigError(f"{path}: [[compression.method]] {i + 1} needs method and levels")
        entries.append(dict(e))
    if not entries:
        raise ConfigError(f"{path}: list at least one [[compression.method]]")
    for k in ("db", "study"):
        if k not in top:
            raise ConfigError(f"{path}: compression.{k} is required (the ladder's store and study)")
    return CompressionStudy(
        name=str(top.get("name", "compression")),
        db=Path(top["db"]),
        study=str(top["study"]),
        sizes=list(top["sizes"]) if top.get("sizes") else None,
        seed=int(top.get("seed", 0)),
        entries=entries,
    )


def parents(spec: CompressionStudy) -> Any:
    """The ladder's plain runs to compress (one per size, the study's seed), smallest first."""
    from scalelab.techniques.small_large import load_all

    pts = load_all(spec.db, study=spec.study)
    pts = pts[pts["kind"] == "run"]
    pts = pts[pts["seed"] == spec.seed]
    if spec.sizes is not None:
        missing = sorted(set(spec.sizes) - set(pts["size"]))
        if missing:
            raise ConfigError(
                f"sizes {', '.join(missing)} have no finished seed-{spec.seed} run in study "
                f"{spec.study!r} of {spec.db}: run its sweep first"
            )
        pts = pts[pts["size"].isin(spec.sizes)]
    if pts.empty:
        raise ConfigError(f"study {spec.study!r} in {spec.db} has no finished plain runs")
    return pts.drop_duplicates("size").sort_values("N")


def _axes(spec: CompressionStudy, p: Any) -> dict[str, Any]:
    """The parent's axes in its ladder study (size, budget, ...), kept on its copy here."""
    from scalelab.results.store import Store

    with Store(spec.db, create=False) as s:
        got = s.query(
            "SELECT axes_json FROM points WHERE study = ? AND run_id = ?",
            (spec.study, p["run_id"]),
        )
    axes = json.loads(got[0]["axes_json"]) if got and got[0]["axes_json"] else {}
    return {"size": p["size"], **axes}


def run_study(
    path: str | Path, db: str | Path, *, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Compress every parent with every method and level; returns one row per result."""
    from scalelab.results.records import point_row, read_run
    from scalelab.results.store import Store
    from scalelab.techniques.compress import compress

    spec = load_compression_study(path)
    rows = []
    t_start = time.perf_counter()
    with Store(db) as store:
        for _, p in parents(spec).iterrows():
            parent_dir = Path(p["run_dir"])
            store.put_point(point_row(read_run(parent_dir), study=spec.name, axes=_axes(spec, p)))
            for e in spec.entries:
                opts = {k: e[k] for k in ("structure", "scope", "algorithm", "group") if k in e}
                for level in e["levels"]:
                    r = compress(
                        parent_dir,
                        e["method"],
                        float(level),
                        recover=e.get("recover"),
                        db=db,
                        study=spec.name,
                        **opts,
                    )
                    row = {"size": p["size"], "run_id": r.run_id, **r.block(), "loss": r.val_loss}
                    rows.append(row)
                    log(
                        f"{p['size']} {r.run_id}: loss {r.val_loss:.4f} "
                        f"({r.val_loss - r.parent_loss:+.4f}), {r.bits / r.params:.2f} bits/param, "
                        f"{r.seconds:.1f} s"
                    )
    log(f"{len(rows)} compressed points in {time.perf_counter() - t_start:.0f} s")
    return rows
