"""Run every hardened case of the hostile probe once; count the defects by command and class.

The property test (tests/test_cli_hostile.py) draws a sample of these cases; this runs all of
them against the scalelab on PYTHONPATH, so the same table can be made for the code before
the hardening and after (docs/hardening.md):

    PYTHONPATH=/path/to/checkout-at-7e7572e/src python benchmarks/hostile_cases.py /tmp/before
    PYTHONPATH=src python benchmarks/hostile_cases.py /tmp/after

WORK is a new folder for the work area (a two-run sweep, a search, a compression, an export,
damaged copies). A case that runs past ``--seconds`` counts as a hang. The ``--nproc 1024``
case is not run (on unfixed code it spawns 1024 processes).
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", type=Path, help="a new folder for the work area")
    ap.add_argument("--seconds", type=int, default=60, help="a case longer than this hangs")
    ap.add_argument(
        "--table",
        choices=("hard", "post", "all"),
        default="all",
        help="hard: the first part's cases; post: post-training, branches and their settings",
    )
    ap.add_argument("--only", default="", help="comma-separated commands (default: all)")
    args = ap.parse_args()
    only = {c for c in args.only.split(",") if c}
    sys.path.insert(0, str(ROOT))  # tests.test_cli_hostile
    import pytest
    import tests.test_cli_hostile as h

    args.work.mkdir(parents=True)
    work = h.make_work(args.work)
    arte = h.make_artefacts(work)
    tables = {}
    if args.table in ("hard", "all"):
        tables["hard"] = h._cases(work, arte)
    if args.table in ("post", "all"):
        tables["post"] = h._post_cases(work, arte, h.make_post_artefacts(work, arte))
    alarm = signal.alarm
    h.signal = types.SimpleNamespace(  # the probe's 60 s deadline, as asked
        alarm=lambda n: alarm(min(n, args.seconds) if n else 0),
        signal=signal.signal,
        SIGALRM=signal.SIGALRM,
    )
    mp = pytest.MonkeyPatch()
    cases = bad = 0
    table: collections.Counter[tuple[str, str]] = collections.Counter()
    per_command: collections.Counter[str] = collections.Counter()  # cases
    for part, command, items in [
        (t, c, i) for t, table_ in tables.items() for c, i in table_.items()
    ]:
        if only and command not in only:
            continue
        for cls, argv in items:
            cases += 1
            per_command[f"{part}:{command}"] += 1
            if "--nproc" in argv and argv[argv.index("--nproc") + 1] == "1024":
                print(f"  skipped {command} {cls}: {' '.join(argv[1:])} (spawns 1024 processes)")
                continue
            t0 = time.perf_counter()
            problem = h.hard_outcome(work, argv, mp)
            if problem is not None:
                bad += 1
                table[f"{part}:{command}", cls] += 1
            mark = "ok " if problem is None else "BAD"
            print(f"{time.perf_counter() - t0:5.1f}s {command:12s} {cls:9s} {mark} "
                  f"{' '.join(argv[1:])[-80:]} {'' if problem is None else ':: ' + problem[:160]}")  # fmt: skip
    print(f"cases: {cases}; defects: {bad}")
    for command, n in per_command.items():
        found = {c: k for (cmd, c), k in table.items() if cmd == command}
        print(f"  {command}: {n} cases, {sum(found.values())} defects {found}")


if __name__ == "__main__":
    main()
