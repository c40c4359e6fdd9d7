"""The subset file (what `scalelab select` writes and `data.select` reads): which training
units a run keeps, with every score and its provenance.

A *unit* is either a training document (``unit = "doc"``: the spans between ``eos``
tokens of ``TokenData.train``, in corpus order) or a fixed-size chunk of the training
token stream (``unit = "chunk"``: ``chunk_tokens`` tokens each, the last one shorter).
Unit ids are their positions in that order, so they are defined by the corpus and its
train/validation split alone (documents) or also by the tokenizer (chunks); the
``corpus_hash`` pins exactly that, and a run whose data hashes differently refuses the
selection (:class:`SelectionError`) instead of silently keeping the wrong text.

Only the training split is ever scored or kept: units are cut from ``TokenData.train``,
and applying a selection rebuilds ``train`` only (validation stays the full held-out split,
so every selected run is scored on the same text as the full-data run).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scalelab import atomic
from scalelab.data.cache import TokenData
from scalelab.errors import DataError

FORMAT = 1
UNITS = ("doc", "chunk")
METHODS = ("random", "dedup", "perplexity", "prototype", "active")
DEFAULT_CHUNK_TOKENS = 1024


class SelectionError(DataError):
    """A selection file cannot be made or used (bad file, other corpus, bad keep)."""


@dataclass(frozen=True)
class Units:
    """The training split cut into units: unit ``i`` is ``train[starts[i]:ends[i]]``
    (a document's span includes its trailing ``eos``)."""

    unit: str
    starts: np.ndarray
    ends: np.ndarray
    chunk_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    def index_of_positions(self, n_tokens: int) -> np.ndarray:
        """The unit id of every token position of the training stream (int32)."""
        # units tile the stream: [0, ends[0]), [ends[0], ends[1]), ...
        assert int(self.ends[-1]) == n_tokens, "units do not cover the training stream"
        return np.repeat(np.arange(len(self), dtype=np.int32), self.lengths)


def units_of(data: TokenData, unit: str = "doc", chunk_tokens: int | None = None) -> Units:
    """Cut ``data.train`` into documents (at ``eos``) or fixed-size chunks."""
    if unit not in UNITS:
        raise SelectionError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    train = np.asarray(data.train)
    n = len(train)
    if unit == "chunk":
        size = chunk_tokens or DEFAULT_CHUNK_TOKENS
        if size < 1:
            raise SelectionError(f"chunk_tokens must be >= 1, got {size}")
        starts = np.arange(0, n, size, dtype=np.int64)
        return Units("chunk", starts, np.minimum(starts + size, n), size)
    ends = np.flatnonzero(train == data.eos_id).astype(np.int64) + 1
    if len(ends) == 0 or ends[-1] != n:  # a stream without a final eos (Markov: no eos at all)
        ends = np.append(ends, n)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return Units("doc", starts, ends)


def _key_material(data: TokenData) -> dict[str, Any]:
    try:
        meta = json.loads((Path(data.path) / "meta.json").read_text())
        return dict(meta["key_material"])
    except (OSError, ValueError, KeyError, TypeError):
        # token data built in memory (tests, callers of train(data=...)): its corpus string
        # and split sizes are all that identify it
        return {"corpus": data.corpus, "fingerprint": None, "val_fraction": None}


def corpus_hash(data: TokenData, units: Units) -> str:
    """A hash of what unit ids refer to: the corpus (resolved spec and a fingerprint of its
    files), the validation split rule and the number of units; for chunks also the
    tokenizer, its vocabulary and the chunk size (chunk boundaries depend on them)."""
    km = _key_material(data)
    material: dict[str, Any] = {
        "corpus": km.get("corpus"),
        "fingerprint": km.get("fingerprint"),
        "val_fraction": km.get("val_fraction"),
        "unit": units.unit,
        "n_units": len(units),
    }
    if units.unit == "chunk":
        material.update(
            tokenizer=km.get("tokenizer", data.tokenizer.name),
            vocab_size=km.get("vocab_size"),
            train_tokens=len(data.train),
            chunk_tokens=units.chunk_tokens,
        )
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Selection:
    """A selection (the JSON file's content). ``scores[i]`` is unit ``i``'s score under
    ``method`` (its meaning is in ``score``); ``kept`` the sorted kept unit ids."""

    method: str
    keep: float
    unit: str
    corpus: str
    corpus_hash: str
    n_units: int
    kept: tuple[int, ...]
    scores: tuple[float, ...]
    score: str  # what a score means, e.g. "reference loss (nats/token)"
    params: Mapping[str, Any] = field(default_factory=dict)  # the method's inputs
    tokens: Mapping[str, int] = field(default_factory=dict)  # total / kept training tokens
    extra: Mapping[str, Any] = field(default_factory=dict)  # clusters, rounds, ...
    chunk_tokens: int | None = None
    seconds: float | None = None

    @property
    def kept_fraction(self) -> float:
        """Share of training tokens kept (what ``keep`` asks for, up to unit granularity)."""
        total = self.tokens.get("total") or 0
        return self.tokens.get("kept", 0) / total if total else len(self.kept) / self.n_units

    @property
    def label(self) -> str:
        order = self.params.get("order")
        return f"{self.method}{'-' + str(order) if order else ''}@{self.keep:.3g}"

    def summary(self) -> dict[str, Any]:
        """What a run's summary.json records of the selection it trained on."""
        return {
            "method": self.method,
            "label": self.label,
            "keep": self.keep,
            "kept_fraction": self.kept_fraction,
            "unit": self.unit,
            "kept_units": len(self.kept),
            "n_units": self.n_units,
            "corpus_hash": self.corpus_hash,
            "order": self.params.get("order"),
            "reference": self.params.get("reference_run_id"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "keep": self.keep,
            "kept_fraction": self.kept_fraction,
            "unit": self.unit,
            "chunk_tokens": self.chunk_tokens,
            "corpus": self.corpus,
            "corpus_hash": self.corpus_hash,
            "n_units": self.n_units,
            "params": dict(self.params),
            "tokens": dict(self.tokens),
            "score": self.score,
            "kept": list(self.kept),
            "scores": [None if not np.isfinite(s) else float(s) for s in self.scores],
            "extra": dict(self.extra),
            "seconds": self.seconds,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic.write_json(path, self.to_dict(), indent=2, sort_keys=True, default=str)
        return path

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "selection") -> Selection:
        try:
            if d.get("format") != FORMAT:
                raise SelectionError(
                    f"{where}: selection format {d.get('format')!r} is not {FORMAT}; "
                    "make it again with scalelab select"
                )
            return cls(
                method=str(d["method"]),
                keep=float(d["keep"]),
                unit=str(d["unit"]),
                corpus=str(d["corpus"]),
                corpus_hash=str(d["corpus_hash"]),
                n_units=int(d["n_units"]),
                kept=_unit_ids(d["kept"], int(d["n_units"]), where),
                scores=tuple(float("nan") if s is None else float(s) for s in d["scores"]),
                score=str(d.get("score", "")),
                params=dict(d.get("params") or {}),
                tokens=dict(d.get("tokens") or {}),
                extra=dict(d.get("extra") or {}),
                chunk_tokens=d.get("chunk_tokens"),
                seconds=d.get("seconds"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SelectionError(
                f"{where} is not a scalelab selection ({type(e).__name__}: {e}); "
                "make it with scalelab select"
            ) from None


def _unit_ids(kept: Any, n_units: int, where: str) -> tuple[int, ...]:
    """A selection's kept ids: whole numbers, each once, ascending, below ``n_units``
    (``int(0.5)`` would silently keep unit 0; a repeated id would train on it twice)."""
    if not isinstance(kept, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in kept
    ):
        raise SelectionError(f"{where}: 'kept' must be a list of whole unit ids")
    if any(b <= a for a, b in itertools.pairwise(kept)):
        raise SelectionError(f"{where}: 'kept' has repeated or unsorted ids: make it again")
    if kept and (kept[0] < 0 or kept[-1] >= n_units):
        raise SelectionError(f"{where}: 'kept' has ids outside 0..{n_units - 1}: make it again")
    return tuple(kept)


def load_selection(path: str | Path) -> Selection:
    """Read a selection file (``data.select``)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise SelectionError(
            f"data.select = {str(path)!r}: no such file; make it with scalelab select"
        ) from None
    except (OSError, ValueError) as e:
        raise SelectionError(f"data.select = {str(path)!r} cannot be read as JSON: {e}") from None
    if not isinstance(d, dict):
        raise SelectionError(f"data.select = {str(path)!r} is not a selection (not an object)")
    return Selection.from_dict(d, where=f"data.select = {str(path)!r}")


def keep_count(keep: float, n: int) -> int:
    """How many of ``n`` units a keep fraction means (at least one)."""
    if not 0.0 < keep <= 1.0:
        raise SelectionError(f"keep must be a fraction in (0, 1], got {keep}")
    return max(1, min(n, round(keep * n)))


def keep_by_tokens(order: np.ndarray, lengths: np.ndarray, keep: float) -> np.ndarray:
    """The first units of ``order`` (best first) whose tokens add up to ``keep`` of all
    training tokens: fractions are of tokens, not documents, so a method cannot meet its
    budget with many short files (the standard library's sizes span four decades)."""
    if not 0.0 < keep <= 1.0:
        raise SelectionError(f"keep must be a fraction in (0, 1], got {keep}")
    total = float(lengths.sum())
    csum = np.cumsum(lengths[order])
    n = int(np.searchsorted(csum, keep * total - 1e-9 * total)) + 1
    return np.sort(order[: max(1, min(n, len(order)))])


def make_selection(
    data: TokenData,
    units: Units,
    *,
    method: str,
    keep: float,
    kept: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    score: str,
    params: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    seconds: float | None = None,
) -> Selection:
    kept_arr = np.unique(np.asarray(kept, dtype=np.int64))
    lengths = units.lengths
    return Selection(
        method=method,
        keep=float(keep),
        unit=units.unit,
        corpus=data.corpus,
        corpus_hash=corpus_hash(data, units),
        n_units=len(units),
        kept=tuple(int(i) for i in kept_arr),
        scores=tuple(float(s) for s in np.asarray(scores, dtype=np.float64)),
        score=score,
        params=dict(params),
        tokens={"total": int(lengths.sum()), "kept": int(lengths[kept_arr].sum())},
        extra=dict(extra or {}),
        chunk_tokens=units.chunk_tokens,
        seconds=seconds,
    )


def apply_selection(data: TokenData, selection: Selection | str | Path) -> TokenData:
    """``data`` with ``train`` replaced by the kept units, in corpus order (validation as is).

    Raises :class:`SelectionError` when the selection was made on other data."""
    sel = selection if isinstance(selection, Selection) else load_selection(selection)
    units = units_of(data, sel.unit, sel.chunk_tokens)
    have = corpus_hash(data, units)
    if have != sel.corpus_hash or len(units) != sel.n_units:
        raise SelectionError(
            f"the selection ({sel.label}) was made on corpus {sel.corpus!r} with hash "
            f"{sel.corpus_hash} ({sel.n_units} {sel.unit} units), but this run's data is "
            f"{data.corpus!r} with hash {have} ({len(units)} units): the corpus, its files, "
            "data.val_fraction"
            + (" or the tokenizer" if sel.unit == "chunk" else "")
            + " differ; make the selection again on this data"
        )
    kept = np.asarray(sel.kept, dtype=np.int64)
    if len(kept) == 0 or kept.min() < 0 or kept.max() >= len(units):
        raise SelectionError(f"the selection ({sel.label}) keeps ids outside 0..{len(units) - 1}")
    train = np.asarray(data.train)
    parts = [train[s:e] for s, e in zip(units.starts[kept], units.ends[kept], strict=True)]
    new = np.concatenate(parts).astype(train.dtype, copy=False)
    return replace(data, train=new, unique_tokens=len(new))


__all__ = [
    "DEFAULT_CHUNK_TOKENS",
    "METHODS",
    "UNITS",
    "Selection",
    "SelectionError",
    "Units",
    "apply_selection",
    "corpus_hash",
    "keep_by_tokens",
    "keep_count",
    "load_selection",
    "make_selection",
    "units_of",
]
