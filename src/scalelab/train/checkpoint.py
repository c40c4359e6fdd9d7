"""Checkpoints that survive a kill at any instant.

A checkpoint is a directory ``checkpoint/step-00000500/`` holding

* ``model.safetensors``: the weights (tied tensors stored once),
* ``optimizer.pt``: the optimizer's state dict (tensors and plain values only; loaded with
  ``weights_only=True``),
* ``rng.pt``: the global torch RNG states (CPU and CUDA),
* ``state.json``: the loop's counters (step, tokens, best validation loss, timers, ...),
* ``manifest.json``: size and SHA-256 of every file above, written last.

It is assembled under a temporary name and renamed into place, so a reader sees either a
complete checkpoint or none; the manifest also catches files damaged afterwards (a full
disk, a copy cut short). Loading walks the checkpoints newest first and takes the first
one whose manifest checks out. The newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from scalelab import atomic

MANIFEST = "manifest.json"
FILES = ("model.safetensors", "optimizer.pt", "rng.pt", "state.json")
PREFIX = "step-"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_fails(folder: Path) -> OSError | None:
    """The OSError a 64 KiB write into ``folder`` meets now (a full disk), or None."""
    probe = folder / ".space-probe"
    try:
        with probe.open("wb") as f:
            f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        e.filename = str(folder)
        return e
    finally:
        probe.unlink(missing_ok=True)
    return None


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; prune all but the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{PREFIX}{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_model(model, str(tmp / "model.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(rng_state(), tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        atomic.share_like_open(tmp)
        manifest = {
            "step": step,
            "files": {
                n: {"bytes": (tmp / n).stat().st_size, "sha256": _sha256(tmp / n)} for n in FILES
            },
        }
        for name in FILES:
            _fsync(tmp / name)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync(tmp / MANIFEST)
    except BaseException as e:
        # torch and safetensors report a full disk as their own RuntimeError ("iostream
        # error", "unexpected pos"): ask the filesystem itself, before the half-written
        # checkpoint is removed, so the caller sees the OSError (ENOSPC, EFBIG) it was
        full = None if isinstance(e, OSError | KeyboardInterrupt) else _write_fails(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if full is not None:
            raise full from e
        raise
    if final.exists():  # a re-run of the same step (resume after a crash): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_temporaries(root: Path) -> None:
    """Remove checkpoints a killed process left half-written (``.tmp-step-...-PID``). Call
    only while holding the run's lock: then no other process can be writing one."""
    if root.is_dir():
        for tmp in root.glob(f".tmp-{PREFIX}*"):
            shutil.rmtree(tmp, ignore_errors=True)


def list_checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories under ``root``, oldest first (temporary ones excluded)."""
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(dirs, key=lambda p: p.name)


def verify(path: Path) -> str | None:
    """None if the checkpoint at ``path`` is complete and intact, else what is wrong."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return "no readable manifest (the write was cut short)"
    for name in FILES:
        entry = manifest.get("files", {}).get(name)
        f = path / name
        if entry is None or not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != entry["bytes"] or _sha256(f) != entry["sha256"]:
            return f"{name} does not match its checksum"
    return None


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]

    def restore(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Load weights (and optimizer and RNG state) into the given objects."""
        device = next(model.parameters()).device
        load_model(model, str(self.path / "model.safetensors"), strict=True, device=str(device))
        if optimizer is not None:
            # Loaded on the CPU: load_state_dict moves each tensor to its parameter's device
            # (and keeps AdamW's step counters where the fused/foreach kernels expect them).
            opt_state = torch.load(
                self.path / "optimizer.pt", map_location="cpu", weights_only=True
            )
            optimizer.load_state_dict(opt_state)
            set_rng_state(torch.load(self.path / "rng.pt", weights_only=True))


def latest_checkpoint(
    root: Path, on_skip: Callable[[Path, str], None] | None = None
) -> Checkpoint | None:
    """The newest intact checkpoint under ``root``; damaged ones are skipped, each told to
    ``on_skip(path, problem)`` (default: a warning)."""
    for path in reversed(list_checkpoints(root)):
        problem = verify(path)
        if problem is not None:
            if on_skip is not None:
                on_skip(path, problem)
            else:
                warnings.warn(f"skipping checkpoint {path}: {problem}", stacklevel=2)
            continue
        state = json.loads((path / "state.json").read_text())
        return Checkpoint(path, int(state["step"]), state)
    return None
