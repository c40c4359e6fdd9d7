"""One run on several processes: data parallel training with ``torch.distributed``.

``train_distributed(cfg, out, nproc=N)`` (``scalelab train CONFIG --nproc N``) spawns N
processes on this machine; under ``torchrun --nproc-per-node N -m scalelab train CONFIG``
(clusters) each process is started by torchrun and :func:`torchrun_rank` finds its place
from the environment. Either way every process runs the ordinary trainer
(:mod:`scalelab.train.loop`) with a rank:

* the global batch of a step is the one a single process would draw (the sampler is a
  function of the step), and rank r trains its rows ``[r B/N, (r+1) B/N)``; the model is
  wrapped in ``DistributedDataParallel``, which averages gradients over ranks (the loss is
  scaled by N so the average is the single-process gradient of the global mean loss);
* backends: gloo on CPUs, NCCL on GPUs (rank r on ``cuda:r`` of its node);
* every rank evaluates the same validation windows (the weights are equal, so are the
  values, and early stopping agrees everywhere without messages);
* rank 0 alone writes ``config.json``, metrics, checkpoints and ``summary.json``; a
  checkpoint holds the whole model and optimizer, so ``--resume`` works on any process
  count that divides ``train.batch_size``;
* a rank that dies (``kill -9``) takes the others down (torch.multiprocessing terminates
  the rest), the run stays resumable from its last checkpoint.

Losses agree with one process to the order in which sums are reduced (fp32: ~1e-6
relative per step; pin ``train.precision = "fp32"`` to compare).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from pathlib import Path
from typing import Any

from scalelab.config import RunConfig
from scalelab.errors import ConfigError, TrainingError


def check_nproc(cfg: RunConfig, nproc: int) -> int:
    """Sequences per process and step; a ConfigError if ``nproc`` cannot split the batch."""
    b = cfg.train.batch_size
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if b % nproc:
        raise ConfigError(
            f"--nproc {nproc} does not divide train.batch_size ({b}): each process trains "
            f"batch_size / nproc sequences; pick a divisor of {b}"
        )
    local = b // nproc
    mb = cfg.train.micro_batch_size
    if mb is not None and mb < local and local % mb:
        raise ConfigError(
            f"train.micro_batch_size ({mb}) must divide the {local} sequences each of "
            f"{nproc} processes trains per step"
        )
    have, what = _slots(cfg.train.device)
    if nproc > have:  # more ranks than slots only thrash (--nproc 1000 took a load of 67)
        raise ConfigError(
            f"--nproc {nproc} is more than the {have} {what} this machine has: one process per "
            f"{what.rstrip('s')}, so give at most {have}"
        )
    if cfg.train.compile and nproc > 1:
        raise ConfigError(
            "train.compile with --nproc > 1 is not supported: set train.compile = false"
        )
    return local


def _slots(device: str) -> tuple[int, str]:
    """How many ranks the machine can place: its GPUs on a GPU run, else its CPUs."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.device_count(), "GPUs"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cpus or 1), "CPUs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(
    rank: int,
    world: int,
    cfg: RunConfig,
    out: str,
    resume: bool,
    progress: bool,
    init_method: str,
    threads: int | None,
) -> None:
    """The body of one process: join the group, train its share, leave."""
    import dataclasses

    import torch
    import torch.distributed as dist

    from scalelab.train import loop, preflight
    from scalelab.train.device import resolve_device

    if threads is not None:
        os.environ["SCALELAB_THREADS"] = str(threads)
    device = resolve_device(cfg.train.device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device=f"cuda:{local}"))
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)
    try:
        run_dir = Path(out) / cfg.run_id()
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = preflight.run_lock(run_dir) if rank == 0 else contextlib.nullcontext()
        with lock:
            done = [None]
            if rank == 0:
                try:
                    done = [preflight.prepare_dir(run_dir, resume) is not None]
                except TrainingError as e:
                    done = [str(e)]
            dist.broadcast_object_list(done, src=0)
            if isinstance(done[0], str):
                raise TrainingError(done[0])
            if done[0]:
                return  # a finished run: nothing to train
            run = loop._Run(cfg, run_dir, None, progress and rank == 0, rank=rank, world=world)
            run.run()
    finally:
        dist.destroy_process_group()


def train_distributed(
    cfg: RunConfig,
    out: str | Path = "runs",
    *,
    nproc: int = 2,
    resume: bool = False,
    progress: bool = True,
    threads: int | None = None,
) -> Any:
    """Train ``cfg`` on ``nproc`` processes of this machine; returns rank 0's RunSummary.

    ``threads``: torch threads per process (default: the trainer's policy, i.e. one thread
    for small models); ``SCALELAB_THREADS`` in the environment does the same.
    """
    from scalelab.train.summary import RunSummary

    check_nproc(cfg, nproc)
    if nproc == 1:
        from scalelab.train import train

        return train(cfg, out, resume=resume, progress=progress)
    from scalelab.data import load_tokens

    load_tokens(cfg.data, cfg.model.vocab_size)  # build the token cache once, before the ranks
    import torch.multiprocessing as mp

    init = f"tcp://127.0.0.1:{_free_port()}"
    # when a rank dies, torch logs "Terminating process N via signal SIGTERM" for the others
    # before it raises: the error below says it, so stderr stays one line (issue 22)
    spawn_log = logging.getLogger("torch.multiprocessing.spawn")
    level = spawn_log.level
    spawn_log.setLevel(logging.ERROR)
    try:
        mp.start_processes(
            _rank_main,
            args=(nproc, cfg, str(out), resume, progress, init, threads),
            nprocs=nproc,
            join=True,
            start_method="spawn",
        )
    except mp.ProcessExitedException as e:
        raise TrainingError(
            f"process {e.error_index} of {nproc} died ({e}); the run keeps its last "
            "checkpoint: continue it with --resume"
        ) from None
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else "an error"
        raise TrainingError(f"a training process failed: {last}") from None
    finally:
        spawn_log.setLevel(level)
    return RunSummary.load(Path(out) / cfg.run_id())


def torchrun_rank() -> tuple[int, int] | None:
    """``(rank, world size)`` when started by torchrun (``RANK``/``WORLD_SIZE`` set), else None."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return None


def train_torchrun(
    cfg: RunConfig, out: str | Path = "runs", *, resume: bool = False, progress: bool = True
) -> Any:
    """The body of ``torchrun ... -m scalelab train CONFIG``: this process's rank of the run
    (the group from torchrun's environment, ``env://``); returns rank 0's summary."""
    from scalelab.train.summary import RunSummary

    found = torchrun_rank()
    assert found is not None
    rank, world = found
    check_nproc(cfg, world)
    _rank_main(rank, world, cfg, str(out), resume, progress, "env://", None)
    path = Path(out) / cfg.run_id()
    return RunSummary.load(path) if (path / "summary.json").is_file() else None


__all__ = ["check_nproc", "torchrun_rank", "train_distributed", "train_torchrun"]
