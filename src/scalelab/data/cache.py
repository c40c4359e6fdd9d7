"""The token cache: each corpus is tokenized once and shared, memory-mapped, by all runs.

Layout, under ``data.cache_dir`` (default ``$SCALELAB_CACHE`` or ``~/.cache/scalelab``)::

    tokens/<slug>-<tokenizer>-<key>/
        train.bin  val.bin     raw little-endian uint16 (vocab <= 65536) or uint32 token ids
        tokenizer.json         the trained BPE (Hugging Face format), for bpe only
        meta.json              sizes, ids, bytes per token, entropy rate, timings
    tokens/<slug>-<tokenizer>-<key>.lock

``key`` hashes the format version, the corpus (resolved spec and a fingerprint of
its files), the tokenizer, the BPE vocabulary size and ``val_fraction``. The
``bytes`` tokenizer and Markov sources do not depend on the model's vocabulary,
so every model size shares one entry.

Safety: an entry is built in a temporary directory and renamed into place
(atomic), so a killed build never leaves a half-written entry; an entry whose
files disagree with its ``meta.json`` (or that has none) is rebuilt. A lock file
makes concurrent processes of a sweep wait for one build instead of racing;
without it they would still be correct, just wasteful.

Splits: a document goes to validation when a 64-bit hash of its UTF-8 text,
read as a fraction of 2**64, is below ``val_fraction``. The split therefore does
not depend on file order, the tokenizer or the vocabulary, and identical
documents always land on the same side (no train/validation leakage through
duplicates). In the split, documents are joined with ``eos`` after each one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from scalelab.config import DataConfig
from scalelab.data.corpora import TextCorpus, open_corpus
from scalelab.data.markov import MarkovSource
from scalelab.data.synthetic import SyntheticSource
from scalelab.data.tokenizer import (
    BPETokenizer,
    ByteTokenizer,
    SymbolTokenizer,
    Tokenizer,
    WordTokenizer,
)
from scalelab.errors import DataError

FORMAT_VERSION = 1
log = logging.getLogger(__name__)

# Documents are kept in memory between the passes (split, BPE training, encoding)
# while the corpus is smaller than this; a larger corpus is re-read from its source.
_KEEP_IN_MEMORY_BYTES = 1 << 30
_ENCODE_BATCH_BYTES = 8 << 20  # documents handed to the tokenizer at once


@dataclass(frozen=True, eq=False)
class TokenData:
    """A tokenized corpus: the contract between data and training (docs/internals.md).

    Beyond the contract fields: ``corpus`` (the resolved spec), ``path`` (the cache
    entry), ``stats`` (documents, bytes, tokens and build timings per split) and
    ``block_entropies`` (for Markov sources, see :meth:`loss_floor`).
    """

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    eos_id: int
    mask_id: int
    tokenizer: Tokenizer
    bytes_per_token: float
    entropy_rate: float | None
    unique_tokens: int
    corpus: str
    path: Path
    stats: dict[str, Any] = field(default_factory=dict)
    block_entropies: tuple[float, ...] | None = None  # H(X_1..X_n), n = 1..K, nats

    def fraction_of_train(self, fraction: float, tile: int = 1 << 16) -> TokenData:
        """The same corpus with only ``fraction`` of its training tokens (``data.fraction``).

        Not a prefix: the training stream is in document order (for ``python-stdlib``,
        alphabetical modules), so a prefix would be a different distribution from the
        validation split. Instead every tile of ``tile`` tokens keeps its first
        ``fraction``, so the subset is spread over the whole corpus while staying in
        contiguous runs of text. Deterministic: every run at this fraction sees the same tokens.
        """
        if fraction >= 1.0:
            return self
        n = len(self.train)
        starts = np.arange(0, n, tile)
        keep = np.maximum(1, np.round((np.minimum(starts + tile, n) - starts) * fraction))
        train = np.concatenate(
            [self.train[s : s + k] for s, k in zip(starts, keep.astype(int), strict=True)]
        )
        return replace(self, train=train, unique_tokens=len(train))

    def loss_floor(self, context: int) -> float | None:
        """For a Markov source, the lowest expected mean causal-LM loss (nats/token) over
        windows of ``context`` inputs (see :meth:`MarkovSource.loss_floor`); else None."""
        if self.entropy_rate is None or self.block_entropies is None:
            return None
        if context < 1:
            raise DataError(f"context must be >= 1, got {context}")
        k = len(self.block_entropies)

        def block(n: int) -> float:
            assert self.block_entropies is not None and self.entropy_rate is not None
            return (
                self.block_entropies[n - 1]
                if n <= k
                else self.block_entropies[-1] + (n - k) * self.entropy_rate
            )

        return (block(context + 1) - block(1)) / context

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``scalelab corpus`` prints)."""
        return {
            "corpus": self.corpus,
            "tokenizer": self.tokenizer.name,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "mask_id": self.mask_id,
            "train_tokens": len(self.train),
            "val_tokens": len(self.val),
            "dtype": str(self.train.dtype),
            "bytes_per_token": self.bytes_per_token,
            "entropy_rate": self.entropy_rate,
            "documents": self.stats.get("documents"),
            "bytes": self.stats.get("bytes"),
            "build_seconds": self.stats.get("seconds"),
            "path": str(self.path),
            # facts / bits corpora: information_bits and what it is made of
            **self.stats.get("info", {}),
        }


def default_cache_dir() -> Path:
    env = os.environ.get("SCALELAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scalelab"


def unit_hash(raw: bytes) -> float:
    """A stable hash of ``raw`` as a fraction in [0, 1) (BLAKE2b, 64 bits)."""
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") / 2.0**64


def split_of(text: str, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for one document (before the small-corpus fallback)."""
    return "val" if unit_hash(text.encode("utf-8")) < val_fraction else "train"


def _token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


Source = TextCorpus | MarkovSource | SyntheticSource


def _check_vocab(source: Source, tokenizer: str, vocab_size: int) -> None:
    if isinstance(source, MarkovSource):
        need, what = source.vocab + 2, f"the markov source's {source.vocab} symbols + eos + mask"
        uses = "its symbols as tokens"
    elif isinstance(source, SyntheticSource):
        need, uses = source.vocab_size, "its own fixed vocabulary"
        what = f"the {source.kind} corpus's {need - 2} tokens + eos + mask"
    else:
        need, uses = ByteTokenizer.vocab_size, f"data.tokenizer = {tokenizer!r}"
        what = "256 byte values + eos + mask" + (", then merges" if tokenizer == "bpe" else "")
    if vocab_size < need:
        raise DataError(
            f"model.vocab_size = {vocab_size} is too small for data.corpus = "
            f"{source.spec_text!r} with {uses}: it needs at least {need} ({what}); "
            "raise model.vocab_size"
        )
    if vocab_size > 1 << 32:
        raise DataError(f"model.vocab_size = {vocab_size} is too large (at most 2**32)")


def _entry(data: DataConfig, vocab_size: int, source: Source) -> tuple[str, str, dict[str, Any]]:
    """(entry name, key, key material) for the cache entry of this corpus and tokenizer."""
    if isinstance(source, MarkovSource):
        tok, vocab = "symbols", None
    elif isinstance(source, SyntheticSource):
        tok, vocab = source.tokenizer().name, None
    else:
        tok, vocab = data.tokenizer, (vocab_size if data.tokenizer == "bpe" else None)
    material = {
        "format": FORMAT_VERSION,
        "corpus": source.canonical(),
        "fingerprint": source.fingerprint(),
        "tokenizer": tok,
        "vocab_size": vocab,
        "val_fraction": data.val_fraction,
    }
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{source.slug()}-{tok}{vocab or ''}-{key}"
    return name, key, material


def load_tokens(data: DataConfig, vocab_size: int, *, rebuild: bool = False) -> TokenData:
    """The tokenized corpus of ``data`` for a model with ``vocab_size`` embeddings.

    Builds the cache entry the first time (BPE is trained on the training split
    only, at ``vocab_size``), then memory-maps it. ``rebuild=True`` rebuilds it.
    Raises :class:`DataError` for a corpus that does not exist or is empty, a bad
    spec, or a ``vocab_size`` the tokenizer cannot fit in.
    """
    source = open_corpus(data.corpus)
    _check_vocab(source, data.tokenizer, vocab_size)
    name, key, material = _entry(data, vocab_size, source)
    root = Path(data.cache_dir).expanduser() if data.cache_dir else default_cache_dir()
    tokens_dir = root / "tokens"
    path = tokens_dir / name
    if not rebuild and (meta := _valid_meta(path, key)) is not None:
        return _open(path, meta)
    created = [p for p in (tokens_dir, *tokens_dir.parents) if not p.exists()]
    try:
        tokens_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(
            f"cannot create the token cache at {tokens_dir} ({e.strerror}): set data.cache_dir "
            "or SCALELAB_CACHE to a writable directory"
        ) from None

    from filelock import FileLock

    lock = FileLock(str(tokens_dir / f"{name}.lock"))
    try:
        lock.acquire()
    except OSError as e:
        raise DataError(
            f"cannot lock the token cache entry {path} ({e}): set data.cache_dir or "
            "SCALELAB_CACHE to a writable directory"
        ) from None
    try:
        meta = None if rebuild else _valid_meta(path, key)
        if meta is None:
            _remove(path)
            for stale in tokens_dir.glob(f".tmp-{name}-*"):
                _remove(stale)  # left by a killed build (we hold the lock: nobody else builds it)
            meta = _build(source, data, vocab_size, tokens_dir, name, key, material)
    except BaseException:
        # a corpus that fails to build (empty, a missing field) leaves nothing behind: no
        # lock file, no cache folders this call made. Removing the lock file cannot break
        # another builder: entries are written whole under a temporary name and renamed.
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
        for p in created:
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    lock.release()
    return _open(path, meta)


# --- reading -------------------------------------------------------------------------------------


def _valid_meta(path: Path, key: str) -> dict[str, Any] | None:
    """The entry's meta.json if the entry is complete and consistent, else None."""
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
            return None
        itemsize = np.dtype(meta["dtype"]).itemsize
        for split in ("train", "val"):
            if (path / f"{split}.bin").stat().st_size != meta["tokens"][split] * itemsize:
                return None
        if meta["tokenizer"] == "bpe" and not (path / "tokenizer.json").is_file():
            return None
        return dict(meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _open(path: Path, meta: dict[str, Any]) -> TokenData:
    tokenizer: Tokenizer
    if meta["tokenizer"] == "bpe":
        tokenizer = BPETokenizer.load(path / "tokenizer.json")
    elif meta["tokenizer"] == "bytes":
        tokenizer = ByteTokenizer()
    elif meta["tokenizer"] == "words":
        tokenizer = WordTokenizer(meta["tokenizer_meta"]["words"])
    else:
        tokenizer = SymbolTokenizer(meta["vocab_size"] - 2)
    dtype = np.dtype(meta["dtype"])
    train, val = (
        np.memmap(path / f"{s}.bin", dtype=dtype, mode="r", shape=(meta["tokens"][s],))
        for s in ("train", "val")
    )
    block = meta.get("block_entropies")
    return TokenData(
        train=train,
        val=val,
        vocab_size=meta["vocab_size"],
        eos_id=meta["eos_id"],
        mask_id=meta["mask_id"],
        tokenizer=tokenizer,
        bytes_per_token=meta["bytes_per_token"],
        entropy_rate=meta["entropy_rate"],
        unique_tokens=len(train),
        corpus=meta["corpus"],
        path=path,
        stats={
            k: meta[k]
            for k in ("documents", "bytes", "tokens", "seconds", "created", "info")
            if k in meta
        },
        block_entropies=tuple(block) if block else None,
    )


# --- building ------------------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if not path.exists():
        return
    # Rename first so a half-removed entry never sits under its real name.
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        path.rename(trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _build(
    source: Source,
    data: DataConfig,
    vocab_size: int,
    tokens_dir: Path,
    name: str,
    key: str,
    material: dict[str, Any],
) -> dict[str, Any]:
    tmp = tokens_dir / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        log.info("tokenizing %s into %s", material["corpus"], tokens_dir / name)
        if isinstance(source, MarkovSource):
            meta = _build_markov(source, data, tmp)
        elif isinstance(source, SyntheticSource):
            meta = _build_synthetic(source, data, tmp)
        else:
            meta = _build_text(source, data, vocab_size, tmp)
        meta.update(
            format=FORMAT_VERSION,
            build_id=uuid.uuid4().hex,
            key=key,
            key_material=material,
            corpus=material["corpus"],
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        for f in tmp.iterdir():
            with f.open("rb+") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        try:
            os.rename(tmp, tokens_dir / name)
        except OSError:
            # Another process finished the same entry first (possible only where file locks
            # do not work, e.g. some network filesystems): keep its copy if it is complete.
            if (theirs := _valid_meta(tokens_dir / name, key)) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return theirs
        _fsync_dir(tokens_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _build_markov(source: MarkovSource, data: DataConfig, tmp: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    h = source.entropy_rate
    block = [source.block_entropy(n) for n in range(1, source.order + 1)]
    t1 = time.perf_counter()
    train, val = source.generate(data.val_fraction)
    dtype = _token_dtype(source.vocab + 2)
    train.astype(dtype).tofile(tmp / "train.bin")
    val.astype(dtype).tofile(tmp / "val.bin")
    t2 = time.perf_counter()
    return {
        "tokenizer": "symbols",
        "vocab_size": source.vocab + 2,
        "eos_id": source.vocab,
        "mask_id": source.vocab + 1,
        "dtype": dtype.name,
        "bytes_per_token": 1.0,  # one symbol counts as one byte, by definition
        "entropy_rate": h,
        "block_entropies": block,
        "documents": {"train": 1, "val": 1},
        "bytes": {"train": len(train), "val": len(val)},
        "tokens": {"train": len(train), "val": len(val)},
        "seconds": {"entropy": t1 - t0, "sample": t2 - t1},
    }


def _build_synthetic(source: SyntheticSource, data: DataConfig, tmp: Path) -> dict[str, Any]:
    """A generated corpus (facts, bits): its own tokens, documents ended by eos."""
    t0 = time.perf_counter()
    train, val = source.generate(data.val_fraction)
    tok = source.tokenizer()
    dtype = _token_dtype(tok.vocab_size)
    train.astype(dtype).tofile(tmp / "train.bin")
    val.astype(dtype).tofile(tmp / "val.bin")
    docs = {s: int((a == tok.eos_id).sum()) for s, a in (("train", train), ("val", val))}
    return {
        "tokenizer": tok.name,
        "tokenizer_meta": source.tokenizer_meta(),
        "vocab_size": tok.vocab_size,
        "eos_id": tok.eos_id,
        "mask_id": tok.mask_id,
        "dtype": dtype.name,
        "bytes_per_token": 1.0,  # one generated token counts as one byte, as for markov
        "entropy_rate": None,
        "block_entropies": None,
        "info": source.info(),
        "documents": docs,
        "bytes": {"train": len(train), "val": len(val)},
        "tokens": {"train": len(train), "val": len(val)},
        "seconds": {"generate": time.perf_counter() - t0},
    }


def _build_text(corpus: TextCorpus, data: DataConfig, vocab_size: int, tmp: Path) -> dict[str, Any]:
    spec = corpus.spec.text
    # Pass 1: read, hash each document into a split, count bytes.
    t0 = time.perf_counter()
    kept: list[str] | None = []
    fractions: list[float] = []
    sizes: list[int] = []
    total = 0
    for doc in corpus.documents():
        raw = doc.encode("utf-8")
        fractions.append(unit_hash(raw))
        sizes.append(len(raw))
        total += len(raw)
        if kept is not None:
            kept.append(doc)
            if total > _KEEP_IN_MEMORY_BYTES:
                kept = None
    if not fractions:
        raise DataError(f"data.corpus = {spec!r} is empty (no non-empty documents); give it text")
    is_val = [u < data.val_fraction for u in fractions]
    if len(is_val) == 1:
        raise DataError(
            f"data.corpus = {spec!r} has a single document, so nothing can be held out for "
            "validation: give several files, or separate documents by blank lines"
        )
    # Small corpora: make sure both splits are non-empty, still by hash (stable).
    if not any(is_val):
        is_val[int(np.argmin(fractions))] = True
    if all(is_val):  # pragma: no cover - needs val_fraction >= 0.5, which config forbids
        is_val[int(np.argmax(fractions))] = False
    n_val_docs = sum(is_val)
    n_train_docs = len(is_val) - n_val_docs
    val_bytes = sum(s for s, v in zip(sizes, is_val, strict=True) if v)
    t1 = time.perf_counter()

    def docs() -> Iterator[tuple[str, bool]]:
        source = kept if kept is not None else corpus.documents()
        n = 0
        for n, doc in enumerate(source, 1):
            if n > len(is_val):
                break
            yield doc, is_val[n - 1]
        else:
            if n == len(is_val):
                return
        raise DataError(f"data.corpus = {spec!r} changed while it was read; try again")

    # Pass 2: train the tokenizer on the training split only.
    tokenizer: BPETokenizer | ByteTokenizer
    if data.tokenizer == "bpe":
        tokenizer = BPETokenizer.train((d for d, v in docs() if not v), vocab_size, n_train_docs)
        tokenizer.save(tmp / "tokenizer.json")
    else:
        tokenizer = ByteTokenizer()
    t2 = time.perf_counter()

    # Pass 3: encode in batches (parallel inside the tokenizer), append eos, stream to disk.
    dtype = _token_dtype(tokenizer.vocab_size)
    counts = {"train": 0, "val": 0}
    with (tmp / "train.bin").open("wb") as ftrain, (tmp / "val.bin").open("wb") as fval:
        batch: list[str] = []
        flags: list[bool] = []
        size = 0

        def flush() -> None:
            eos = np.array([tokenizer.eos_id], dtype=dtype)
            parts: dict[bool, list[np.ndarray]] = {False: [], True: []}
            for ids, v in zip(tokenizer.encode_batch(batch), flags, strict=True):
                parts[v] += [ids.astype(dtype, copy=False), eos]
            for v, f in ((False, ftrain), (True, fval)):
                if parts[v]:
                    arr = np.concatenate(parts[v])
                    arr.tofile(f)
                    counts["val" if v else "train"] += len(arr)
            batch.clear()
            flags.clear()

        for doc, v in docs():
            batch.append(doc)
            flags.append(v)
            size += len(doc)
            if size >= _ENCODE_BATCH_BYTES:
                flush()
                size = 0
        if batch:
            flush()
    t3 = time.perf_counter()
    return {
        "tokenizer": tokenizer.name,
        "vocab_size": tokenizer.vocab_size,
        "eos_id": tokenizer.eos_id,
        "mask_id": tokenizer.mask_id,
        "dtype": dtype.name,
        # eos tokens carry no bytes: their loss is charged to the documents they end
        "bytes_per_token": val_bytes / counts["val"],
        "entropy_rate": None,
        "block_entropies": None,
        "documents": {"train": n_train_docs, "val": n_val_docs},
        "bytes": {"train": total - val_bytes, "val": val_bytes},
        "tokens": counts,
        "seconds": {"read": t1 - t0, "tokenizer": t2 - t1, "encode": t3 - t2},
    }


__all__ = [
    "FORMAT_VERSION",
    "TokenData",
    "default_cache_dir",
    "load_tokens",
    "split_of",
    "unit_hash",
]
