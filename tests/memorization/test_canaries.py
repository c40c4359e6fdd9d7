import numpy as np
import pytest
import torch
from torch import nn

from scalelab.config import DataConfig, load_run_config
from scalelab.data import load_tokens
from scalelab.errors import ConfigError
from scalelab.memorization.canaries import canaries_for, insert_canaries
from scalelab.memorization.canaries_plugin import CanaryConfig
from scalelab.memorization.extraction import extractable, measure_extraction


def _count(haystack: np.ndarray, needle: np.ndarray) -> int:
    win = np.lib.stride_tricks.sliding_window_view(haystack, len(needle))
    return int((win == needle).all(axis=1).sum())


@pytest.fixture
def facts(tmp_path):
    return load_tokens(DataConfig(corpus="facts:people=200", cache_dir=str(tmp_path)), 293)


def test_each_canary_is_inserted_exactly_repeats_times_and_never_in_validation(facts):
    cfg = CanaryConfig(count=3, length=8, prefix=8, repeats=(1, 4, 16), seed=5)
    new, starts = insert_canaries(facts, cfg)
    can = canaries_for(facts, cfg)
    assert len(can.tokens) == 9 and list(can.repeats) == [1] * 3 + [4] * 3 + [16] * 3
    for tokens, r in zip(can.tokens, can.repeats, strict=True):
        assert _count(np.asarray(new.train), tokens) == r
        assert _count(np.asarray(new.val), tokens) == 0
    np.testing.assert_array_equal(new.val, facts.val)  # validation is untouched
    # every copy sits at a document boundary and ends with eos: no biography is cut
    assert len(starts) == 3 * (1 + 4 + 16)
    assert (new.train[starts - 1] == facts.eos_id).all()
    assert (new.train[starts + 16] == facts.eos_id).all()
    # removing the copies gives back the original stream
    keep = np.ones(len(new.train), dtype=bool)
    for s in starts:
        keep[s : s + 17] = False
    np.testing.assert_array_equal(new.train[keep], facts.train)
    assert new.unique_tokens == len(facts.train) + len(starts) * 17
    # canaries use ordinary tokens only, and the same seed gives the same canaries
    assert not np.isin(can.tokens, [facts.eos_id, facts.mask_id]).any()
    np.testing.assert_array_equal(canaries_for(facts, cfg).tokens, can.tokens)


def test_canaries_are_a_config_table():
    cfg = load_run_config(None, ["data.canaries={count=2, repeats=[1, 8], seed=3}"])
    assert cfg.section("data.canaries") == CanaryConfig(count=2, repeats=(1, 8), seed=3)
    with pytest.raises(ConfigError, match="repeats"):
        load_run_config(None, ["data.canaries={count=2, repeats=[0]}"])
    with pytest.raises(ConfigError, match=r"data\.canaries\.colour"):
        load_run_config(None, ["data.canaries={colour=2}"])
    # runs without canaries keep their names
    assert "canaries" not in load_run_config(None, []).run_id()


class Echo(nn.Module):
    """Predicts, at every position, the token ``lag`` places back (a copying model)."""

    def __init__(self, vocab: int, lag: int) -> None:
        super().__init__()
        self.vocab, self.lag = vocab, lag

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*idx.shape, self.vocab)
        src = torch.roll(idx, self.lag - 1, dims=1)
        out.scatter_(-1, src.unsqueeze(-1), 1.0)
        return out


def _greedy(model: nn.Module, prompt: np.ndarray, n: int) -> np.ndarray:
    seq = torch.from_numpy(prompt.astype(np.int64))
    for _ in range(n):
        nxt = model(seq)[:, -1, :].argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
    return seq[:, prompt.shape[1] :].numpy()


def test_teacher_forced_check_equals_step_by_step_greedy_decoding():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(5, 8), nn.Linear(8, 5))  # position-free bigram
    rng = np.random.default_rng(0)
    prompts = rng.integers(0, 5, size=(200, 4))
    greedy = _greedy(model, prompts, 6)
    targets = greedy.copy()
    targets[::2, rng.integers(0, 6)] += 1
    targets %= 5
    got = extractable(model, prompts, targets)
    want = (greedy == targets).all(axis=1)
    np.testing.assert_array_equal(got, want)
    assert got[1::2].all() and not got[::2].any()


def test_a_copying_model_extracts_periodic_text_and_not_random_text():
    period = np.tile(np.arange(8), 40)  # a sequence that repeats every 8 tokens
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 8, size=320)
    rows = measure_extraction(
        Echo(8, 8), period, noise, prefixes=(8, 16), length=8, samples=20, epochs=1.0
    )
    share = {(r["source"], r["k"]): r["share"] for r in rows}
    assert share[("train", 8)] == 1.0 and share[("train", 16)] == 1.0
    assert share[("val", 8)] == 0.0
