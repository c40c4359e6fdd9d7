"""Study manifests: which runs of a runs directory belong to which study.

A run directory knows its config but not the studies that asked for it (one run can
serve several studies: the run id is the hash of the config alone). The sweep writes
``RUNS_DIR/_studies/<name>.json`` with the study's spec and, for every run of its
grid, the run's axes (size label, budget, ...) and config, so the store can be
rebuilt from the runs directory alone, pending runs included.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.errors import StoreError
from scalelab.study.grid import PlannedRun
from scalelab.study.studyfile import Study

MANIFEST_DIR = "_studies"


def manifest_path(runs_dir: str | Path, name: str) -> Path:
    return Path(runs_dir) / MANIFEST_DIR / f"{name}.json"


def write_manifest(runs_dir: str | Path, study: Study, runs: Sequence[PlannedRun]) -> Path:
    path = manifest_path(runs_dir, study.name)
    atomic.write_json(
        path,
        {
            "name": study.name,
            "spec": study.to_dict(),
            # a list, in the grid's order (the store lists points in that order)
            "runs": [
                {"run_id": r.run_id, "axes": dict(r.axes), "config": r.config.to_dict()}
                for r in runs
            ],
        },
        indent=2,
        sort_keys=True,
        default=str,
    )
    return path


def read_manifests(runs_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{study name: manifest}`` for every manifest under ``runs_dir``."""
    d = Path(runs_dir) / MANIFEST_DIR
    out: dict[str, dict[str, Any]] = {}
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            m = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(
                f"{p}: unreadable study manifest ({e}); delete it or rerun the sweep"
            ) from None
        if not isinstance(m, Mapping) or not isinstance(m.get("runs"), list):
            raise StoreError(f"{p}: not a study manifest; delete it or rerun the sweep")
        out[str(m.get("name", p.stem))] = dict(m)
    return out


__all__ = ["MANIFEST_DIR", "manifest_path", "read_manifests", "write_manifest"]
