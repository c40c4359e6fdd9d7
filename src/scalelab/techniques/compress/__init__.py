"""Compression of a finished run, written as a derived run with an exact size.

``compress(run, method, level)`` loads a finished run, applies one method to the Linears
of its body, optionally fine-tunes to recover (``recover=TOKENS``), evaluates it on the
run's validation windows in fp32, and writes a **derived run**: its own directory (by
default beside the parent), holding the parent's ``config.json``, the compressed weights
(dequantized, so any scalelab tool can load them), ``summary.json`` with a
``compression`` block, and ``compression.json`` with the stored size of every tensor.
With ``db`` it also becomes a point in the results store (``kind = "compressed"``,
``technique`` = the method, ``parent_run_id`` = the parent).

Methods (one file each): ``prune`` (level: fraction removed; ``structure`` unstructured,
heads or neurons; ``scope`` layer or global), ``quant`` (level: bits; ``group``;
``algorithm`` rtn or gptq), ``lowrank`` (level: rank, or an energy fraction below 1),
``share`` (level: adjacent blocks per tied group).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab.errors import ConfigError
from scalelab.techniques.compress.base import TensorCost
from scalelab.techniques.compress_options import METHODS

CALIB_SEQUENCES = 32


@dataclass
class CompressResult:
    """What one compression produced (``summary.json``'s ``compression`` block, and more)."""

    run_dir: Path
    run_id: str
    parent_run_id: str
    method: str
    level: float
    options: dict[str, Any]
    val_loss: float
    parent_loss: float
    bits: int
    parent_bits: int
    params: int
    nonzero: int
    recover_tokens: int
    seconds: float
    recover_seconds: float
    costs: list[TensorCost] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Parent bits / compressed bits."""
        return self.parent_bits / self.bits

    def block(self) -> dict[str, Any]:
        """The ``compression`` block of ``summary.json``."""
        return {
            "method": self.method,
            "level": self.level,
            "options": self.options,
            "parent_run_id": self.parent_run_id,
            "parent_loss": self.parent_loss,
            "loss_delta": self.val_loss - self.parent_loss,
            "bits": self.bits,
            "parent_bits": self.parent_bits,
            "ratio": self.ratio,
            "bits_per_param": self.bits / self.params,
            "params": self.params,
            "nonzero": self.nonzero,
            "recover_tokens": self.recover_tokens,
            "seconds": self.seconds,
            "recover_seconds": self.recover_seconds,
        }


def _tag(method: str, level: float, opts: dict[str, Any], recover: int | None) -> str:
    lv = f"{level:g}"
    if method == "prune":
        tag = f"prune-{opts['structure']}-{lv}" + (
            f"-{opts['scope']}" if opts["structure"] == "unstructured" else ""
        )
    elif method == "quant":
        tag = f"quant-{opts['algorithm']}-{lv}b-" + (f"g{opts['group']}" if opts["group"] else "ch")
    elif method == "lowrank":
        tag = f"lowrank-{'r' if level >= 1 else 'e'}{lv}"
    else:
        tag = f"share-k{lv}"
    return tag + (f"-rec{recover}" if recover else "")


def _options(method: str, given: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "prune": {"structure": "unstructured", "scope": "layer"},
        "quant": {"algorithm": "rtn", "group": 0},
        "lowrank": {},
        "share": {},
    }
    allowed = defaults[method]
    extra = [k for k, v in given.items() if v is not None and k not in allowed]
    if extra:
        raise ConfigError(
            f"{', '.join(extra)} do not apply to {method} "
            f"({'its options: ' + ', '.join(allowed) if allowed else 'it takes none'})"
        )
    return {k: given.get(k) if given.get(k) is not None else v for k, v in allowed.items()}


def compress(
    run: str | Path,
    method: str,
    level: float,
    *,
    recover: int | None = None,
    out: str | Path | None = None,
    db: str | Path | None = None,
    study: str = "compress",
    structure: str | None = None,
    scope: str | None = None,
    algorithm: str | None = None,
    group: int | None = None,
    calib_sequences: int = CALIB_SEQUENCES,
    device: str = "cpu",
) -> CompressResult:
    """Compress a finished run; see the module docstring. ``out`` is the derived run's
    directory (default: beside the parent, named ``<parent id>-<method>-<level>...``)."""
    import torch

    from scalelab.techniques.compress import base

    if method not in METHODS:
        from scalelab.errors import did_you_mean

        raise ConfigError(
            f"compression method {method!r} is not one of {', '.join(METHODS)}"
            f"{did_you_mean(method, METHODS)}"
        )
    opts = _options(
        method, {"structure": structure, "scope": scope, "algorithm": algorithm, "group": group}
    )
    if recover is not None and recover < 1:
        raise ConfigError(f"--recover is a number of tokens (>= 1), got {recover}")
    if recover and method == "quant":
        raise ConfigError(
            "quant has no --recover: fine-tuning a quantized model needs quantization-aware "
            "training, which scalelab does not do; use GPTQ (--algorithm gptq) instead"
        )
    _check_level(method, level)
    name = f"{Path(run).name}-{_tag(method, level, opts, recover)}"
    _check_out(Path(out) if out is not None else Path(run).parent / name, name)
    dev = torch.device(device)
    parent = base.load_parent(run, dev)
    cfg, model = parent.cfg, parent.model
    data = base.load_data(cfg)
    parent_loss = base.evaluate(cfg, model, data, dev)
    parent_bits = sum(c.bits for c in base.model_costs(model))

    t0 = time.perf_counter()
    special: dict[str, TensorCost] = {}
    after_step = None
    factors: dict[str, tuple] = {}
    if method == "prune":
        from scalelab.techniques.compress.prune import prune
        from scalelab.techniques.compress.recover import keep_masks

        calib = None
        if opts["structure"] != "unstructured":
            calib = base.calibration_batch(cfg, data, calib_sequences, dev)
        masks = prune(model, level, structure=opts["structure"], scope=opts["scope"], calib=calib)
        after_step = keep_masks(masks)
    elif method == "quant":
        from scalelab.techniques.compress.quant import quantize

        calib = None
        if opts["algorithm"] == "gptq":
            calib = base.calibration_batch(cfg, data, calib_sequences, dev)
        special = quantize(
            model, int(level), group=int(opts["group"]), algorithm=opts["algorithm"], calib=calib
        )
    elif method == "lowrank":
        from scalelab.techniques.compress.lowrank import factorize

        special, factors = factorize(model, level)
    else:
        from scalelab.techniques.compress.share import share

        share(model, int(level))
    seconds = time.perf_counter() - t0

    recovered, t1 = 0, time.perf_counter()
    if recover:
        from scalelab.techniques.compress.recover import recover as fine_tune

        first = int(parent.summary.get("step") or 0) * cfg.train.batch_size
        if method == "lowrank":
            from scalelab.techniques.compress.lowrank import swap_in, swap_out

            swap_in(model, factors)
        recovered = fine_tune(
            model, cfg, data, recover, first_sample=first, device=dev, after_step=after_step
        )
        if method == "lowrank":
            swap_out(model, factors)
    recover_seconds = time.perf_counter() - t1

    if method == "prune":  # count the zeros actually stored (after recovery, too)
        params = dict(model.named_parameters())
        special = {n: base.sparse_cost(n, params[n].detach()) for n in masks}
    costs = base.model_costs(model, special)
    val_loss = base.evaluate(cfg, model, data, dev)
    name = f"{parent.run_id}-{_tag(method, level, opts, recover)}"
    result = CompressResult(
        run_dir=Path(out) if out is not None else parent.run_dir.parent / name,
        run_id=name,
        parent_run_id=parent.run_id,
        method=method,
        level=float(level),
        options=opts,
        val_loss=val_loss,
        parent_loss=parent_loss,
        bits=sum(c.bits for c in costs),
        parent_bits=parent_bits,
        params=sum(c.numel for c in costs),
        nonzero=sum(c.nonzero for c in costs),
        recover_tokens=recovered,
        seconds=seconds,
        recover_seconds=recover_seconds,
        costs=costs,
    )
    if method == "share":
        from scalelab.techniques.compress.share import untie

        untie(model)
    _write_derived(result, parent, model, data)
    if db is not None:
        from scalelab.results.records import point_row, read_run
        from scalelab.results.store import Store

        with Store(db) as store:
            store.put_point(point_row(read_run(result.run_dir), study=study))
    return result


def _check_level(method: str, level: float) -> None:
    """Range checks before any loading (the methods check again, in detail)."""
    ok = {
        "prune": 0 <= level < 1,
        "quant": level in (2, 3, 4, 5, 6, 8, 16),
        "lowrank": level > 0 and (level < 1 or float(level).is_integer()),
        "share": level >= 2 and float(level).is_integer(),
    }[method]
    if not ok:
        what = {
            "prune": "the fraction removed, in [0, 1)",
            "quant": "the bits per weight: 2, 3, 4, 5, 6, 8 or 16",
            "lowrank": "a whole rank >= 1, or an energy fraction in (0, 1)",
            "share": "the adjacent blocks per group, a whole number >= 2",
        }[method]
        raise ConfigError(f"{method} --level {level:g} is out of range: it is {what}")


def _check_out(target: Path, name: str) -> None:
    """The derived run goes to a new path or replaces this same compression's earlier
    output; never a run, another derived run, an export or a store (refused before work)."""
    from scalelab.outputs import check_output

    check_output(
        target,
        "--out",
        folder=True,
        own=lambda a: a.kind == "derived run" and a.summary.get("run_id") == name,
    )


def _write_derived(result: CompressResult, parent: Any, model: Any, data: Any) -> None:
    """The derived run directory, written under a temporary name and renamed into place."""
    import torch

    from scalelab import rundir
    from scalelab.train.checkpoint import save_checkpoint

    s = dict(parent.summary)
    tokens = int(s.get("tokens") or 0) + result.recover_tokens
    per_token = float((s.get("flops") or {}).get("train_per_token") or 0.0)
    bpt = s.get("bytes_per_token")
    summary = {
        **{k: s.get(k) for k in ("params", "flops", "unique_tokens", "entropy_rate", "eos_id")},
        "run_id": result.run_id,
        "status": "finished",
        "reason": None,
        "step": int(s.get("step") or 0),
        "tokens": tokens,
        "val_loss": result.val_loss,
        "val_bpb": result.val_loss / 0.6931471805599453 / bpt if bpt else None,
        "best_val_loss": result.val_loss,
        "train_loss": None,
        "flops_total": float(s.get("flops_total") or 0.0) + per_token * result.recover_tokens,
        "six_nd": s.get("six_nd"),
        "bytes_per_token": bpt,
        "epochs": tokens / s["unique_tokens"] if s.get("unique_tokens") else None,
        "wall_seconds": result.seconds + result.recover_seconds,
        "tokens_per_second": None,
        "compression": result.block(),
    }
    final = result.run_dir
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rundir.write_json(tmp / rundir.CONFIG, parent.cfg.to_dict())
        rundir.write_json(tmp / "compression.json", [c.to_dict() for c in result.costs])
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # a checkpoint carries an optimizer
        save_checkpoint(
            tmp / rundir.CHECKPOINTS, summary["step"], model, opt, {"step": summary["step"]}
        )
        rundir.write_json(tmp / rundir.SUMMARY, summary)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
