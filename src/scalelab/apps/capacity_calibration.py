"""The capacity calibration: train each size on more facts than it can hold, then measure.

A calibration file (``studies/capacity-calibration.toml``) is a study whose corpus, learning
rate and batch depend on the size, which a study grid (a product of axes) cannot say::

    [calibration]
    name = "capacity-calibration"
    corpus = "facts:attributes=6,templates=1,seed=0"   # people: set per arm, below
    bits_per_param = 2.0        # the published capacity (Allen-Zhu & Li 2024, 1000 exposures)
    content = 2.0               # offer content x bits_per_param x N attribute bits (N non-embedding)
    exposures = [1000, 100]     # passes over the training people (train.epochs)
    precisions = ["fp32", "int8", "int4"]

    [[calibration.arms]]        # one size trained one way; lr and batch_size tuned per size
    name = "n5k"
    model = { n_layer = 1, d_model = 20, n_head = 4 }
    lr = 0.016
    batch_size = 16
    # optional: exposures = [...], people = P, weight_decay = ... (an arm that tests a limit)

    [model] / [data] / [train]  # shared run sections, as in a study

Each arm's corpus holds ``ceil(content x bits_per_param x N / bits a person)`` people, so
it is offered ``content`` times what it can hold at the published rate: a model that
stored everything would show more than ``bits_per_param``, and one that stores less shows
how much less. Every run is an ordinary run in ``RUNS/<run id>/`` and a point of the
study ``name`` in the store; :func:`run_calibration` trains what is not finished yet
(``workers`` processes, one torch thread each) and writes a ``capacity`` point per run and
precision (:func:`scalelab.memorization.capacity.capacity`); :func:`calibration_table`
reads them back.

    python -m scalelab.apps.capacity_calibration studies/capacity-calibration.toml \\
        --db runs/calibration.db --runs runs --workers 2
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError

CALIBRATION_KEYS = (
    "name",
    "description",
    "corpus",
    "bits_per_param",
    "content",
    "exposures",
    "precisions",
    "arms",
)
ARM_KEYS = ("name", "model", "lr", "batch_size", "exposures", "people", "weight_decay")


@dataclass(frozen=True)
class Arm:
    """One size trained one way."""

    name: str
    model: Mapping[str, Any]
    lr: float
    batch_size: int
    exposures: tuple[float, ...]
    people: int | None = None  # None: from content x bits_per_param x N
    weight_decay: float | None = None


@dataclass(frozen=True)
class Calibration:
    name: str
    description: str
    corpus: str
    bits_per_param: float
    content: float
    precisions: tuple[str, ...]
    arms: tuple[Arm, ...]
    base: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _number(where: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{where} must be positive, got {value!r}")
    return float(value)


def _exposures(where: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of passes, e.g. [1000, 100]")
    return tuple(_number(f"{where}[{i}]", v) for i, v in enumerate(value))


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file (every error names its key, before any work)."""
    from scalelab.config import SECTIONS, read_toml
    from scalelab.data.corpora import open_corpus
    from scalelab.data.facts import FactsSource
    from scalelab.memorization.quantize import PRECISIONS

    raw = read_toml(path)
    cal = raw.get("calibration")
    if not isinstance(cal, dict):
        raise ConfigError(f"{path}: a calibration file needs a [calibration] section")
    for key in raw:
        if key != "calibration" and key not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{key}]; use [calibration] and {SECTIONS}")
    for key in cal:
        if key not in CALIBRATION_KEYS:
            raise ConfigError(f"unknown key calibration.{key}; keys: {', '.join(CALIBRATION_KEYS)}")
    name = cal.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError('calibration.name must be a non-empty string, e.g. "capacity"')
    corpus = str(cal.get("corpus", ""))
    if not corpus.startswith("facts:"):
        raise ConfigError(
            f"calibration.corpus must be a facts: corpus, e.g. 'facts:attributes=6', got {corpus!r}"
        )
    if "people" in corpus:
        raise ConfigError("calibration.corpus: leave people out (each arm's people are computed)")
    try:
        probe = open_corpus(f"{corpus.rstrip(',')},people=1")
    except Exception as e:  # a bad spec: the corpus parser's own message
        raise ConfigError(f"calibration.corpus = {corpus!r}: {e}") from None
    if not isinstance(probe, FactsSource):
        raise ConfigError(f"calibration.corpus must be a facts: corpus, got {corpus!r}")
    precisions = tuple(cal.get("precisions", ["fp32"]))
    for p in precisions:
        if p not in PRECISIONS:
            raise ConfigError(
                f"calibration.precisions: {p!r} is not one of {', '.join(PRECISIONS)}"
            )
    default_exposures = _exposures("calibration.exposures", cal.get("exposures", [1000]))
    arms_raw = cal.get("arms")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise ConfigError("calibration.arms: give at least one [[calibration.arms]] table")
    arms = []
    for i, a in enumerate(arms_raw):
        where = f"calibration.arms[{i}]"
        for key in a:
            if key not in ARM_KEYS:
                raise ConfigError(f"unknown key {where}.{key}; keys: {', '.join(ARM_KEYS)}")
        if not isinstance(a.get("model"), dict) or not a["model"]:
            raise ConfigError(f"{where}.model must be a table of [model] keys (n_layer, ...)")
        batch = a.get("batch_size")
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"{where}.batch_size must be a positive integer, got {batch!r}")
        people = a.get("people")
        if people is not None and (not isinstance(people, int) or people < 1):
            raise ConfigError(f"{where}.people must be a positive integer, got {people!r}")
        wd = a.get("weight_decay")
        arms.append(
            Arm(
                name=str(a.get("name") or f"arm{i}"),
                model=dict(a["model"]),
                lr=_number(f"{where}.lr", a.get("lr")),
                batch_size=batch,
                exposures=_exposures(f"{where}.exposures", a["exposures"])
                if "exposures" in a
                else default_exposures,
                people=people,
                weight_decay=None
                if wd is None
                else _number(f"{where}.weight_decay", wd, positive=False),
            )
        )
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"calibration.arms: names must be distinct, got {names}")
    return Calibration(
        name=name,
        description=str(cal.get("description", "")),
        corpus=corpus,
        bits_per_param=_number("calibration.bits_per_param", cal.get("bits_per_param", 2.0)),
        content=_number("calibration.content", cal.get("content", 2.0)),
        precisions=precisions,
        arms=tuple(arms),
        base={s: dict(raw.get(s, {})) for s in SECTIONS},
    )


def people_for(cal: Calibration, non_embedding: int) -> int:
    """People whose attribute bits are ``content x bits_per_param x N``, rounded up."""
    from scalelab.data.corpora import open_corpus

    per_person = float(open_corpus(f"{cal.corpus},people=1").info()["attribute_bits"])
    return math.ceil(cal.content * cal.bits_per_param * non_embedding / per_person)


def planned_runs(cal: Calibration) -> list[tuple[Arm, float, Any]]:
    """(arm, exposures, RunConfig) for every run of the calibration, validated."""
    from scalelab.accounting import count
    from scalelab.config import run_config_from_dict

    out = []
    for arm in cal.arms:
        values = {s: dict(v) for s, v in cal.base.items()}
        values["model"].update(arm.model)
        probe = run_config_from_dict(values)
        n_ne = int(count(probe.model).to_dict()["params"]["non_embedding"])
        people = arm.people or people_for(cal, n_ne)
        values["data"]["corpus"] = f"{cal.corpus},people={people}"
        values["train"].update(lr=arm.lr, batch_size=arm.batch_size)
        if arm.weight_decay is not None:
            values["train"]["weight_decay"] = arm.weight_decay
        for exposures in arm.exposures:
            run = {s: dict(v) for s, v in values.items()}
            run["train"].update(epochs=exposures, tokens=None, tokens_per_param=None)
            out.append((arm, exposures, run_config_from_dict(run)))
    return out


def run_calibration(
    path: str | Path,
    *,
    db: str | Path,
    runs: str | Path,
    workers: int = 1,
    threads: int = 1,
    progress: bool = True,
    arms: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Train every run of the calibration not finished yet (the study pool, a worker's
    death retried from the run's checkpoint), record it in ``db`` (study ``name``), then
    measure its capacity at every precision. ``arms`` names the arms to run (default all).
    Returns the outcomes."""
    import time

    from scalelab.memorization.capacity import capacity
    from scalelab.runner.pool import Job, LocalProcesses, run_pool
    from scalelab.runner.runtask import RunTask, execute
    from scalelab.study.cost import config_counts

    cal = load_calibration(path)
    if workers < 1 or threads < 1:
        raise ConfigError(f"workers and threads must be >= 1, got {workers} and {threads}")
    plan = planned_runs(cal)
    if arms is not None:
        unknown = sorted(set(arms) - {a.name for a in cal.arms})
        if unknown:
            raise ConfigError(f"--arm {', '.join(unknown)}: no such arm in {path}")
        plan = [p for p in plan if p[0].name in set(arms)]
    tasks, cost = [], []
    for arm, exposures, cfg in plan:
        counted = config_counts(cfg) or {}
        people = int(cfg.data.corpus.rsplit("people=", 1)[1].split(",")[0])
        cost.append(people * exposures * counted["params"]["total"])  # ~ tokens x N
        tasks.append(
            RunTask(
                config=cfg.to_dict(),
                run_id=cfg.run_id(),
                out=str(runs),
                db=str(db),
                study=cal.name,
                axes={"arm": arm.name, "exposures": exposures},
                resume=True,  # a finished run is reused, an interrupted one resumes
                counts=counted,
            )
        )
    t0 = time.perf_counter()
    outcomes: list[dict[str, Any]] = []
    label = {t.run_id: f"{a.name} x{e:g}" for t, (a, e, _) in zip(tasks, plan, strict=True)}

    def report(run_id: str, out: dict[str, Any]) -> None:
        outcomes.append({"label": label[run_id], **out})
        if progress:
            print(f"{label[run_id]}: {out.get('status')}, loss {out.get('loss')}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip

    def finished(job: Job, _arg: Any, result: Any) -> bool:
        report(job.key, result)
        return result.get("status") == "finished"

    def failed(job: Job, _arg: Any, reason: str) -> None:
        report(job.key, {"status": "failed", "reason": reason})

    # the longest runs first, so the pool does not end waiting on one big run
    order = sorted(range(len(tasks)), key=lambda i: -cost[i])
    run_pool(
        [Job(tasks[i].run_id, tasks[i]) for i in order],
        LocalProcesses(execute, workers, threads),
        start=lambda job: (job.data, job.key),
        finished=finished,
        failed=failed,
        retry=lambda job, _arg: job,  # resume=True: the run goes on from its checkpoint
    )
    for task, (arm, exposures, _) in zip(tasks, plan, strict=True):
        run_dir = Path(runs) / task.run_id
        for precision in cal.precisions:
            res = capacity(run_dir, precision=precision, db=db)
            if progress:
                print(
                    f"{arm.name} x{exposures:g} {precision}: {res.bits:.0f} of "
                    f"{res.content_bits:.0f} bits, {res.bits_per_non_embedding_param:.3f} "
                    "bits/param (non-embedding)",
                    flush=True,
                )
    return outcomes


def calibration_table(db: str | Path, study: str) -> Any:
    """One row per capacity point of the calibration: the arm, N both ways, the content
    offered, exposures, lr, batch, precision, bits and bits per parameter both ways."""
    import json

    import pandas as pd

    from scalelab.memorization.analysis import capacity_points
    from scalelab.results.store import Store

    pts = capacity_points(db, study=study)
    if pts.empty:
        return pts
    with Store(db, create=False) as store:  # the runs' own axes (the arm) and configs
        runs = {
            r["run_id"]: (json.loads(r["axes_json"] or "{}"), json.loads(r["config_json"] or "{}"))
            for r in store.query(
                "SELECT run_id, axes_json, config_json FROM points WHERE study = ? AND kind = 'run'",
                [study],
            )
        }
    rows = []
    for _, r in pts.iterrows():
        axes, cfg = runs.get(r["parent_run_id"], ({}, {}))
        train = cfg.get("train", {})
        rows.append(
            {
                "arm": axes.get("arm"),
                "N_non_embedding": r["non_embedding_params"],
                "N_total": r["params"],
                "people": r["documents"],
                "content_bits": r["content_bits"],
                "exposures": r["exposures"],
                "lr": train.get("lr"),
                "batch_size": train.get("batch_size"),
                "weight_decay": train.get("weight_decay"),
                "precision": r["precision"],
                "bits": r["bits"],
                "bits_per_param_non_embedding": r["bits_per_non_embedding_param"],
                "bits_per_param_total": r["bits_per_param"],
                "stored_fraction": r["stored_fraction"],
                "name_bits": r["name_bits"],
                "val_bits": r["val_bits"],
                "train_target_loss": r["train_target_loss"],
                "run_id": r["parent_run_id"],
            }
        )
    return pd.DataFrame(rows).sort_values(["arm", "exposures", "precision"], ignore_index=True)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    import pandas as pd

    from scalelab.errors import ScalelabError

    ap = argparse.ArgumentParser(prog="python -m scalelab.apps.capacity_calibration")
    ap.add_argument("calibration", help="a calibration TOML (studies/capacity-calibration.toml)")
    ap.add_argument("--db", default="results.db", help="the SQLite results store")
    ap.add_argument("--runs", default="runs", help="directory of run directories")
    ap.add_argument("--workers", type=int, default=1, help="runs trained at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--arm", action="append", help="run only this arm (repeatable)")
    ap.add_argument("--table", action="store_true", help="print the table only; train nothing")
    args = ap.parse_args(argv)
    try:
        cal = load_calibration(args.calibration)
        if not args.table:
            run_calibration(
                args.calibration,
                db=args.db,
                runs=args.runs,
                workers=args.workers,
                threads=args.threads,
                arms=args.arm,
            )
        table = calibration_table(args.db, cal.name)
    except ScalelabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.drop(columns=["run_id"]).to_string(index=False) if len(table) else "no points")
    return 0


__all__ = [
    "Arm",
    "Calibration",
    "calibration_table",
    "load_calibration",
    "people_for",
    "planned_runs",
    "run_calibration",
]


if __name__ == "__main__":
    raise SystemExit(main())
