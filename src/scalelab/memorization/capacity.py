"""How many bits a trained model holds about its training set: the capacity measure.

Facts corpora (Allen-Zhu and Li 2024, "Physics of Language Models: Part 3.3", sec. 3,
the bit-complexity lower bound): for every training person p and attribute a, with the
model's cross-entropy in bits on the attribute's tokens given the name and the template
before them, ``CE(p, a) = -sum_t log2 p(x_t | x_<t)`` over the value's tokens,

    bits = sum_p sum_a max(0, log2 choices_a - CE(p, a))

A model that spreads its mass uniformly over an attribute's choices has CE = log2 choices
and stores 0 bits; one that puts all its mass on the right value stores log2 choices.
The floor at 0 per attribute keeps a confidently wrong answer from cancelling a right one
(the paper's bound sums the same per-attribute terms). Names are measured apart
(``name_bits``): ``max(0, log2 M - CE(name))`` per person, M the number of possible names.

Random strings (Morris et al. 2025, sec. 3): with uniform data the reference code length
is the entropy, so a string of L symbols over V stores ``max(0, L log2 V - CE(string))``
bits, CE the model's code length of the string given the ``eos`` before it (floored per
string, for the same reason as above).

The same numbers on the validation split (people or strings the model never saw) are the
control: they should be close to 0, and are reported as ``val_bits``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.data.bits import BitsSource
from scalelab.data.corpora import open_corpus
from scalelab.data.facts import N_WORDS, FactsLayout, FactsSource, attribute_choices
from scalelab.errors import DataError

LN2 = math.log(2)


@dataclass(frozen=True)
class StoredBits:
    """What one split's log-probabilities say: bits stored and the losses behind them."""

    bits: float  # stored, floored per attribute (facts) or per string (bits)
    content_bits: float  # the most that could be stored: sum of log2 choices
    per_attribute: dict[str, float]  # facts: bits stored per attribute; bits: {"string": ...}
    target_loss: float  # mean nats per target token (attribute or symbol tokens)
    per_attribute_loss: dict[str, float]  # mean nats per token, per attribute
    uniform_loss: float  # nats per target token of the uniform-over-choices guess
    name_bits: float | None = None  # facts only: stored bits of the names


def facts_bits(layout: FactsLayout, logp2: np.ndarray) -> StoredBits:
    """Bits stored about the people of ``layout`` given per-token log2 probabilities
    (``logp2[i]`` = log2 p(token i | its document's tokens before it))."""
    per: dict[str, float] = {}
    loss: dict[str, float] = {}
    total_ce, total_tokens, content = 0.0, 0, 0.0
    for a, name in enumerate(layout.attributes):
        pos = layout.attr[:, a, :]
        valid = pos >= 0
        ce = -np.where(valid, logp2[np.where(valid, pos, 0)], 0.0).sum(axis=1)  # bits, per person
        if np.isnan(ce).any():
            raise DataError("log-probabilities are missing for some attribute tokens")
        choice_bits = math.log2(attribute_choices(name))
        per[name] = float(np.maximum(0.0, choice_bits - ce).sum())
        loss[name] = float(ce.sum() * LN2 / valid.sum())
        total_ce += float(ce.sum())
        total_tokens += int(valid.sum())
        content += choice_bits * layout.people
    name_ce = -logp2[layout.name].sum(axis=1)
    name_bits = float(np.maximum(0.0, math.log2(N_WORDS**2) - name_ce).sum())
    uniform = content * LN2 / max(total_tokens, 1)
    return StoredBits(
        bits=sum(per.values()),
        content_bits=content,
        per_attribute=per,
        target_loss=total_ce * LN2 / max(total_tokens, 1),
        per_attribute_loss=loss,
        uniform_loss=uniform,
        name_bits=name_bits,
    )


def string_bits(strings: np.ndarray, logp2: np.ndarray, symbols: int) -> StoredBits:
    """Bits stored about random ``strings`` [S, L] given ``logp2`` laid out as the split
    (each string then its eos: row s starts at ``s * (L + 1)``); eos tokens are not counted."""
    n, length = strings.shape
    per_token = logp2.reshape(n, length + 1)[:, :length]
    if np.isnan(per_token).any():
        raise DataError("log-probabilities are missing for some string tokens")
    ce = -per_token.sum(axis=1)
    entropy = length * math.log2(symbols)
    stored = float(np.maximum(0.0, entropy - ce).sum())
    loss = float(ce.sum() * LN2 / (n * length))
    return StoredBits(
        bits=stored,
        content_bits=entropy * n,
        per_attribute={"string": stored},
        target_loss=loss,
        per_attribute_loss={"string": loss},
        uniform_loss=math.log(symbols),
    )


@dataclass
class CapacityResult:
    """``scalelab capacity RUN``: written to ``RUN/capacity[-PRECISION].json`` and the store."""

    run_id: str
    corpus: str
    corpus_kind: str  # "facts" or "bits"
    precision: str  # "fp32" (as trained), "int8", "int4" (round-to-nearest)
    bits: float
    content_bits: float  # what the training split holds that the measure can credit
    information_bits: float  # the corpus's information_bits (facts: names included)
    bits_per_param: float  # per total parameter
    bits_per_non_embedding_param: float
    params: int
    non_embedding_params: int
    exposures: float  # passes over the training split (summary "epochs")
    tokens: int
    stored_fraction: float  # bits / content_bits
    per_attribute: dict[str, float]
    name_bits: float | None
    val_bits: float  # the control: the same measure on unseen people / strings
    train_target_loss: float  # nats per attribute (or symbol) token, training documents
    val_target_loss: float
    per_attribute_loss: dict[str, float]
    min_target_loss: float  # the lowest per-attribute mean loss (nats per token)
    uniform_loss: float  # nats per target token of the uniform guess
    train_loss: float | None  # the trainer's last training loss (all tokens, nats)
    val_loss: float | None  # the trainer's validation loss (all tokens, nats)
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(
    model: Any,
    source: FactsSource | BitsSource,
    *,
    val_fraction: float,
    context: int,
    split: str = "train",
    device: str = "cpu",
) -> StoredBits:
    """Bits ``model`` stores about ``split`` of ``source`` (the core, without a run)."""
    from scalelab.memorization.model_io import doc_logprobs

    eos = source.tokenizer().eos_id
    if isinstance(source, FactsSource):
        tokens, layout = source.layout(split, val_fraction)
        # the document is the biography without its eos (the eos is the next one's context)
        lp = doc_logprobs(
            model, tokens, layout.start, layout.length - 1, bos=eos, context=context, device=device
        )
        return facts_bits(layout, lp)
    strings = source.matrix(split, val_fraction)
    n, length = strings.shape
    flat = source._flat(strings)
    starts = np.arange(n, dtype=np.int64) * (length + 1)
    lp = doc_logprobs(
        model, flat, starts, np.full(n, length), bos=eos, context=context, device=device
    )
    return string_bits(strings, lp, source.symbols)


def capacity(
    run_dir: str | Path,
    *,
    precision: str = "fp32",
    db: str | Path | None = None,
    device: str = "cpu",
    write: bool = True,
) -> CapacityResult:
    """Measure how many bits the run's model stores about its facts or bits corpus.

    ``precision`` int8 / int4 quantizes the weights by round-to-nearest first
    (:mod:`scalelab.memorization.quantize`). Writes ``RUN/capacity.json`` (or
    ``capacity-int8.json``...) and, with ``db``, a point of kind ``capacity`` whose
    ``technique`` is the precision and whose parent is the run.
    """
    from scalelab.memorization.quantize import apply_precision
    from scalelab.runs import open_run

    t0 = time.perf_counter()
    run = open_run(run_dir)
    cfg, summary = run.cfg, run.summary
    source = open_corpus(cfg.data.corpus)
    if not isinstance(source, FactsSource | BitsSource):
        raise DataError(
            f"{run_dir} was trained on {cfg.data.corpus!r}: capacity needs a facts: or bits: "
            "corpus, whose content is known (for natural text use `scalelab memorization`)"
        )
    model = run.load_model(fork_rng=False)
    apply_precision(model, precision)
    kw = {"val_fraction": cfg.data.val_fraction, "context": cfg.model.context, "device": device}
    train = measure(model, source, split="train", **kw)
    val = measure(model, source, split="val", **kw)
    params = summary.get("params") or {}
    n_total, n_ne = int(params.get("total", 0)), int(params.get("non_embedding", 0))
    result = CapacityResult(
        run_id=str(summary.get("run_id") or Path(run_dir).name),
        corpus=source.canonical(),
        corpus_kind=source.kind,
        precision=precision,
        bits=train.bits,
        content_bits=train.content_bits,
        information_bits=float(source.info()["information_bits"]),
        bits_per_param=train.bits / n_total if n_total else float("nan"),
        bits_per_non_embedding_param=train.bits / n_ne if n_ne else float("nan"),
        params=n_total,
        non_embedding_params=n_ne,
        exposures=float(summary.get("epochs") or 0.0),
        tokens=int(summary.get("tokens") or 0),
        stored_fraction=train.bits / train.content_bits if train.content_bits else 0.0,
        per_attribute=train.per_attribute,
        name_bits=train.name_bits,
        val_bits=val.bits,
        train_target_loss=train.target_loss,
        val_target_loss=val.target_loss,
        per_attribute_loss=train.per_attribute_loss,
        min_target_loss=min(train.per_attribute_loss.values()),
        uniform_loss=train.uniform_loss,
        train_loss=summary.get("train_loss"),
        val_loss=summary.get("val_loss"),
        seconds=time.perf_counter() - t0,
    )
    if write:
        _write(Path(run_dir), result, db)
    return result


def result_name(precision: str) -> str:
    return "capacity.json" if precision == "fp32" else f"capacity-{precision}.json"


def _write(run_dir: Path, result: CapacityResult, db: str | Path | None) -> None:
    from scalelab.memorization.points import put_technique_point
    from scalelab.rundir import write_json

    write_json(run_dir / result_name(result.precision), result.to_dict())
    if db is not None:
        put_technique_point(
            db, run_dir, kind="capacity", technique=result.precision, extra=result.to_dict()
        )


__all__ = [
    "CapacityResult",
    "StoredBits",
    "capacity",
    "facts_bits",
    "measure",
    "result_name",
    "string_bits",
]
