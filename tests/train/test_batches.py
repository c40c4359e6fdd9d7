import numpy as np
import pytest
import torch

from scalelab.errors import DataError
from scalelab.train.batches import (
    VAL_SEQUENCES_PER_BATCH,
    TrainSampler,
    mlm_corrupt,
    mlm_generator,
    val_windows,
)

CPU = torch.device("cpu")


def test_one_epoch_visits_every_window_once_and_epochs_differ():
    tokens = np.arange(1000, dtype=np.uint16)
    s = TrainSampler(tokens, context=10, seed=3)
    assert s.n_windows == 99
    e0 = s.starts(0, 99)
    assert sorted((e0 - e0.min()) // 10) == list(range(99))  # a permutation of the grid
    e1 = s.starts(99, 99)
    assert not np.array_equal(e0, e1)
    assert e0.max() + 11 <= len(tokens) and e1.max() + 11 <= len(tokens)


def test_order_is_a_function_of_seed_and_sample_index():
    tokens = np.arange(5000, dtype=np.uint32)
    a = TrainSampler(tokens, 16, seed=0)
    b = TrainSampler(tokens, 16, seed=0)
    # reading samples 0..599 in one go, or in pieces after a "resume", gives the same windows
    whole = a.starts(0, 600)
    pieces = np.concatenate([b.starts(i, 50) for i in range(0, 600, 50)])
    assert np.array_equal(whole, pieces)
    assert not np.array_equal(whole, TrainSampler(tokens, 16, seed=1).starts(0, 600))


def test_batch_targets_are_inputs_shifted():
    tokens = np.arange(300, dtype=np.uint16)
    x, y = TrainSampler(tokens, 8, seed=0).batch(0, 4, CPU)
    assert x.shape == y.shape == (4, 8) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert torch.equal(y - x, torch.ones_like(x))


def test_too_short_splits_name_the_fix():
    with pytest.raises(DataError, match=r"model\.context"):
        TrainSampler(np.arange(8), context=8, seed=0)
    with pytest.raises(DataError, match=r"data\.val_fraction"):
        val_windows(np.arange(5), context=8, eval_batches=1)


def test_validation_windows_are_fixed_and_spread():
    val = np.arange(100_000)
    a = val_windows(val, 64, eval_batches=2)
    assert len(a) == 2 * VAL_SEQUENCES_PER_BATCH
    assert np.array_equal(a, val_windows(val, 64, eval_batches=2))
    assert a[0] == 0 and a[-1] > 0.95 * len(val) - 64
    assert np.all(a % 64 == 0)
    small = val_windows(np.arange(200), 64, eval_batches=8)
    assert list(small) == [0, 64, 128]  # fewer tiles (of 65 tokens) than asked for: all


def test_mlm_corruption_rates():
    tokens = torch.randint(0, 100, (64, 512))
    inputs, targets = mlm_corrupt(
        tokens, mask_id=100, vocab_size=101, generator=mlm_generator(0, 0, 0)
    )
    chosen = targets != -100
    assert chosen.float().mean().item() == pytest.approx(0.15, abs=0.005)
    assert torch.equal(targets[chosen], tokens[chosen])
    masked = (inputs == 100) & chosen
    unchanged = (inputs == tokens) & chosen
    n = chosen.sum().item()
    assert masked.sum().item() / n == pytest.approx(0.8, abs=0.01)
    # unchanged: the 10% kept plus the random draws that hit the original token
    assert unchanged.sum().item() / n == pytest.approx(0.1 + 0.1 / 101, abs=0.01)
    assert torch.equal(inputs[~chosen], tokens[~chosen])


def test_mlm_corruption_is_deterministic_per_key():
    tokens = torch.randint(0, 50, (4, 64))
    a = mlm_corrupt(tokens, 50, 51, mlm_generator(1, 7, 0))
    b = mlm_corrupt(tokens, 50, 51, mlm_generator(1, 7, 0))
    c = mlm_corrupt(tokens, 50, 51, mlm_generator(1, 8, 0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
