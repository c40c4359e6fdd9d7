"""How many bits a trained model holds about its training set: the capacity measure.

Facts corpora (Allen-Zhu and Li 2024, "Physics of Language Models: Part 3.3", sec. 3,
the bit-complexity lower bound): for every attribute a with c_a choices and the P training
people, with the model's cross-entropy in bits on the attribute's tokens given the name
and the template before them, ``CE(p, a) = -sum_t log2 p(x_t | x_<t)`` over the value's
tokens, averaged over the people first,

    bits_a = max(0, P * log2(c_a / 2^mean_p CE(p, a))) = max(0, P * (log2 c_a - mean_p CE(p, a)))
    bits   = sum_a bits_a

A model that spreads its mass uniformly over an attribute's choices has CE = log2 c_a and
stores 0 bits; one that puts all its mass on the right value stores P log2 c_a. The loss is
averaged over the people *before* the floor, as in the paper's bound: flooring each person
separately (``sum_p max(0, log2 c_a - CE(p, a))``, this module before issue 21) credits a
confidently wrong person with 0 instead of a negative number, which amounts to choosing
"the model or the uniform guess" per person for free -- side information the code never
pays for, so that sum is not a lower bound on what the weights hold (half the people known
exactly and half wrong by 12 bits, over 200 choices: 3.82 bits a person floored per person,
1.64 averaged). Names likewise (``name_bits``): ``max(0, P * (log2 M - mean_p CE(name)))``,
M the number of possible names.

Only the people the run trained on are counted: with ``data.fraction`` or ``data.select``
the run saw part of its training split, and a person is counted when their whole document
is in the stream it trained on (:mod:`scalelab.memorization.seen`).

Random strings (Morris et al. 2025, sec. 3): with uniform data the reference code length
is the entropy, so a string of L symbols over V stores ``max(0, L log2 V - CE(string))``
bits, CE the model's code length of the string given the ``eos`` before it (floored per
string, as before issue 21; the averaged form is what the facts use).

The same numbers on the validation split (people or strings the model never saw) are the
control: they should be close to 0, and are reported as ``val_bits``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
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

    bits: float  # stored: floored per attribute after averaging (facts), per string (bits)
    content_bits: float  # the most that could be stored: sum of log2 choices
    per_attribute: dict[str, float]  # facts: bits stored per attribute; bits: {"string": ...}
    target_loss: float  # mean nats per target token (attribute or symbol tokens)
    per_attribute_loss: dict[str, float]  # mean nats per token, per attribute
    uniform_loss: float  # nats per target token of the uniform-over-choices guess
    name_bits: float | None = None  # facts only: stored bits of the names
    documents: int = 0  # people (facts) or strings (bits) counted


def averaged_bits(choice_bits: float, ce: np.ndarray) -> float:
    """Allen-Zhu & Li's term for one attribute: ``max(0, P (log2 c - mean CE))`` for the
    per-person cross-entropies ``ce`` (bits) of P people over c choices (0 for no people)."""
    if len(ce) == 0:
        return 0.0
    return max(0.0, len(ce) * (choice_bits - float(np.mean(ce))))


def facts_bits(layout: FactsLayout, logp2: np.ndarray) -> StoredBits:
    """Bits stored about the people of ``layout`` given per-token log2 probabilities
    (``logp2[i]`` = log2 p(token i | its document's tokens before it)), in Allen-Zhu &
    Li's form (the module docstring)."""
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
        per[name] = averaged_bits(choice_bits, ce)
        loss[name] = float(ce.sum() * LN2 / max(int(valid.sum()), 1))
        total_ce += float(ce.sum())
        total_tokens += int(valid.sum())
        content += choice_bits * layout.people
    name_ce = -logp2[layout.name].sum(axis=1)
    name_bits = averaged_bits(math.log2(N_WORDS**2), name_ce)
    uniform = content * LN2 / max(total_tokens, 1)
    return StoredBits(
        bits=sum(per.values()),
        content_bits=content,
        per_attribute=per,
        target_loss=total_ce * LN2 / max(total_tokens, 1),
        per_attribute_loss=loss,
        uniform_loss=uniform,
        name_bits=name_bits,
        documents=layout.people,
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
        documents=n,
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
    documents: int  # training people (strings) counted: those the run trained on
    documents_in_split: int  # all of the training split's people (strings)
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
    seen: np.ndarray | None = None,
) -> StoredBits:
    """Bits ``model`` stores about ``split`` of ``source`` (the core, without a run).

    ``seen``: the positions of the split's tokens the model trained on
    (:func:`scalelab.memorization.seen.seen_positions`); only documents wholly among them
    are counted. None counts every document."""
    from scalelab.memorization.model_io import doc_logprobs
    from scalelab.memorization.seen import documents_seen

    eos = source.tokenizer().eos_id
    if isinstance(source, FactsSource):
        tokens, layout = source.layout(split, val_fraction)
        if seen is not None:
            # the scored tokens: the biography without its eos (the next one's context)
            keep = documents_seen(layout.start, layout.length - 1, seen, len(tokens))
            layout = _people(layout, keep)
        # the document is the biography without its eos (the eos is the next one's context)
        lp = doc_logprobs(
            model, tokens, layout.start, layout.length - 1, bos=eos, context=context, device=device
        )
        return facts_bits(layout, lp)
    strings = source.matrix(split, val_fraction)
    n, length = strings.shape
    flat = source._flat(strings)
    starts = np.arange(n, dtype=np.int64) * (length + 1)
    if seen is not None:
        keep = documents_seen(starts, np.full(n, length), seen, len(flat))
        strings, starts = strings[keep], starts[keep]
        n = len(strings)
    lp = doc_logprobs(
        model, flat, starts, np.full(n, length), bos=eos, context=context, device=device
    )
    per_token = lp.reshape(-1, length + 1)[starts // (length + 1)]  # the kept strings' rows
    return string_bits(strings, per_token.reshape(-1), source.symbols)


def _people(layout: FactsLayout, keep: np.ndarray) -> FactsLayout:
    """``layout`` restricted to the people where ``keep`` is True (positions unchanged)."""
    return replace(
        layout,
        start=layout.start[keep],
        length=layout.length[keep],
        name=layout.name[keep],
        attr=layout.attr[keep],
        values=layout.values[keep],
    )


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
    (:mod:`scalelab.memorization.quantize`). Only the training people (strings) the run
    trained on count (``data.select``, ``data.fraction``: :mod:`scalelab.memorization.seen`). Writes ``RUN/capacity.json`` (or
    ``capacity-int8.json``...) and, with ``db``, a point of kind ``capacity`` whose
    ``technique`` is the precision and whose parent is the run.
    """
    from scalelab.data import load_tokens
    from scalelab.memorization.quantize import apply_precision
    from scalelab.memorization.seen import seen_positions
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
    seen = None
    if cfg.data.fraction < 1.0 or cfg.data.select is not None:
        seen = seen_positions(cfg, load_tokens(cfg.data, cfg.model.vocab_size))
    model = run.load_model(fork_rng=False)
    apply_precision(model, precision)
    kw = {"val_fraction": cfg.data.val_fraction, "context": cfg.model.context, "device": device}
    train = measure(model, source, split="train", seen=seen, **kw)
    in_split = train.documents if seen is None else _split_documents(source, cfg)
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
        documents=train.documents,
        documents_in_split=in_split,
        seconds=time.perf_counter() - t0,
    )
    if write:
        _write(Path(run_dir), result, db)
    return result


def _split_documents(source: FactsSource | BitsSource, cfg: Any) -> int:
    if isinstance(source, FactsSource):
        return source.people
    return int(source.matrix("train", cfg.data.val_fraction).shape[0])


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
    "averaged_bits",
    "capacity",
    "facts_bits",
    "measure",
    "result_name",
    "string_bits",
]
