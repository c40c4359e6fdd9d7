"""Training batches, validation windows and masked-LM corruption.

Training order is a pure function of ``(seed, sample index)``: the train array is cut into
``n_windows`` non-overlapping windows of ``context + 1`` tokens (inputs and their shifted
targets); epoch ``e`` visits them in a permutation drawn from ``(seed, e)``, with the grid
shifted by a per-epoch offset when the array leaves slack at its end. Sample ``k`` of a run is
window ``perm_e[k mod n_windows]`` of epoch ``e = k div n_windows``. Resuming therefore needs
only the step counter, one epoch sees every window once (so ``train.epochs`` counts passes over
``TokenData.train``), and repeated epochs of a small corpus see the windows in new orders.

Validation windows are a function of the validation array and the context only (never of a
run's seed or batch size), so every run on a corpus and context is scored on the same tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from scalelab.errors import DataError

# Masked LM corruption (Devlin et al. 2019, sec. 3.1): 15% of positions are chosen; of those,
# 80% become the mask token, 10% a random token, 10% stay as they are.
MLM_RATE, MLM_MASK, MLM_RANDOM = 0.15, 0.8, 0.1
# Validation sequences per evaluation batch: ``train.eval_batches`` x 32 windows in all.
VAL_SEQUENCES_PER_BATCH = 32
_SALT = 0x5CA1AB  # keeps these streams apart from other uses of the same seed


def _as_tensor(chunk: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(chunk.astype(np.int64, copy=False))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class TrainSampler:
    """Deterministic, resumable window order over a 1-D token array."""

    def __init__(self, tokens: np.ndarray, context: int, seed: int) -> None:
        if tokens.ndim != 1:
            raise DataError(f"train tokens must be a 1-D array, got shape {tokens.shape}")
        self.tokens, self.context, self.seed = tokens, context, seed
        self.n_windows = (len(tokens) - 1) // context
        if self.n_windows < 1:
            raise DataError(
                f"the train split has {len(tokens)} tokens, fewer than model.context + 1 = "
                f"{context + 1}: use a bigger corpus or a smaller model.context"
            )
        self.slack = (len(tokens) - 1) - self.n_windows * context
        self._offsets = np.arange(context + 1)
        self._cache: dict[int, tuple[np.ndarray, int]] = {}

    def _epoch(self, epoch: int) -> tuple[np.ndarray, int]:
        if epoch not in self._cache:
            rng = np.random.default_rng([self.seed, epoch, _SALT])
            shift = int(rng.integers(0, self.slack + 1))
            if len(self._cache) >= 2:  # a run moves forward: keep this epoch and the next
                self._cache.pop(min(self._cache))
            self._cache[epoch] = (rng.permutation(self.n_windows), shift)
        return self._cache[epoch]

    def starts(self, first: int, count: int) -> np.ndarray:
        """Start offsets of samples ``first .. first + count - 1`` of the run."""
        k = np.arange(first, first + count)
        epochs, pos = np.divmod(k, self.n_windows)
        out = np.empty(count, dtype=np.int64)
        for e in np.unique(epochs):
            perm, shift = self._epoch(int(e))
            sel = epochs == e
            out[sel] = perm[pos[sel]] * self.context + shift
        return out

    def batch(
        self, first: int, count: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets ``[count, context]`` for samples ``first ..``."""
        idx = self.starts(first, count)[:, None] + self._offsets
        chunk = _as_tensor(self.tokens[idx], device)  # one gather from the memory map
        return chunk[:, :-1], chunk[:, 1:]


def val_windows(val: np.ndarray, context: int, eval_batches: int) -> np.ndarray:
    """Start offsets of the fixed validation windows (``context + 1`` tokens each).

    The validation array is tiled into non-overlapping windows; ``eval_batches x 32`` of them,
    evenly spread over the whole split, are used (all of them when there are fewer).
    """
    n_tiles = (len(val) - 1) // context
    if n_tiles < 1:
        raise DataError(
            f"the validation split has {len(val)} tokens, fewer than model.context + 1 = "
            f"{context + 1}: raise data.val_fraction or lower model.context"
        )
    n = min(n_tiles, eval_batches * VAL_SEQUENCES_PER_BATCH)
    tiles = np.unique(np.linspace(0, n_tiles - 1, n).round().astype(np.int64))
    return tiles * context


def gather(
    tokens: np.ndarray, starts: np.ndarray, length: int, device: torch.device
) -> torch.Tensor:
    idx = starts[:, None] + np.arange(length)
    return _as_tensor(tokens[idx], device)


def mlm_corrupt(
    tokens: torch.Tensor, mask_id: int, vocab_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-LM inputs and targets for ``tokens [B, T]``: targets are -100 (ignored) except
    at the chosen 15% of positions. Random draws come from ``generator`` (on the CPU, so the
    corruption is the same on every device)."""
    shape = tokens.shape
    u = torch.rand(shape, generator=generator)
    how = torch.rand(shape, generator=generator)
    rand_tok = torch.randint(0, vocab_size, shape, generator=generator)
    chosen = (u < MLM_RATE).to(tokens.device)
    how = how.to(tokens.device)
    inputs = torch.where(chosen & (how < MLM_MASK), torch.full_like(tokens, mask_id), tokens)
    use_random = chosen & (how >= MLM_MASK) & (how < MLM_MASK + MLM_RANDOM)
    inputs = torch.where(use_random, rand_tok.to(tokens.device), inputs)
    targets = torch.where(chosen, tokens, torch.full_like(tokens, -100))
    return inputs, targets


def mlm_generator(*key: int) -> torch.Generator:
    """A generator determined by ``key`` alone. Training uses ``(seed, step, micro)``, so a
    resumed run masks exactly the positions the uninterrupted run would have; validation
    uses a key without the seed, so every run is scored on the same corruption."""
    state = np.random.SeedSequence([*key, _SALT]).generate_state(1, np.uint64)[0]
    g = torch.Generator()
    g.manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)
    return g
