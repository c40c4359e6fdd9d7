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

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalelab.config import DataConfig
from scalelab.data.cache import TokenData
from scalelab.data.subset_file import SelectionError, Units
from scalelab.runs import FinishedRun, open_run

if TYPE_CHECKING:
    import torch.nn as nn


Reference = FinishedRun  # a reference run is a finished run, opened by scalelab.runs


def load_reference(run: str | Path, *, template: bool = False) -> FinishedRun:
    """The finished causal run in directory ``run``, its newest intact checkpoint loaded on
    first use of ``.model`` (``template``: its config alone, for ``active``'s template)."""
    ref = open_run(run, what="--reference", initial=template)
    if not ref.cfg.model.causal:
        raise SelectionError(
            f"--reference {run} is a masked-LM encoder (model.causal = false): its loss is "
            "not a per-token likelihood; use a causal run"
        )
    # the id the selection file records is the config's hash (a run's directory name)
    return replace(ref, run_id=ref.cfg.run_id())


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


__all__ = ["Reference", "data_config_for", "load_reference", "unit_stats"]
