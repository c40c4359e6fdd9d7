"""Time to count each preset analytically; target well under 5 ms each.

Reference measured in the same run: building the same model with ``transformers`` on the meta
device (no memory, no weights) and summing ``p.numel()``, the usual exact alternative. Prints
milliseconds and the ratio; exit status 1 if any preset misses the 5 ms target.

    .venv/bin/python benchmarks/accounting.py            # with the transformers reference
    .venv/bin/python benchmarks/accounting.py --no-reference
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from scalelab.accounting import count
from scalelab.presets import _load, list_presets, preset_config

TARGET_MS = 5.0


def time_count(name: str, repeats: int) -> tuple[float, float]:
    """(cold, warm median) milliseconds of ``count(name)``; cold re-reads the config file."""
    _load.cache_clear()
    t = time.perf_counter()
    count(name)
    cold = (time.perf_counter() - t) * 1e3
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        count(name)
        warm.append((time.perf_counter() - t) * 1e3)
    return cold, statistics.median(warm)


def time_meta(name: str) -> float:
    import torch
    import transformers

    cfg = {k: v for k, v in preset_config(name).items() if not k.startswith("_")}
    if cfg["model_type"] == "orion":
        cfg["model_type"] = "llama"  # no Orion class in transformers; same layout
    auto = (
        transformers.AutoModelForMaskedLM
        if cfg["model_type"] == "bert"
        else transformers.AutoModelForCausalLM
    )
    t = time.perf_counter()
    with torch.device("meta"):
        model = auto.from_config(transformers.AutoConfig.for_model(**cfg))
    sum(p.numel() for p in model.parameters())
    return (time.perf_counter() - t) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--no-reference", action="store_true", help="skip the transformers timing")
    args = ap.parse_args()
    reference = not args.no_reference
    if reference:
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("transformers is not installed: no reference timing")
            reference = False
        else:
            time_meta("gpt2")  # warm transformers' lazy imports out of the measurement

    head = f"{'preset':<18} {'cold ms':>8} {'count ms':>9}"
    print(head + (f" {'meta ms':>9} {'meta / count':>13}" if reference else ""))
    worst = 0.0
    for p in list_presets():
        cold, warm = time_count(p.name, args.repeats)
        worst = max(worst, cold, warm)
        line = f"{p.name:<18} {cold:>8.3f} {warm:>9.3f}"
        if reference:
            meta = time_meta(p.name)
            line += f" {meta:>9.1f} {meta / warm:>12.0f}x"
        print(line)
    ok = worst < TARGET_MS
    print(f"slowest count: {worst:.3f} ms, {worst / TARGET_MS:.1%} of the {TARGET_MS:g} ms target: "
          + ("OK" if ok else "MISSED"))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
