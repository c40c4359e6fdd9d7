"""Evaluation: the mean validation loss of a model on the run's fixed validation windows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalelab.config import RunConfig
from scalelab.train.batches import gather, mlm_corrupt, mlm_generator, val_windows
from scalelab.train.device import Precision
from scalelab.train.stream import TokenSource


class Evaluator:
    """Mean loss (nats per predicted token) on the fixed validation windows."""

    def __init__(
        self,
        cfg: RunConfig,
        data: TokenSource,
        device: torch.device,
        precision: Precision,
        chunk: int | None = None,
    ) -> None:
        self.cfg, self.data, self.device, self.precision = cfg, data, device, precision
        self.mlm = cfg.train.objective == "mlm"
        length = cfg.model.context + (0 if self.mlm else 1)
        starts = val_windows(np.asarray(data.val), cfg.model.context, cfg.train.eval_batches)
        self.chunk = chunk or cfg.train.micro_batch_size or cfg.train.batch_size
        self.batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.count = 0
        for i in range(0, len(starts), self.chunk):
            seq = gather(data.val, starts[i : i + self.chunk], length, device)
            if self.mlm:
                assert data.mask_id is not None
                gen = mlm_generator(0x7A1, i)  # no seed: the same corruption for every run
                self.batches.append(mlm_corrupt(seq, data.mask_id, data.vocab_size, gen))
            else:
                self.batches.append((seq[:, :-1], seq[:, 1:]))
            y = self.batches[-1][1]
            self.count += int((y != -100).sum()) if self.mlm else y.numel()

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        was_training = model.training
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for x, y in self.batches:
            with self.precision.autocast(self.device):
                logits = model(x)
            total += F.cross_entropy(
                logits.flatten(0, 1).float(), y.flatten(), ignore_index=-100, reduction="sum"
            )
        model.train(was_training)
        return float(total) / max(self.count, 1)
