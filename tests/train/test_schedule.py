import itertools
import math

import pytest

from scalelab.config import TrainConfig
from scalelab.train.schedule import lr_at, warmup_steps


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
@pytest.mark.parametrize("total", [1, 2, 7, 100, 1234])
def test_schedule_ends_exactly_at_the_floor(schedule, total):
    cfg = TrainConfig(lr=3e-3, min_lr_ratio=0.1, schedule=schedule, warmup=0.05)
    assert lr_at(total - 1, total, cfg) == pytest.approx(3e-4, rel=1e-12)
    lrs = [lr_at(s, total, cfg) for s in range(total)]
    assert max(lrs) <= 3e-3 * (1 + 1e-12)
    after_warmup = lrs[warmup_steps(cfg, total) :]
    assert min(after_warmup) >= 3e-4 * (1 - 1e-12)


def test_warmup_then_monotone_cosine_decay():
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.0, warmup=0.1)
    total = 200
    w = warmup_steps(cfg, total)
    assert w == 20
    lrs = [lr_at(s, total, cfg) for s in range(total)]
    assert lrs[:w] == pytest.approx([(s + 1) / w for s in range(w)])
    assert lrs[w] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[w:]))
    # half way through the decay the cosine is at half height
    mid = w + (total - 1 - w) / 2
    assert lr_at(int(mid), total, cfg) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * (int(mid) - w) / (total - 1 - w)))
    )


def test_wsd_is_flat_then_decays_over_the_last_fraction():
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.0, warmup=0.0, schedule="wsd", decay_fraction=0.25)
    total = 100
    lrs = [lr_at(s, total, cfg) for s in range(total)]
    assert lrs[:75] == [1.0] * 75
    assert lrs[-1] == 0.0
    assert all(a > b for a, b in itertools.pairwise(lrs[75:]))


def test_constant_and_bounds():
    cfg = TrainConfig(lr=0.5, schedule="constant", warmup=0.0)
    assert {lr_at(s, 10, cfg) for s in range(10)} == {0.5}
    with pytest.raises(ValueError):
        lr_at(10, 10, cfg)


def test_wsd_cooldown_shapes_start_at_the_peak_and_end_at_the_floor():
    total = 100
    lin = TrainConfig(lr=1.0, min_lr_ratio=0.0, schedule="wsd", warmup=0.0, decay_fraction=0.2)
    sq = TrainConfig(lr=1.0, min_lr_ratio=0.0, schedule="wsd", warmup=0.0, decay_fraction=0.2,
                     cooldown="1-sqrt")  # fmt: skip
    for cfg in (lin, sq):
        lrs = [lr_at(s, total, cfg) for s in range(total)]
        assert lrs[:81] == [1.0] * 81 and lrs[-1] == pytest.approx(0.0, abs=1e-12)
        assert all(a >= b for a, b in itertools.pairwise(lrs))
    # 1 - sqrt(x) falls faster early in the cooldown than the line (Hägele et al. 2024)
    mid = 85  # x = 5/19
    assert lr_at(mid, total, sq) == pytest.approx(1 - math.sqrt(5 / 19))
    assert lr_at(mid, total, sq) < lr_at(mid, total, lin) == pytest.approx(1 - 5 / 19)


def test_a_warmup_in_tokens_does_not_depend_on_the_runs_length():
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.0, schedule="wsd", warmup_tokens=10 * 64)
    for total in (40, 400):
        assert warmup_steps(cfg, total, tokens_per_step=64) == 10
        lrs = [lr_at(s, total, cfg, tokens_per_step=64) for s in range(total)]
        assert lrs[:11] == pytest.approx([(s + 1) / 10 for s in range(10)] + [1.0])
    # the fraction it replaces would differ between the two lengths
    assert warmup_steps(TrainConfig(), 40) != warmup_steps(TrainConfig(), 400)
    with pytest.raises(ValueError, match="tokens_per_step"):
        warmup_steps(cfg, 40)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_bad_warmup_in_tokens_is_refused(bad):
    from scalelab.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.warmup_tokens"):
        TrainConfig(warmup_tokens=bad)
