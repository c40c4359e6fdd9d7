"""Sampling from a language model, batched, with a key-value cache where the architecture has one.

``generate(model, prompts, max_new_tokens, temperature, top_k, generator, eos)`` extends each
prompt by up to ``max_new_tokens`` tokens and returns a :class:`GenerateResult`.

* **Prompts**: a LongTensor [B, T] (B prompts of T tokens, no padding) or a list of B token
  lists of any lengths. Unequal prompts are **left-padded** into one batch, and each row keeps
  its own position ids and attends to its real tokens only, so a row's continuation is the
  one it would get alone (up to float rounding).
* **The cache**: :class:`~scalelab.models.transformer.Transformer` (and the GLU variant) keep
  the keys and values of the prefix, so a step costs the new token only. Any other
  architecture (``use_cache=False``, or one without ``forward_cached``) recomputes the whole
  prefix at every step with its plain ``forward``, one group of equal-length rows at a time
  (the plain forward knows no padding): slower, but the same tokens.
* **Sampling**: ``temperature`` divides the logits (0: greedy, argmax; ties go to the lowest
  id); ``top_k`` keeps the k largest logits (ties at the k-th kept too); ``generator`` seeds
  the draws (one ``torch.multinomial`` over the batch per step, whichever path computes the
  logits, so the cached and the recomputed paths draw the same numbers).
* **Output**: ``tokens`` [B, P + max_new_tokens] is each prompt (left-padded to the longest,
  P) followed by its new tokens, as Hugging Face's ``generate`` returns them;
  ``result.completion`` is the new part, ``logprobs`` its log-probabilities.
* **Stopping**: a row stops after it emits ``eos``; its later slots hold ``eos`` with log-prob
  0. Generation ends when every row has stopped or after ``max_new_tokens``.
* **FLOPs** follow :mod:`scalelab.accounting` (``count(..., causal=True)``): a forward at
  (1-indexed) position t costs ``2 macs + 2 mix_per_position t + 2 mix_macs``, that is 2 per
  weight MAC plus the attention over the t positions it sees. ``flops`` is the work of the
  path taken for each row's real tokens: with the cache, each of the ``p + n - 1`` positions
  a row feeds (prompt p, n new tokens) once; recomputing, the whole prefix at each of the n
  steps. Padding, and rows that stopped but ride along in the batch, are not counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from scalelab.accounting.core import tally_of_config
from scalelab.errors import ScalelabError


class GenerateError(ScalelabError):
    """A generation request that cannot be served (bad prompts, temperature, top_k, length)."""


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` returns; B rows, P = the longest prompt, M = ``max_new_tokens``.

    * ``tokens`` [B, P + M] (long): each row's prompt, left-padded to P, then its generated
      tokens (as Hugging Face's ``generate`` returns them: ``tokens[:, P:]`` is the
      ``completion``). Padding on the left and the slots after a row's ``eos`` hold ``eos``
      (0 without ``eos``: then every row runs to M tokens).
    * ``logprobs`` [B, M] (fp32): log p(token | prefix) under the model itself (temperature
      1, no top-k): what a policy gradient and a KL to a reference need; 0 after the stop.
    * ``sampling_logprobs`` [B, M]: the same under the distribution actually sampled from
      (after temperature and top-k; 0 for greedy).
    * ``new_tokens`` [B] (long): tokens each row generated, its ``eos`` included.
    * ``prompt_lengths``: each row's prompt length (P - padding).
    * ``flops``: forward FLOPs spent (see the module docstring); ``cached``: the path taken.
    """

    tokens: torch.Tensor
    logprobs: torch.Tensor
    sampling_logprobs: torch.Tensor
    new_tokens: torch.Tensor
    prompt_lengths: list[int]
    flops: int
    cached: bool

    @property
    def completion(self) -> torch.Tensor:
        """The generated tokens [B, M] (``tokens`` without the prompts)."""
        return self.tokens[:, self.tokens.shape[1] - self.logprobs.shape[1] :]

    def completions(self) -> list[list[int]]:
        """Each row's generated tokens, up to and including its ``eos``."""
        new = self.completion
        return [new[i, :n].tolist() for i, n in enumerate(self.new_tokens.tolist())]


def position_flops(model_cfg: object, t: int) -> int:
    """Forward FLOPs of one token at 1-indexed position t (it attends to t positions), by
    :mod:`scalelab.accounting`'s conventions: ``sum(position_flops(cfg, t) for t in 1..T)``
    equals ``count(cfg, seq_len=T, causal=True).flops.forward_per_token * T``."""
    body = tally_of_config(model_cfg).body  # type: ignore[arg-type]
    return 2 * body.macs + 2 * body.mix_macs_per_position * t + 2 * body.mix_macs


def prefix_flops(model_cfg: object, length: int) -> int:
    """Forward FLOPs of a whole causal prefix of ``length`` tokens (sum over its positions)."""
    body = tally_of_config(model_cfg).body  # type: ignore[arg-type]
    return (
        2 * body.macs * length
        + body.mix_macs_per_position * length * (length + 1)
        + 2 * body.mix_macs * length
    )


def _rows(prompts: torch.Tensor | Sequence[Sequence[int]], vocab: int) -> list[list[int]]:
    if isinstance(prompts, torch.Tensor):
        if prompts.dim() != 2 or prompts.dtype not in (torch.long, torch.int, torch.int32):
            raise GenerateError(
                f"prompts: a tensor must be [B, T] of integer token ids, got "
                f"{tuple(prompts.shape)} {prompts.dtype}; give a list of token lists otherwise"
            )
        rows = prompts.tolist()
    else:
        try:
            rows = [[int(t) for t in row] for row in prompts]
        except (TypeError, ValueError):
            raise GenerateError(
                "prompts: give a [B, T] LongTensor or a list of lists of token ids"
            ) from None
    if not rows:
        raise GenerateError("prompts: no prompt given; pass at least one")
    for i, row in enumerate(rows):
        if not row:
            raise GenerateError(
                f"prompts[{i}] is empty: every prompt needs a token (e.g. a BOS) to start from"
            )
        bad = [t for t in row if not 0 <= t < vocab]
        if bad:
            raise GenerateError(
                f"prompts[{i}] holds token {bad[0]}, outside the vocabulary [0, {vocab})"
            )
    return rows


def _check(
    model: nn.Module,
    rows: list[list[int]],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    eos: int | None,
) -> None:
    cfg = model.cfg
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise GenerateError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not (isinstance(temperature, (int, float)) and temperature >= 0):
        raise GenerateError(f"temperature must be >= 0 (0: greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise GenerateError(f"top_k must be a positive integer or None (no cut), got {top_k!r}")
    if eos is not None and not 0 <= eos < cfg.vocab_size:
        raise GenerateError(f"eos {eos} is outside the vocabulary [0, {cfg.vocab_size})")
    if not getattr(cfg, "causal", True):
        raise GenerateError(
            "model: a bidirectional (masked-LM) model cannot generate left to right; "
            "use a causal one"
        )
    longest = max(len(r) for r in rows)
    if max_new_tokens and longest + max_new_tokens - 1 > cfg.context:
        raise GenerateError(
            f"max_new_tokens: the longest prompt ({longest}) plus {max_new_tokens} new tokens "
            f"needs {longest + max_new_tokens - 1} positions, beyond the context {cfg.context}; "
            f"ask for at most {cfg.context - longest + 1}"
        )


class _Cached:
    """Logits of the last position of each row, from a :class:`KVCache` (left-padded rows)."""

    def __init__(self, model: nn.Module, rows: list[list[int]], device: torch.device) -> None:
        from scalelab.models.transformer import KVCache

        self.model = model
        longest = max(len(r) for r in rows)
        self.prompt = torch.zeros(len(rows), longest, dtype=torch.long, device=device)
        self.real = torch.zeros(len(rows), longest, dtype=torch.bool, device=device)
        for i, r in enumerate(rows):
            self.prompt[i, longest - len(r) :] = torch.tensor(r, dtype=torch.long)
            self.real[i, longest - len(r) :] = True
        self.capacity = longest
        self.cache: KVCache | None = None
        self.cache_cls = KVCache

    def first(self, max_new_tokens: int) -> torch.Tensor:
        # the last fed token is the (max_new_tokens - 1)-th new one
        self.cache = self.cache_cls(
            self.model, len(self.prompt), self.capacity + max_new_tokens - 1
        )
        return self.model.forward_cached(self.prompt, self.cache, self.real)[:, -1]

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        assert self.cache is not None
        return self.model.forward_cached(tokens[:, None], self.cache)[:, -1]


class _Recompute:
    """Logits of the last position of each row by the plain forward on the whole prefix, one
    group of equal-length rows at a time (any architecture; no cache)."""

    def __init__(self, model: nn.Module, rows: list[list[int]], device: torch.device) -> None:
        self.model = model
        groups: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            groups[len(r)].append(i)
        self.groups = [
            (torch.tensor(idx, device=device), torch.tensor([rows[i] for i in idx], device=device))
            for idx in groups.values()
        ]

    def _logits(self) -> torch.Tensor:
        out: torch.Tensor | None = None
        for idx, seq in self.groups:
            last = self.model(seq)[:, -1]
            if out is None:
                out = last.new_empty(sum(len(i) for i, _ in self.groups), last.shape[-1])
            out[idx] = last
        assert out is not None
        return out

    def first(self, max_new_tokens: int) -> torch.Tensor:
        return self._logits()

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.groups = [(idx, torch.cat([seq, tokens[idx, None]], 1)) for idx, seq in self.groups]
        return self._logits()


def _sample(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens [B], their log-probs under the model and under the sampling distribution."""
    logits = logits.float()
    model_logp = F.log_softmax(logits, dim=-1)
    if temperature == 0:
        tokens = logits.argmax(dim=-1)
        sample_logp = torch.zeros_like(tokens, dtype=torch.float)
    else:
        z = logits / temperature
        if top_k is not None and top_k < z.shape[-1]:
            kth = z.topk(top_k, dim=-1).values[:, -1:]
            z = z.masked_fill(z < kth, float("-inf"))
        q = F.log_softmax(z, dim=-1)
        # drawn where the generator lives (a CPU generator for a model on a GPU: the same
        # draws on either device)
        where = generator.device if generator is not None else q.device
        probs = q.exp().to(where)
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(q.device)
        sample_logp = q.gather(1, tokens[:, None]).squeeze(1)
    return tokens, model_logp.gather(1, tokens[:, None]).squeeze(1), sample_logp


def can_cache(model: nn.Module) -> bool:
    """Whether ``model`` keeps a key-value cache (it has ``forward_cached``)."""
    return callable(getattr(model, "forward_cached", None))


def generate(
    model: nn.Module,
    prompts: torch.Tensor | Sequence[Sequence[int]],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    eos: int | None = None,
    use_cache: bool | None = None,
) -> GenerateResult:
    """Sample up to ``max_new_tokens`` tokens after each prompt (see the module docstring).

    ``use_cache``: None uses the cache when the model has one; True requires it; False
    recomputes the prefix at every step (the reference the cache is tested against). The
    model runs in eval mode without gradients and is put back in its former mode after.
    """
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise GenerateError("model: generate needs a scalelab model (one with a .cfg)")
    rows = _rows(prompts, cfg.vocab_size)
    _check(model, rows, max_new_tokens, temperature, top_k, eos)
    cached = can_cache(model) if use_cache is None else use_cache
    if cached and not can_cache(model):
        raise GenerateError(
            f"use_cache: arch {cfg.arch!r} has no key-value cache; pass use_cache=None or False"
        )
    device = next(model.parameters()).device
    B = len(rows)
    fill = 0 if eos is None else eos
    width = max(len(r) for r in rows)
    tokens = torch.full((B, width + max_new_tokens), fill, dtype=torch.long, device=device)
    for i, r in enumerate(rows):
        tokens[i, width - len(r) : width] = torch.tensor(r, dtype=torch.long)
    new = tokens[:, width:]  # a view: the loop writes the completion into tokens
    logprobs = torch.zeros(B, max_new_tokens, device=device)
    sampling_logprobs = torch.zeros(B, max_new_tokens, device=device)
    new_tokens = torch.zeros(B, dtype=torch.long, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if max_new_tokens:
                stepper = (_Cached if cached else _Recompute)(model, rows, device)
                logits = stepper.first(max_new_tokens)
                done = torch.zeros(B, dtype=torch.bool, device=device)
                for s in range(max_new_tokens):
                    tok, lp, slp = _sample(logits, float(temperature), top_k, generator)
                    live = ~done
                    new[:, s] = torch.where(live, tok, fill)
                    logprobs[:, s] = torch.where(live, lp, 0.0)
                    sampling_logprobs[:, s] = torch.where(live, slp, 0.0)
                    new_tokens += live.long()
                    if eos is not None:
                        done |= tok == eos
                    if s == max_new_tokens - 1 or bool(done.all()):
                        break
                    logits = stepper.step(new[:, s])
    finally:
        model.train(was_training)
    lengths = [len(r) for r in rows]
    flops = 0
    for p, n in zip(lengths, new_tokens.tolist(), strict=True):
        if n == 0:
            continue
        if cached:
            flops += prefix_flops(cfg, p + n - 1)
        else:
            flops += sum(prefix_flops(cfg, p + s) for s in range(n))
    return GenerateResult(
        tokens=tokens,
        logprobs=logprobs,
        sampling_logprobs=sampling_logprobs,
        new_tokens=new_tokens,
        prompt_lengths=lengths,
        flops=flops,
        cached=cached,
    )
