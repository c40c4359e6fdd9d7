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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from scalelab import atomic
from scalelab.errors import ConfigError

# bf16 must beat fp32 by this factor in the probe before "auto" chooses it on a CPU: a mild
# win in a 256-wide matmul does not survive the extra casts of autocast in a real step.
BF16_MIN_SPEEDUP = 1.3


def available_memory(device: torch.device) -> int | None:
    """Bytes a new allocation may take on ``device``: free GPU memory, or the OS's
    ``MemAvailable`` (free plus reclaimable cache) on a CPU; None where unknown."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


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
    # seconds per forward-backward step of the run's model, where "auto" timed them
    timings: Mapping[str, float] | None = None

    @property
    def dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.name == "bf16" else None

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast around forward and loss; fp32 runs without a context."""
        if self.name == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


PRECISIONS = ("fp32", "bf16")


def resolve_precision(
    precision: str,
    device: torch.device,
    cache_dir: str | Path | None = None,
    *,
    kept: str | None = None,
    probe: Callable[[], Precision] | None = None,
) -> Precision:
    """The precision a run uses: ``train.precision`` when it names one; for ``"auto"``, the
    precision a resumed run started with (``kept``: one run never mixes two), then
    ``SCALELAB_PRECISION`` (``fp32`` or ``bf16``, to force a whole test suite or sweep one
    way), then the rule below. Call it after the run's thread count is applied: the CPU
    probe is measured, and cached, at the current thread count.

    On a CPU, ``probe`` (the trainer's: :mod:`scalelab.train.precision_probe`, which times
    the run's own model in both precisions) decides; without one, a 256-wide matmul probe
    (:func:`cpu_bf16_speedup`) does, for callers that have no model to time."""
    if precision == "auto" and kept is not None:
        if kept not in PRECISIONS:
            raise ConfigError(f"the checkpoint records precision {kept!r}, not one of {PRECISIONS}")
        return Precision(kept, "kept from the checkpoint (train.precision = 'auto' chose it)")
    env = os.environ.get("SCALELAB_PRECISION", "").strip()
    if precision == "auto" and env and env != "auto":
        if env not in PRECISIONS:
            raise ConfigError(
                f"SCALELAB_PRECISION = {env!r}: set it to fp32, bf16 or auto (or unset it)"
            )
        precision = env
        if env == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("SCALELAB_PRECISION = 'bf16' but this GPU has no bf16 support")
        return Precision(env, "set by SCALELAB_PRECISION (train.precision = 'auto')")
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
    if device.type == "cpu" and probe is not None:
        return probe()
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


# the variables that cap the instruction set the kernels use below what the CPU has
# (PyTorch's own ATen kernels; oneDNN's, under its current and its older name; MKL's): a
# timing taken under a cap is not the CPU's (an AVX2-only machine emulated on an AVX512 one)
ISA_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
)


def cpu_capability() -> str:
    """The instruction set the kernels really use: ATen's dispatch level (``AVX512``,
    ``AVX2``, ...) and any cap set by :data:`ISA_VARIABLES`."""
    try:
        aten = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        aten = "unknown"
    caps = [f"{v}={os.environ[v]}" for v in ISA_VARIABLES if os.environ.get(v)]
    return ";".join([aten, *caps])


def cpu_key() -> str:
    """This CPU (model name and flags), the instruction set the kernels use
    (:func:`cpu_capability`), the torch version and the thread count, hashed."""
    return _cpu_key()


def _cpu_key() -> str:
    model = platform.processor() or platform.machine()
    try:  # the model name and flags identify the matrix units better than platform does
        info = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags"))][:2]
        model = "\n".join(lines) or model
    except OSError:
        pass
    blob = (
        f"{model}|isa {cpu_capability()}|torch {torch.__version__}"
        f"|threads {torch.get_num_threads()}"
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_root(cache_dir: str | Path | None) -> Path:
    """Where measurements are cached: ``cache_dir``, else ``$SCALELAB_CACHE``, else
    ``~/.cache/scalelab``."""
    return _cache_root(cache_dir)


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
        atomic.write_json(path, cached, indent=1)
    except OSError:
        pass  # an unwritable cache only costs a re-measurement next time
    return speedup


# Below this many forward FLOPs per micro-batch a second thread buys nothing (measured on
# the 2-core build machine: a 2-layer, d_model 32 model on 256-token micro-batches ran at
# 82k tokens/s on 1 thread and 83k on 2; d_model 64 on 1024 tokens, 270 MFLOP, at 44k and
# 70k), while any other process on the machine makes the threads wait for each other.
SMALL_WORK_FLOPS = 5e7


class ThreadPolicy:
    """How many CPU threads a run's kernels use, fixed for the whole run.

    Fork-join parallelism collapses when a machine is oversubscribed: every parallel region
    waits for its slowest thread, and a thread that shares its core with another process
    waits for a scheduler slice. Measured on the 2-core build machine while other jobs ran,
    a tiny model's step was up to 20x slower on 2 threads than on 1. So runs whose
    micro-batches are too small to gain from threads use one; bigger ones use PyTorch's
    default (one per core). ``SCALELAB_THREADS=N`` overrides the rule: a sweep that runs k
    jobs side by side on one machine should set N = cores / k.

    The count is chosen once per run and a resumed run keeps it, because results are not
    bit-identical across thread counts (reductions split differently): a run with
    ``SCALELAB_THREADS=1`` and one with 2 threads drift apart by ~1e-2 in loss after a few
    hundred steps of a tiny model. The count is recorded in ``summary.json`` and the metrics.
    """

    def __init__(
        self, device: torch.device, work_flops: float, resumed_threads: int | None = None
    ) -> None:
        self.original = torch.get_num_threads()
        self.enabled = device.type == "cpu"
        env = os.environ.get("SCALELAB_THREADS")
        if env:
            try:
                self.count = max(1, int(env))
            except ValueError:
                raise ConfigError(f"SCALELAB_THREADS must be an integer, got {env!r}") from None
            self.reason = "SCALELAB_THREADS"
        elif resumed_threads is not None:
            self.count, self.reason = resumed_threads, "kept from the checkpoint"
        elif work_flops < SMALL_WORK_FLOPS:
            self.count, self.reason = 1, "micro-batch too small to gain from threads"
        else:
            self.count, self.reason = self.original, "one per core (PyTorch default)"

    def apply(self) -> None:
        if self.enabled and torch.get_num_threads() != self.count:
            torch.set_num_threads(self.count)

    def restore(self) -> None:
        if self.enabled and torch.get_num_threads() != self.original:
            torch.set_num_threads(self.original)
