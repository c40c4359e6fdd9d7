"""A synthetic order-K Markov source whose entropy rate is known exactly.

``markov:order=K,vocab=V,seed=S[,tokens=N][,temperature=T]``

Each state is the last K symbols (a K-gram, V**K states); from each state the
next symbol is drawn from a row of a random transition table,
``P(. | s) = softmax(z_s / T)`` with ``z_s ~ N(0, I_V)`` drawn from the seed. The
temperature sets how predictable the source is: ``T -> 0`` is deterministic,
``T -> inf`` uniform; the default 0.5 gives an entropy rate of about 0.6-0.7 ln V
(2.57 nats against ln 64 = 4.16 at V = 64, order 1, seed 0), neither trivial nor
uniform. Every entry of the table is positive, so the chain over K-grams is
irreducible and aperiodic and has one stationary distribution ``pi``.

The entropy rate is the floor no model can beat (Cover & Thomas, *Elements of
Information Theory*, 2nd ed., Theorem 4.2.4; the cross-entropy of any predictor
is at least the entropy)::

    h = - sum_s pi(s) sum_x P(x | s) ln P(x | s)     [nats per symbol]

How it meets tokenizers: the symbols *are* the tokens. Ids ``0 .. V-1`` are the
symbols, ``V`` is ``eos`` and ``V + 1`` is ``mask`` (never emitted, there for the
masked-LM objective), so the token vocabulary is ``V + 2`` and ``h`` is exactly
in nats per token. ``data.tokenizer`` is ignored for this corpus. Each split is
one unbroken stationary chain (no ``eos`` inside: an end-of-document token would
add loss the entropy rate does not count), the validation chain drawn
independently of the training chain. ``bytes_per_token`` is 1 by definition (one
symbol = one "byte"), so bits per byte equals bits per symbol.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np

from scalelab.data.corpus_spec import CorpusSpec
from scalelab.errors import DataError

DEFAULT_TEMPERATURE = 0.5
DEFAULT_TOKENS = 2_000_000  # train + validation
MAX_TABLE = 1 << 24  # V ** (K + 1) entries of the transition table (128 MiB in float64)


def _entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of the distribution ``p`` (any shape, summing to 1)."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


@dataclass
class MarkovSource:
    """An order-K Markov chain over V symbols with a seeded random transition table."""

    order: int
    vocab: int
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE
    tokens: int = DEFAULT_TOKENS
    spec_text: str = ""
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    kind = "markov"

    def __post_init__(self) -> None:
        self.spec_text = self.spec_text or self.canonical()
        where = f"data.corpus = {self.spec_text!r}"
        if self.order < 1:
            raise DataError(f"{where}: order must be >= 1, got {self.order}")
        if self.vocab < 2:
            raise DataError(f"{where}: vocab must be >= 2 symbols, got {self.vocab}")
        if self.vocab ** (self.order + 1) > MAX_TABLE:
            raise DataError(
                f"{where}: the transition table would hold vocab**(order+1) = "
                f"{self.vocab}**{self.order + 1} entries (limit {MAX_TABLE}); lower order or vocab"
            )
        if self.tokens < 100:
            raise DataError(f"{where}: tokens must be at least 100, got {self.tokens}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise DataError(f"{where}: temperature must be positive, got {self.temperature}")

    @classmethod
    def from_spec(cls, spec: CorpusSpec) -> MarkovSource:
        spec.require("order", "vocab")
        order = spec.int_option("order", minimum=1)
        vocab = spec.int_option("vocab", minimum=2)
        seed = spec.int_option("seed", 0)
        tokens = spec.int_option("tokens", DEFAULT_TOKENS, minimum=100)
        assert order is not None and vocab is not None and seed is not None and tokens is not None
        temperature = spec.float_option("temperature", DEFAULT_TEMPERATURE)
        return cls(order, vocab, seed, temperature, tokens, spec.text)

    # --- identity ---------------------------------------------------------------------------

    def canonical(self) -> str:
        return (
            f"markov:order={self.order},vocab={self.vocab},seed={self.seed},"
            f"tokens={self.tokens},temperature={self.temperature!r}"
        )

    def fingerprint(self) -> str:
        return "synthetic"

    def slug(self) -> str:
        return f"markov-k{self.order}-v{self.vocab}-s{self.seed}"

    @property
    def n_states(self) -> int:
        return self.vocab**self.order

    # --- the chain --------------------------------------------------------------------------

    def _seeds(self) -> list[np.random.SeedSequence]:
        # independent streams for the table, the training chain and the validation chain
        return np.random.SeedSequence([self.seed, self.order, self.vocab]).spawn(3)

    @property
    def transition(self) -> np.ndarray:
        """``P[s, x]``: probability of symbol x after the K-gram with index s, shape [V**K, V].

        State index: the K-gram (x_1, ..., x_K), oldest first, read as a base-V number.
        """
        if "P" not in self._cache:
            rng = np.random.default_rng(self._seeds()[0])
            z = rng.standard_normal((self.n_states, self.vocab)) / self.temperature
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            self._cache["P"] = p / p.sum(axis=1, keepdims=True)
        return self._cache["P"]  # type: ignore[return-value]

    @property
    def stationary(self) -> np.ndarray:
        """The stationary distribution ``pi`` over K-grams, shape [V**K] (power iteration)."""
        if "pi" not in self._cache:
            V, K = self.vocab, self.order
            P = self.transition.reshape(V, V ** (K - 1), V)  # [oldest, rest, next]
            pi = np.full(self.n_states, 1.0 / self.n_states)
            for _ in range(100_000):
                # (a, r) -> (r, x): mass of the new K-gram (r, x) = sum_a pi(a, r) P(x | a, r)
                new = np.einsum("ar,arx->rx", pi.reshape(V, V ** (K - 1)), P).reshape(-1)
                new /= new.sum()
                if np.abs(new - pi).sum() < 1e-14:
                    pi = new
                    break
                pi = new
            else:  # pragma: no cover - only for near-deterministic tables
                raise DataError(
                    f"data.corpus = {self.canonical()!r}: the chain mixes too slowly to find its "
                    "stationary distribution; raise temperature"
                )
            self._cache["pi"] = pi
        return self._cache["pi"]  # type: ignore[return-value]

    @property
    def entropy_rate(self) -> float:
        """h in nats per symbol (Cover & Thomas, Theorem 4.2.4)."""
        if "h" not in self._cache:
            P = self.transition
            logp = np.log(P, where=P > 0, out=np.zeros_like(P))
            self._cache["h"] = float(-(self.stationary * (P * logp).sum(axis=1)).sum())
        return self._cache["h"]  # type: ignore[return-value]

    def block_entropy(self, n: int) -> float:
        """H(X_1, ..., X_n) in nats under the stationary chain.

        For n <= K it is the entropy of the n-gram marginal of ``pi``; beyond, each
        symbol adds h (the chain rule with the Markov property).
        """
        if n <= 0:
            return 0.0
        V, K = self.vocab, self.order
        if n <= K:
            return _entropy(self.stationary.reshape(V**n, V ** (K - n)).sum(axis=1))
        return _entropy(self.stationary) + (n - K) * self.entropy_rate

    def loss_floor(self, context: int) -> float:
        """The lowest expected mean cross-entropy (nats/token) of a next-token model over
        windows of ``context`` inputs from a stationary stream, when the target at position
        t sees the t tokens before it in its window (the standard causal-LM loss):
        ``(H(X_1..X_{T+1}) - H(X_1)) / T``. It equals ``h`` for order 1 and exceeds it
        slightly for higher orders (the first K-1 targets lack full context).
        """
        if context < 1:
            raise DataError(f"context must be >= 1, got {context}")
        return (self.block_entropy(context + 1) - self.block_entropy(1)) / context

    def sample(self, n: int, seed: np.random.SeedSequence | int) -> np.ndarray:
        """A stationary chain of ``n`` symbols (the first K drawn from ``pi``), as uint32."""
        rng = np.random.default_rng(seed)
        V, K, S = self.vocab, self.order, self.n_states
        cdf = np.cumsum(self.transition, axis=1)
        cdf[:, -1] = 1.0  # guard against rounding: u < 1 always lands inside the row
        start = int(rng.choice(S, p=self.stationary))
        first = [(start // V ** (K - 1 - i)) % V for i in range(K)]
        out = np.empty(n, dtype=np.uint32)
        out[: min(K, n)] = first[:n]
        # The chain is sequential; a plain Python loop over cached CDF rows (bisect) runs
        # at about a microsecond a symbol, and the result is cached on disk once.
        rows: dict[int, list[float]] = {}
        state = start
        u = rng.random(max(n - K, 0)).tolist()
        symbols = [0] * len(u)
        for i, ui in enumerate(u):
            row = rows.get(state)
            if row is None:
                row = rows[state] = cdf[state].tolist()
            x = bisect.bisect_right(row, ui)
            symbols[i] = x
            state = (state * V + x) % S
        out[K:] = symbols
        return out

    def split_sizes(self, val_fraction: float) -> tuple[int, int]:
        n_val = max(round(self.tokens * val_fraction), 1)
        return self.tokens - n_val, n_val

    def generate(self, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(train, val) chains; the training chain does not depend on ``val_fraction``'s
        stream and vice versa (separate seeds)."""
        n_train, n_val = self.split_sizes(val_fraction)
        _, train_seed, val_seed = self._seeds()
        return self.sample(n_train, train_seed), self.sample(n_val, val_seed)


__all__ = ["DEFAULT_TEMPERATURE", "DEFAULT_TOKENS", "MarkovSource"]
