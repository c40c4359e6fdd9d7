"""Cost of a distillation step and of compressing the largest ladder model.

1. **Distillation step** (target: at most 1.2x the reference). The reference, measured in
   the same run on the same batches: one plain student step (forward, backward, AdamW)
   plus one teacher forward (eval mode, no gradients). The distilled step is the trainer's
   own step with ``[distill]`` on (``alpha = 0.5``, forward KL). Shapes are those of
   ``studies/distillation.toml``: student 2 x 32, teacher 4 x 128, 16 x 128 bytes per step.
2. **Compression** (target: under 60 s per level): ``compress()`` of a 4 x 128 model (the
   distillation teacher, the ladder's largest) at one level of every method, GPTQ
   included; the time of the method itself (``seconds``) and the whole call (load, two
   evaluations, writing the derived run).

    PYTHONPATH=src .venv/bin/python benchmarks/distill_compress.py [--steps 20] [--threads 1]

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from scalelab.config import load_run_config
from scalelab.train import train

COMMON = [
    "data.corpus=python-stdlib",
    "data.tokenizer=bytes",
    "model.vocab_size=258",
    "model.context=128",
    "train.batch_size=16",
    "train.eval_every=1000",
    "train.checkpoint_every=100000",
]
TEACHER = ["model.n_layer=4", "model.d_model=128", "model.n_head=4"]
STUDENT = ["model.n_layer=2", "model.d_model=32", "model.n_head=2"]
STEP_TARGET = 1.2
COMPRESS_TARGET_S = 60.0


def _median_step(run: object, steps: int, start: int = 0) -> float:
    times = []
    for s in range(start, start + steps):
        t = time.perf_counter()
        loss, _ = run._step(s)  # type: ignore[attr-defined]
        float(loss)  # wait for the step
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])  # the first step allocates


def distill_step(out: Path, teacher_dir: Path, steps: int) -> float:
    from scalelab.train.batches import TrainSampler
    from scalelab.train.loop import _Run

    plain_cfg = load_run_config(None, [*COMMON, *STUDENT, "train.tokens=1e6"])
    kd_cfg = load_run_config(
        None,
        [
            *COMMON,
            *STUDENT,
            "train.tokens=1e6",
            f"distill.teacher={teacher_dir}",
            "distill.alpha=0.5",
        ],
    )
    for name in ("plain", "kd"):
        (out / name).mkdir(parents=True, exist_ok=True)
    plain = _Run(plain_cfg, out / "plain", None, False)
    kd = _Run(kd_cfg, out / "kd", None, False)
    for run in (plain, kd):
        run._resume()  # threads and precision, as run() does first
    teacher = kd.distiller.teacher.model
    sampler = TrainSampler(plain.data.train, 128, 0)
    t_forward = []
    for s in range(steps):
        x, _ = sampler.batch(s * 16, 16, kd.device)
        t = time.perf_counter()
        with torch.no_grad(), kd.precision.autocast(kd.device):
            float(teacher(x).sum())
        t_forward.append(time.perf_counter() - t)
    # interleave the measurements so a change of machine load hits both
    t_plain, t_kd = [], []
    for rep in range(3):
        t_plain.append(_median_step(plain, steps, rep * steps))
        t_kd.append(_median_step(kd, steps, rep * steps))
    p, f, k = statistics.median(t_plain), statistics.median(t_forward[1:]), statistics.median(t_kd)
    ratio = k / (p + f)
    print(
        f"distillation step: student step {p * 1e3:.1f} ms + teacher forward {f * 1e3:.1f} ms "
        f"= {(p + f) * 1e3:.1f} ms; distilled step {k * 1e3:.1f} ms; ratio {ratio:.3f} "
        f"(target <= {STEP_TARGET}; precision {kd.precision.name})"
    )
    return ratio


LEVELS = [
    ("prune", 0.5, {}),
    ("prune", 0.5, {"scope": "global"}),
    ("prune", 0.5, {"structure": "heads"}),
    ("prune", 0.5, {"structure": "neurons"}),
    ("quant", 4, {}),
    ("quant", 4, {"group": 32}),
    ("quant", 4, {"algorithm": "gptq"}),
    ("quant", 3, {"algorithm": "gptq", "group": 32}),
    ("lowrank", 0.9, {}),
    ("share", 2, {}),
]


def compression(teacher_dir: Path, out: Path) -> float:
    from scalelab.techniques.compress import compress

    worst = 0.0
    for method, level, opts in LEVELS:
        t = time.perf_counter()
        r = compress(teacher_dir, method, level, out=out / f"{method}-{level}-{len(opts)}", **opts)
        wall = time.perf_counter() - t
        worst = max(worst, wall)
        print(
            f"compress {method} {level:g} {opts or ''}: method {r.seconds:.2f} s, "
            f"whole call {wall:.2f} s (loss {r.parent_loss:.3f} -> {r.val_loss:.3f})"
        )
    print(f"slowest level: {worst:.2f} s (target < {COMPRESS_TARGET_S:.0f} s)")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = load_run_config(None, [*COMMON, *TEACHER, "train.tokens=40960"])
        train(cfg, out / "teacher", progress=False)  # 20 steps: the weights do not matter here
        teacher_dir = out / "teacher" / cfg.run_id()
        ratio = distill_step(out, teacher_dir, args.steps)
        worst = compression(teacher_dir, out / "compressed")
    return 0 if ratio <= STEP_TARGET and worst < COMPRESS_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
