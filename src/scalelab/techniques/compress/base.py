"""What every compression method shares: the parent run, its Linears, evaluation, bit counts.

Bits are **counted** from the tensors that would be stored, never estimated from a
nominal width. Every parameter tensor (each tied tensor once) has a :class:`TensorCost`:

* untouched tensors: ``numel x 16`` (the 16-bit checkpoint a model is shipped in; the
  baseline of Dettmers and Zettlemoyer 2023);
* sparse tensors: the cheapest of four named encodings of the zeros actually present --
  dense, a bitmask (``numel`` bits + 16 per nonzero), CSR (16 + ``ceil(log2 cols)`` per
  nonzero + 32 per row pointer), or whole zero rows/columns dropped (16 per kept value +
  one bit per row or column);
* quantized tensors: ``numel x bits`` codes + per group a 16-bit scale and a ``bits``-bit
  zero point (``scalelab.techniques.compress.quant``);
* low-rank tensors: the two 16-bit factors (``scalelab.techniques.compress.lowrank``);
* shared tensors: counted once (``scalelab.techniques.compress.share``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scalelab.config import RunConfig
from scalelab.errors import ConfigError

BASE_BITS = 16  # an untouched weight is stored as a 16-bit float


@dataclass
class TensorCost:
    """The stored size of one parameter tensor."""

    name: str
    numel: int
    nonzero: int
    bits: int
    encoding: str  # "dense16", "bitmask", "csr", "rows", "cols", "quant4g128", "lowrank8", ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Parent:
    """A finished run loaded for compression (weights in fp32 on ``device``)."""

    run_dir: Path
    cfg: RunConfig
    model: nn.Module
    summary: dict[str, Any]

    @property
    def run_id(self) -> str:
        return self.run_dir.name


def load_parent(run: str | Path, device: torch.device | None = None) -> Parent:
    """The finished run ``run`` (:func:`scalelab.runs.open_run`), its newest intact
    checkpoint on ``device``."""
    from scalelab.runs import open_run

    opened = open_run(run)
    if opened.is_export:
        raise ConfigError(f"{run} is a Hugging Face export: compress the run it was made from")
    model = opened.load_model(device or torch.device("cpu"))
    return Parent(opened.path, opened.cfg, model, opened.summary)


def body_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The Linears of the transformer body (every ``blocks.*`` Linear), in forward order.

    Embeddings and the output head stay at 16 bits, as GPTQ (Frantar et al. 2022, sec. 5)
    and LLM.int8 leave them; the head is tied to the embedding in most scalelab models.
    """
    out = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.startswith("blocks.")
    ]
    if not out:
        raise ConfigError(
            f"{type(model).__name__} has no Linear layers under blocks.*: nothing to compress"
        )
    return out


def unique_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Every parameter tensor once (tied weights, shared layers: under their first name)."""
    seen: set[int] = set()
    out = []
    for name, p in model.named_parameters(remove_duplicate=False):
        key = p.data_ptr()
        if key in seen:
            continue
        seen.add(key)
        out.append((name, p))
    return out


def dense_cost(name: str, t: torch.Tensor) -> TensorCost:
    n = t.numel()
    return TensorCost(name, n, int((t != 0).sum()), n * BASE_BITS, "dense16")


def sparse_cost(name: str, t: torch.Tensor) -> TensorCost:
    """The cheapest stored form of the zeros in ``t`` (see the module docstring)."""
    n, nnz = t.numel(), int((t != 0).sum())
    options = {"dense16": n * BASE_BITS, "bitmask": n + nnz * BASE_BITS}
    if t.dim() == 2:
        rows, cols = t.shape
        options["csr"] = nnz * (BASE_BITS + max(1, math.ceil(math.log2(cols)))) + 32 * (rows + 1)
        kept_rows = int((t != 0).any(dim=1).sum())
        kept_cols = int((t != 0).any(dim=0).sum())
        options["rows"] = kept_rows * cols * BASE_BITS + rows
        options["cols"] = kept_cols * rows * BASE_BITS + cols
    enc = min(options, key=lambda k: options[k])
    return TensorCost(name, n, nnz, int(options[enc]), enc)


def model_costs(model: nn.Module, special: dict[str, TensorCost] | None = None) -> list[TensorCost]:
    """One cost per unique parameter tensor: ``special`` ones as given, others dense."""
    special = special or {}
    return [
        special.get(name) or dense_cost(name, p.detach()) for name, p in unique_parameters(model)
    ]


@torch.no_grad()
def evaluate(cfg: RunConfig, model: nn.Module, data: Any, device: torch.device) -> float:
    """The validation loss on the run's own validation windows, in fp32 (so a dequantized
    weight is scored exactly as stored)."""
    from scalelab.train.device import Precision
    from scalelab.train.evaluate import Evaluator

    return Evaluator(cfg, data, device, Precision("fp32", "compression eval"))(model)


def load_data(cfg: RunConfig) -> Any:
    """The run's token data (its training fraction, its validation split)."""
    from scalelab.data import load_tokens

    data = load_tokens(cfg.data, cfg.model.vocab_size)
    if cfg.data.fraction < 1.0:
        data = data.fraction_of_train(cfg.data.fraction)
    return data


def calibration_batch(
    cfg: RunConfig, data: Any, sequences: int, device: torch.device, seed: int = 0
) -> torch.Tensor:
    """``sequences`` windows of the *training* split (GPTQ's calibration sample)."""
    from scalelab.train.batches import TrainSampler

    sampler = TrainSampler(data.train, cfg.model.context, cfg.train.seed + 1000 + seed)
    x, _ = sampler.batch(0, sequences, device)
    return x
