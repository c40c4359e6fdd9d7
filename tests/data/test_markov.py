import itertools
import math

import numpy as np
import pytest

from scalelab.data import MarkovSource, open_corpus
from scalelab.errors import DataError


def kgram_matrix(m: MarkovSource) -> np.ndarray:
    """The full [V**K, V**K] transition matrix over K-grams, built the slow obvious way."""
    V, S = m.vocab, m.n_states
    T = np.zeros((S, S))
    for s in range(S):
        for x in range(V):
            T[s, (s * V + x) % S] += m.transition[s, x]
    return T


@pytest.mark.parametrize("order, vocab", [(1, 12), (2, 5), (3, 3)])
def test_entropy_rate_matches_an_eigenvector_solution(order, vocab):
    m = MarkovSource(order, vocab, seed=3)
    T = kgram_matrix(m)
    w, v = np.linalg.eig(T.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    np.testing.assert_allclose(m.stationary, pi, atol=1e-12)
    np.testing.assert_allclose(m.stationary @ T, m.stationary, atol=1e-14)
    P = m.transition
    h = -sum(pi[s] * sum(p * math.log(p) for p in P[s]) for s in range(m.n_states))
    assert m.entropy_rate == pytest.approx(h, rel=1e-12)


@pytest.mark.parametrize("vocab", [16, 64, 256])
def test_default_temperature_is_neither_trivial_nor_uniform(vocab):
    for seed in range(3):
        ratio = MarkovSource(1, vocab, seed=seed).entropy_rate / math.log(vocab)
        assert 0.5 < ratio < 0.8


def test_samples_have_the_stated_entropy_rate():
    m = MarkovSource(2, 8, seed=1)
    x = m.sample(200_000, seed=5).astype(np.int64)
    states = x[:-2] * 8 + x[1:-1]
    nll = -np.log(m.transition[states, x[2:]])
    stderr = nll.std() / math.sqrt(len(nll))  # the chain mixes fast: near-independent terms
    assert abs(nll.mean() - m.entropy_rate) < 4 * stderr
    # empirical K-gram frequencies follow the stationary distribution
    freq = np.bincount(states, minlength=m.n_states) / len(states)
    np.testing.assert_allclose(freq, m.stationary, atol=0.01)


def test_loss_floor_for_a_context_window():
    one = MarkovSource(1, 16, seed=0)
    assert one.loss_floor(1) == pytest.approx(one.entropy_rate)
    assert one.loss_floor(128) == pytest.approx(one.entropy_rate)
    three = MarkovSource(3, 6, seed=0)
    floors = [three.loss_floor(t) for t in (1, 2, 4, 64, 4096)]
    assert all(a > b for a, b in itertools.pairwise(floors))  # more context helps
    assert floors[-1] == pytest.approx(three.entropy_rate, rel=1e-3)
    # H(X_1..X_n) for n <= K from the K-gram marginal equals the chain rule beyond it at n = K + 1
    h1 = three.block_entropy(1)
    assert three.loss_floor(1) == pytest.approx(three.block_entropy(2) - h1)


def test_seeded_and_independent_splits():
    a = MarkovSource(1, 10, seed=4, tokens=5000)
    b = MarkovSource(1, 10, seed=4, tokens=5000)
    c = MarkovSource(1, 10, seed=5, tokens=5000)
    ta, va = a.generate(0.1)
    tb, vb = b.generate(0.1)
    assert (ta == tb).all() and (va == vb).all()
    assert len(ta) == 4500 and len(va) == 500
    assert not np.array_equal(a.transition, c.transition)
    assert not np.array_equal(ta[:500], va)
    assert ta.max() < 10


def test_temperature_controls_predictability():
    cold = MarkovSource(1, 32, seed=0, temperature=0.2).entropy_rate
    warm = MarkovSource(1, 32, seed=0, temperature=5.0).entropy_rate
    assert cold < 0.5 * math.log(32) and warm > 0.98 * math.log(32)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("markov:vocab=8", "needs order"),
        ("markov:order=0,vocab=8", "order must be an integer >= 1"),
        ("markov:order=1,vocab=1", "vocab must be an integer >= 2"),
        ("markov:order=4,vocab=256", "lower order or vocab"),
        ("markov:order=1,vocab=8,temperature=0", "temperature must be a positive number"),
        ("markov:order=1,vocab=8,tokens=10", "tokens must be an integer >= 100"),
    ],
)
def test_bad_markov_specs(spec, message):
    with pytest.raises(DataError, match=message):
        open_corpus(spec)
