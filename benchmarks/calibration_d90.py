"""d90 of the copy task on one finished run with studies/intrinsic.toml's settings (sweep
100..10,000, 200 steps per trial at lr 0.1, 600 steps of full fine-tuning at 3e-3, bisection
to 25%); prints the trials and writes the result as JSON (docs/calibration.md, section 2).

    nice -n 5 python benchmarks/calibration_d90.py RUN_DIR OUT.json [DB]
"""

from __future__ import annotations

import json
import sys
import time

from scalelab.intrinsic import run_intrinsic


def main() -> None:
    run, out = sys.argv[1], sys.argv[2]
    db = sys.argv[3] if len(sys.argv) > 3 else None
    t0 = time.time()
    r = run_intrinsic(
        run,
        "copy",
        dims=[100, 300, 1000, 3000, 10000],
        projection="fastfood",
        steps=200,
        lr=0.1,
        full_lr=3e-3,
        full_steps=600,
        resolution=0.25,
        db=db,
    )
    d = r.to_dict() | {"wall": time.time() - t0}
    with open(out, "w") as f:
        json.dump(d, f, indent=1)
    trials = [(t.d, round(t.performance, 3), t.phase) for t in r.trials]
    print(run, "d90", r.d90, "D", r.D, "full", r.full_performance, f"{d['wall']:.0f}s", trials)


if __name__ == "__main__":
    main()
