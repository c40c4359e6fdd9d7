"""A finished run as a reference model: per-unit mean loss and mean hidden state.

``perplexity`` and ``prototype`` score units with a small model trained beforehand (Marion
et al. 2023; Ankner et al. 2024 used a 125M reference to prune data for a 3B model), and
``active`` with the small models of its own rounds. One forward over the training stream
serves all of them: the stream is cut into windows of ``context`` inputs (the
next-token targets shifted by one, the tail padded and masked), each target's loss is
charged to the unit it belongs to, and each input position's final hidden state (the input
of the output head) to the unit of that position.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalelab.config import DataConfig, RunConfig, run_config_from_dict
from scalelab.data.cache import TokenData
from scalelab.errors import StoreError
from scalelab.select.selection import SelectionError, Units

if TYPE_CHECKING:
    import torch.nn as nn


@dataclass
class Reference:
    """A reference run: its directory, resolved config and model (weights loaded, eval mode)."""

    run_dir: Path
    cfg: RunConfig
    model: nn.Module
    run_id: str


def load_reference(run: str | Path) -> Reference:
    """Load the newest intact checkpoint of the finished run in directory ``run``."""
    from scalelab.models import build_model
    from scalelab.train import rundir
    from scalelab.train.checkpoint import latest_checkpoint

    run_dir = Path(run)
    if not (run_dir / rundir.CONFIG).is_file():
        raise SelectionError(
            f"--reference {run_dir}: not a run directory (no {rundir.CONFIG}); give the "
            "directory of a finished run (train one with scalelab train)"
        )
    cfg = run_config_from_dict(rundir.read_json(run_dir / rundir.CONFIG))
    if not cfg.model.causal:
        raise SelectionError(
            f"--reference {run_dir} is a masked-LM encoder (model.causal = false): its loss is "
            "not a per-token likelihood; use a causal run"
        )
    ckpt = latest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        raise SelectionError(f"--reference {run_dir} has no intact checkpoint: train it first")
    model = build_model(cfg.model)
    ckpt.restore(model)
    model.eval()
    return Reference(run_dir, cfg, model, cfg.run_id())


def data_config_for(data_cfg: DataConfig, corpus: str | None) -> DataConfig:
    """The data settings to read ``corpus`` as a run with ``data_cfg`` read its own (same
    tokenizer and vocabulary), whole (no selection, no fraction).

    A BPE tokenizer is trained per corpus, so another corpus under the same settings would
    get other merges than the reference's embeddings mean: refused, unless the tokenizer is
    ``bytes`` (the same for every corpus)."""
    if corpus is not None and corpus != data_cfg.corpus:
        if data_cfg.tokenizer != "bytes":
            raise SelectionError(
                f"the reference run was trained on {data_cfg.corpus!r} with a BPE tokenizer "
                f"learnt from it, so it cannot score {corpus!r}: use a reference trained on "
                "this corpus, or one with data.tokenizer = 'bytes'"
            )
        data_cfg = replace(data_cfg, corpus=corpus)
    return replace(data_cfg, fraction=1.0, select=None)


def unit_stats(
    model: nn.Module,
    context: int,
    data: TokenData,
    units: Units,
    *,
    hidden: bool = False,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(mean loss in nats/token per unit, mean final hidden state per unit or None).

    A unit none of whose tokens is a target (only possible for the stream's first token)
    gets a NaN loss."""
    import torch
    import torch.nn.functional as F

    train = np.asarray(data.train).astype(np.int64)
    n = len(train)
    if n < 2:
        raise SelectionError("the training split has fewer than 2 tokens: nothing to score")
    owner = units.index_of_positions(n)
    n_win = -(-(n - 1) // context)
    pad = n_win * context + 1 - n
    stream = np.concatenate([train, np.full(pad, data.eos_id, dtype=np.int64)])
    own = np.concatenate([owner, np.full(pad, -1, dtype=np.int32)])
    loss_sum = np.zeros(len(units))
    loss_n = np.zeros(len(units))
    hid_sum: torch.Tensor | None = None
    hid_n = np.zeros(len(units))
    captured: dict[str, Any] = {}
    handle = None
    if hidden:
        head = getattr(model, "head", None)
        if not isinstance(head, torch.nn.Module):
            raise SelectionError(
                f"{type(model).__name__} has no output head layer to read hidden states from; "
                "use a transformer reference"
            )
        handle = head.register_forward_pre_hook(lambda _m, args: captured.update(h=args[0]))
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for w0 in range(0, n_win, batch_size):
                w1 = min(n_win, w0 + batch_size)
                idx = np.arange(w0, w1)[:, None] * context + np.arange(context + 1)[None, :]
                seq = torch.from_numpy(stream[idx]).to(device)
                logits = model(seq[:, :-1]).float()
                loss = (
                    F.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]),
                        seq[:, 1:].reshape(-1),
                        reduction="none",
                    )
                    .cpu()
                    .numpy()
                )
                tgt_owner = own[idx[:, 1:]].reshape(-1)
                ok = tgt_owner >= 0
                loss_sum += np.bincount(tgt_owner[ok], loss[ok], minlength=len(units))
                loss_n += np.bincount(tgt_owner[ok], minlength=len(units))
                if hidden:
                    h = captured["h"].float().reshape(-1, captured["h"].shape[-1]).cpu()
                    in_owner = own[idx[:, :-1]].reshape(-1)
                    keep = torch.from_numpy(np.flatnonzero(in_owner >= 0))
                    if hid_sum is None:
                        hid_sum = torch.zeros(len(units), h.shape[-1])
                    hid_sum.index_add_(
                        0, torch.from_numpy(in_owner[keep.numpy()].astype(np.int64)), h[keep]
                    )
                    hid_n += np.bincount(in_owner[in_owner >= 0], minlength=len(units))
    finally:
        if handle is not None:
            handle.remove()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_loss = np.where(loss_n > 0, loss_sum / np.maximum(loss_n, 1), np.nan)
    mean_hidden = None
    if hidden and hid_sum is not None:
        mean_hidden = (hid_sum / torch.from_numpy(np.maximum(hid_n, 1))[:, None].float()).numpy()
    return mean_loss, mean_hidden


def check_finished(run_dir: Path) -> None:
    from scalelab.train import rundir

    try:
        summary = rundir.read_json(run_dir / rundir.SUMMARY)
    except StoreError:
        raise SelectionError(f"--reference {run_dir} has no summary.json: let it finish") from None
    if summary.get("status") not in ("finished", "stopped_early"):
        raise SelectionError(
            f"--reference {run_dir} is {summary.get('status')!r}, not finished: use a finished run"
        )


__all__ = ["Reference", "check_finished", "data_config_for", "load_reference", "unit_stats"]
