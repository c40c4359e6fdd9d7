"""Training speed on a CPU shared with another busy process: threads and OpenMP wait policy.

Runs one training step loop of config (a) of ``train_throughput.py`` (micro-batches of 8
sequences) for a few seconds in fresh processes, first alone and then beside a process that
spins on one core, with 1 thread, 2 threads (OpenMP's default wait policy) and 2 threads with
``OMP_WAIT_POLICY=PASSIVE`` (what ``import scalelab`` sets unless the user set it).

    python benchmarks/omp_contention.py
"""

from __future__ import annotations

import os
import subprocess
import sys

STEP = r"""
import sys, time, torch, torch.nn.functional as F
from scalelab.config import ModelConfig
from scalelab.models import build_model
torch.set_num_threads(int(sys.argv[1]))
cfg = ModelConfig(n_layer=4, d_model=128, n_head=4, context=128, vocab_size=512)
torch.manual_seed(0)
m = build_model(cfg)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True)
x = torch.randint(0, 512, (8, 128)); y = torch.randint(0, 512, (8, 128))
def step():
    F.cross_entropy(m(x).flatten(0, 1), y.flatten()).backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
step()
t, n = time.perf_counter(), 0
while time.perf_counter() - t < float(sys.argv[2]):
    step(); n += 1
print(f"{n * 8 * 128 / (time.perf_counter() - t):.0f}")
"""


def measure(threads: int, policy: str | None, seconds: float) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    # torch is imported before scalelab in STEP, so scalelab's default does not apply here
    out = subprocess.run([sys.executable, "-c", STEP, str(threads), str(seconds)],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return float(out.stdout.strip())


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    cases = [(1, None), (2, None), (2, "PASSIVE")]
    for label in ("alone", "beside one busy process"):
        burner = None
        if label != "alone":
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for threads, policy in cases:
                rate = measure(threads, policy, seconds)
                print(f"{label:25s} threads={threads} OMP_WAIT_POLICY={policy or 'default':8s} "
                      f"{rate:8,.0f} tokens/s", flush=True)  # fmt: skip
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()


if __name__ == "__main__":
    main()
