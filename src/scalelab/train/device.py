"""Where a run executes and in which precision.

``train.device = "auto"`` picks CUDA, then MPS, then the CPU. ``train.precision = "auto"``
decides bf16 autocast by a rule on GPUs and by *measuring* on CPUs: whether bf16 matrix
multiplication is fast depends on the CPU's matrix units (AMX, AVX512-BF16), not on
PyTorch's support for the dtype. On an AVX2-only CPU, bf16 matmuls are emulated and run
about 100x slower than fp32 (measured on this project's AMD EPYC build machine), so guessing
would make training far slower. The CPU probe's verdict is cached per CPU, torch version and
thread count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from scalelab.errors import ConfigError

# bf16 must beat fp32 by this factor in the probe before "auto" chooses it on a CPU: a mild
# win in a 256-wide matmul does not survive the extra casts of autocast in a real step.
BF16_MIN_SPEEDUP = 1.3


def resolve_device(name: str) -> torch.device:
    """``train.device`` -> a torch device that exists here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            f"train.device = {name!r} is not a device: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "train.device asks for CUDA but no CUDA GPU is visible: set train.device = 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device = {name!r}, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device = 'mps' but MPS is not available: set train.device = 'cpu'")
    return device


@dataclass(frozen=True)
class Precision:
    name: str  # "bf16" or "fp32"
    reason: str  # why "auto" chose it (or "set by train.precision")

    @property
    def dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.name == "bf16" else None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast around forward and loss; fp32 runs without a context."""
        if self.name == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def resolve_precision(
    precision: str, device: torch.device, cache_dir: str | Path | None = None
) -> Precision:
    if precision != "auto":
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError(
                "train.precision = 'bf16' but this GPU has no bf16 support: set train.precision = 'fp32'"
            )
        return Precision(precision, "set by train.precision")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision("bf16", "CUDA GPU with bf16 support")
        return Precision("fp32", "CUDA GPU without bf16 support")
    if device.type == "cpu":
        speedup = cpu_bf16_speedup(cache_dir)
        name = "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32"
        return Precision(name, f"CPU probe: bf16 matmul runs {speedup:.2g}x fp32")
    return Precision("fp32", f"no bf16 rule for device {device.type!r}")


def matmul_flops(
    dtype: torch.dtype = torch.float32,
    n: int = 1024,
    device: torch.device | str = "cpu",
    seconds: float = 0.5,
    max_reps: int = 1000,
) -> float:
    """Best measured FLOP/s of an n x n x n matmul: the peak that MFU is reported against."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync: Callable[[], None] = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a @ b  # first call allocates and picks kernels
    sync()
    best, spent, reps = float("inf"), 0.0, 0
    while (spent < seconds or reps < 3) and reps < max_reps:
        t0 = time.perf_counter()
        a @ b
        sync()
        dt = time.perf_counter() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return 2 * n**3 / best


def _cpu_key() -> str:
    model = platform.processor() or platform.machine()
    try:  # the model name and flags identify the matrix units better than platform does
        info = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
        model = "\n".join(lines) or model
    except OSError:
        pass
    blob = f"{model}|torch {torch.__version__}|threads {torch.get_num_threads()}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SCALELAB_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "scalelab"


def cpu_bf16_speedup(cache_dir: str | Path | None = None) -> float:
    """fp32 time / bf16 time of a 256-wide matmul on this CPU, measured once and cached."""
    path = _cache_root(cache_dir) / "precision-probe.json"
    key = _cpu_key()
    try:
        cached = json.loads(path.read_text())
        if key in cached:
            return float(cached[key])
    except (OSError, ValueError):
        cached = {}
    # 256 wide: big enough to engage the matrix units, small enough that the emulated bf16
    # path (about 1 GFLOP/s on AVX2-only CPUs) still finishes in a few tens of milliseconds.
    fp32 = matmul_flops(torch.float32, n=256, seconds=0.05)
    bf16 = matmul_flops(torch.bfloat16, n=256, seconds=0.05, max_reps=5)
    speedup = bf16 / fp32
    try:
        cached[key] = speedup
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time
    return speedup


def _running_elsewhere() -> int | None:
    """Runnable threads on this machine that are not ours, from /proc (None off Linux)."""
    try:
        total = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        ours = 0
        for task in Path("/proc/self/task").iterdir():
            stat = (task / "stat").read_text()
            ours += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return max(0, total - ours)


class ThreadPolicy:
    """How many CPU threads a run's kernels use.

    Fork-join parallelism collapses when the machine is oversubscribed: every parallel
    region waits for its slowest thread, and a thread that shares its core with another
    process waits for a scheduler slice. Measured on this project's 2-core build machine
    while other jobs ran: a tiny model's step was up to 20x slower with 2 threads than with 1
    (and about 10% faster when the machine was idle). So on CPUs the thread count follows the
    cores that are free *now*, re-checked every ``recheck_seconds`` at log steps;
    ``SCALELAB_THREADS=N`` fixes it (a sweep running k jobs on one machine sets N = cores / k).
    Results do not depend on the thread count here (checked bit for bit on the transformer),
    so adapting it keeps runs deterministic; it is recorded in the metrics.
    """

    def __init__(self, device: torch.device, recheck_seconds: float = 15.0) -> None:
        self.original = torch.get_num_threads()
        self.enabled = device.type == "cpu"
        self.fixed: int | None = None
        env = os.environ.get("SCALELAB_THREADS")
        if env:
            try:
                self.fixed = max(1, int(env))
            except ValueError:
                raise ConfigError(f"SCALELAB_THREADS must be an integer, got {env!r}") from None
        try:
            self.cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            self.cores = os.cpu_count() or 1
        self.cores = min(self.cores, max(self.original, 1)) if self.fixed is None else self.cores
        self.recheck_seconds = recheck_seconds
        self.last_check = -float("inf")
        self.threads = self.original

    def update(self, force: bool = False) -> int:
        """Set the thread count for the next steps; returns it."""
        if not self.enabled:
            return self.threads
        now = time.perf_counter()
        if not force and now - self.last_check < self.recheck_seconds:
            return self.threads
        self.last_check = now
        if self.fixed is not None:
            want = self.fixed
        else:
            samples = []
            for _ in range(5):
                n = _running_elsewhere()
                if n is None:
                    return self.threads
                samples.append(n)
                time.sleep(0.002)
            busy = sorted(samples)[len(samples) // 2]
            want = max(1, min(self.cores, self.cores - busy))
        if want != self.threads:
            torch.set_num_threads(want)
            self.threads = want
        return want

    def restore(self) -> None:
        if self.enabled and torch.get_num_threads() != self.original:
            torch.set_num_threads(self.original)
