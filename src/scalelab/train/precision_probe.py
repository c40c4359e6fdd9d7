"""``train.precision = "auto"`` on a CPU: time the run's own model in both precisions.

Whether bf16 autocast pays on a CPU depends on the model, not only on the CPU's matrix
units: a 256-wide matmul runs faster in bf16 on an AVX512-BF16 CPU, yet a 2-layer width-64
model's training step runs about 1.5x faster in fp32 there, because the small matmuls gain
little and autocast adds a cast of every weight and activation (issue 24). So "auto" times a
few forward-backward steps of the run's own model (its shape, its micro-batch, the run's
thread count) in fp32 and under bf16 autocast, and the faster wins (a tie keeps fp32).

The timings are cached per (model config, micro-batch, CPU model and flags, torch version,
thread count) in ``CACHE/precision-steps.json``, so a ladder pays once per shape. On a CPU
without bf16 units, bf16 is emulated and about 100x slower: its timing stops after the first
step once that step is far slower than fp32's best.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

from scalelab import atomic
from scalelab.config import RunConfig
from scalelab.models import build_model
from scalelab.train.device import Precision, cache_root, cpu_key

PROBE_STEPS = 3  # timed steps per precision (after one untimed step), the best one kept
GIVE_UP_FACTOR = 5.0  # bf16's first step this many times fp32's best: no need to time more
CACHE_FILE = "precision-steps.json"

# (config, micro-batch, device, "fp32" | "bf16", give up after seconds or None) -> seconds
StepTimer = Callable[[RunConfig, int, torch.device, str, float | None], float]


def time_step(
    cfg: RunConfig, micro: int, device: torch.device, precision: str, give_up: float | None
) -> float:
    """Best seconds of one forward-backward step of ``cfg``'s model on a random micro-batch
    in ``precision``. The global RNG is left as it was (the run's own draws are unchanged)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg.model).to(device)
        model.train()
        shape = (micro, cfg.model.context)
        x = torch.randint(0, cfg.model.vocab_size, shape, device=device)
        y = torch.randint(0, cfg.model.vocab_size, shape, device=device)

        def step() -> float:
            t0 = time.perf_counter()
            with Precision(precision, "probe").autocast(device):
                logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
            loss.backward()
            model.zero_grad(set_to_none=True)
            return time.perf_counter() - t0

        first = step()  # allocation and kernel choice: not counted, unless it is hopeless
        if give_up is not None and first > give_up:
            return first
        return min(step() for _ in range(PROBE_STEPS))


def _key(cfg: RunConfig, micro: int) -> str:
    blob = json.dumps({"model": cfg.to_dict()["model"], "micro": micro}, sort_keys=True)
    return hashlib.sha256(f"{blob}|{cpu_key()}".encode()).hexdigest()[:16]


def step_timings(
    cfg: RunConfig,
    micro: int,
    device: torch.device,
    cache_dir: str | Path | None = None,
    timer: StepTimer | None = None,
) -> tuple[dict[str, float], bool]:
    """Seconds per forward-backward step in fp32 and bf16 for this run's model, from the
    cache or measured now (``timer`` replaces :func:`time_step`, for tests); and whether
    they came from the cache. Call it at the run's thread count (it is part of the key)."""
    path = cache_root(cache_dir) / CACHE_FILE
    key = _key(cfg, micro)
    cached: dict[str, dict[str, float]] = {}
    try:
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            cached = loaded
            hit = cached.get(key)
            if isinstance(hit, dict) and {"fp32", "bf16"} <= set(hit):
                return {"fp32": float(hit["fp32"]), "bf16": float(hit["bf16"])}, True
    except (OSError, ValueError):
        pass
    timer = timer or time_step
    fp32 = timer(cfg, micro, device, "fp32", None)
    bf16 = timer(cfg, micro, device, "bf16", GIVE_UP_FACTOR * fp32)
    timings = {"fp32": fp32, "bf16": bf16}
    try:
        cached[key] = timings
        atomic.write_json(path, cached, indent=1)
    except OSError:
        pass  # an unwritable cache only costs a new measurement next time
    return timings, False


def choose(timings: Mapping[str, float], cached: bool = False) -> Precision:
    """The faster precision (a tie, or a timing that is not a number, keeps fp32), with the
    reason and the timings for the run's summary."""
    fp32, bf16 = timings["fp32"], timings["bf16"]
    faster = math.isfinite(bf16) and math.isfinite(fp32) and bf16 < fp32
    name = "bf16" if faster else "fp32"
    where = "cached timing" if cached else "timed"
    reason = (
        f"{where} of this model's forward-backward step: fp32 {fp32 * 1e3:.3g} ms, "
        f"bf16 {bf16 * 1e3:.3g} ms ({fp32 / bf16:.2f}x): {name} is faster"
    )
    return Precision(name, reason, timings=dict(timings))


__all__ = ["StepTimer", "choose", "step_timings", "time_step"]
