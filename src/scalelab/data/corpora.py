"""Text corpora: sources of documents in a deterministic order.

A corpus yields documents (strings) in the same order on every call and every
machine with the same inputs, and has a ``fingerprint`` that changes when its
inputs do (so the token cache is rebuilt after a file is edited). Which documents
go to validation is decided later, by a hash of each document's text
(:func:`scalelab.data.cache.split_of`), so it never depends on this order.

The synthetic ``markov`` source is not a text corpus (its symbols are the tokens);
it lives in :mod:`scalelab.data.markov`.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
import sys
import sysconfig
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scalelab.data.corpus_spec import EXAMPLES, CorpusSpec, parse_spec
from scalelab.data.markov import MarkovSource
from scalelab.errors import DataError

# Directories of the standard library that hold its own test suites (CPython keeps
# some beside the modules they test) or files that are not part of the library.
_STDLIB_SKIP_DIRS = frozenset(
    {"test", "tests", "idle_test", "__pycache__", "site-packages", "dist-packages"}
)


class TextCorpus(ABC):
    """A named source of documents. ``documents()`` applies the spec's ``max_bytes`` cap."""

    def __init__(self, spec: CorpusSpec) -> None:
        self.spec = spec
        self.max_bytes = spec.int_option("max_bytes", minimum=1)

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def spec_text(self) -> str:
        """The spec as the user wrote it (for messages)."""
        return self.spec.text

    @abstractmethod
    def _documents(self) -> Iterator[str]:
        """All documents, uncapped, in a deterministic order."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes when the corpus's contents may have changed."""

    @abstractmethod
    def canonical(self) -> str:
        """The spec with paths resolved and options normalised (part of the cache key)."""

    def slug(self) -> str:
        """A short readable name for cache directories."""
        return self.kind

    def documents(self) -> Iterator[str]:
        """Non-empty documents in order; with ``max_bytes``, the longest prefix of the corpus
        within that many UTF-8 bytes (the document that crosses the cap is cut at a line end)."""
        budget = self.max_bytes
        for doc in self._documents():
            if not doc:
                continue
            if budget is None:
                yield doc
                continue
            raw = doc.encode("utf-8")
            if len(raw) <= budget:
                budget -= len(raw)
                yield doc
                continue
            cut = raw[:budget]
            end = cut.rfind(b"\n")
            if end >= 0:
                yield cut[: end + 1].decode("utf-8", errors="ignore")
            return

    def _opts(self) -> str:
        return "".join(f",{k}={v}" for k, v in self.spec.options)


def _read_text(path: Path) -> str:
    # Invalid UTF-8 is replaced (U+FFFD) rather than fatal: one odd file in a directory
    # should not stop a study; the replacement is visible in the decoded text.
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise DataError(
            f"cannot read corpus file {path}: {e.strerror}; fix its permissions"
        ) from None


def _stat_fingerprint(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _walk_files(root: Path, skip_dirs: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under ``root``, hidden files and directories skipped, sorted by POSIX path."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in skip_dirs]
        out.extend(Path(dirpath, f) for f in filenames if not f.startswith("."))
    return sorted(out, key=lambda p: p.relative_to(root).as_posix())


def _path_fraction(rel: Path) -> float:
    """A stable hash of a relative POSIX path as a fraction in [0, 1)."""
    digest = hashlib.blake2b(rel.as_posix().encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class PythonStdlib(TextCorpus):
    """The ``.py`` files of the running interpreter's standard library, tests excluded.

    Each file is a document, in order of its path relative to the library root.
    Excluded: test packages (``test/``, ``tests/``, ``idle_test/``, ``test_*.py``),
    installed third-party packages (``site-packages``), and build-specific files
    (``config-*/``, ``_sysconfigdata_*.py``), so two installs of the same Python
    version give the same corpus (about 12 MB for CPython 3.11). ``sample=F`` keeps the
    files whose relative path hashes below ``F`` (a share spread over the whole library).
    """

    def __init__(self, spec: CorpusSpec) -> None:
        super().__init__(spec)
        self.root = Path(sysconfig.get_paths()["stdlib"])
        # sample=F keeps the files whose path hashes below F: a share of the library spread
        # over all of it (max_bytes alone keeps an alphabetical prefix)
        self.sample = spec.float_option("sample", 1.0)
        if self.sample > 1.0:
            raise DataError(
                f"data.corpus = {spec.text!r}: sample is a share of the files in (0, 1], "
                f"got {self.sample}"
            )
        if not self.root.is_dir():
            raise DataError(
                f"data.corpus = 'python-stdlib': this interpreter's standard library "
                f"({self.root}) is not a directory; use a text: or jsonl: corpus instead"
            )
        self._files: list[Path] | None = None

    def files(self) -> list[Path]:
        if self._files is None:
            self._files = [
                p
                for p in _walk_files(self.root, _STDLIB_SKIP_DIRS)
                if p.suffix == ".py"
                and not p.name.startswith(("test_", "_sysconfigdata_"))
                and not p.relative_to(self.root).parts[0].startswith("config-")
                and (self.sample >= 1.0 or _path_fraction(p.relative_to(self.root)) < self.sample)
            ]
            if not self._files:
                raise DataError(
                    f"data.corpus = 'python-stdlib': no .py files under {self.root}; "
                    "use a text: or jsonl: corpus instead"
                )
        return self._files

    def _documents(self) -> Iterator[str]:
        for p in self.files():
            yield _read_text(p)

    def fingerprint(self) -> str:
        return _stat_fingerprint(self.files(), f"{sys.implementation.name}{sys.version}")

    def canonical(self) -> str:
        v = sys.version_info
        return (
            f"python-stdlib{self._opts()} ({sys.implementation.name} {v.major}.{v.minor}.{v.micro})"
        )


def _expand_paths(pattern: str, what: str, spec: str, suffixes: tuple[str, ...] = ()) -> list[Path]:
    """A file, a directory (all files under it) or a glob -> sorted list of files."""
    if any(c in pattern for c in "*?["):
        paths = sorted(
            Path(p)
            for p in glob.glob(os.path.expanduser(pattern), recursive=True)
            if Path(p).is_file()
        )
        if not paths:
            raise DataError(
                f"data.corpus = {spec!r}: the glob {pattern!r} matches no {what} files "
                f"(relative to {Path.cwd()}); check the pattern"
            )
        return [p.resolve() for p in paths]
    path = Path(pattern).expanduser()
    if path.is_file():
        return [path.resolve()]
    if path.is_dir():
        files = _walk_files(path)
        if suffixes:
            files = [p for p in files if p.name.endswith(suffixes)]
        if not files:
            extra = f" ending in {' or '.join(suffixes)}" if suffixes else ""
            raise DataError(
                f"data.corpus = {spec!r}: the directory {str(path)!r} holds no {what} "
                f"files{extra}; point it at a directory with documents"
            )
        return [p.resolve() for p in files]
    raise DataError(
        f"data.corpus = {spec!r}: {str(path)!r} does not exist (relative to {Path.cwd()}); "
        "give an existing file, directory or glob"
    )


def _is_binary(path: Path) -> bool:
    with path.open("rb") as f:
        return b"\0" in f.read(8192)


class TextFiles(TextCorpus):
    """``text:PATH``: plain text files.

    A directory or a glob: every (non-hidden, non-binary) file is one document.
    A single file: its paragraphs (separated by blank lines) are the documents, so
    one big file such as a book still gives a validation split.
    """

    def __init__(self, spec: CorpusSpec) -> None:
        super().__init__(spec)
        self.pattern = spec.args[0]
        paths = _expand_paths(self.pattern, "text", spec.text)
        self.single = len(paths) == 1 and Path(self.pattern).expanduser().is_file()
        if not self.single:
            paths = [p for p in paths if not _is_binary(p)]
            if not paths:
                raise DataError(
                    f"data.corpus = {spec.text!r}: every file it names is binary (holds NUL "
                    "bytes); point it at text files"
                )
        self.paths = paths

    def _documents(self) -> Iterator[str]:
        if self.single:
            for para in re.split(r"\n[ \t\r]*\n", _read_text(self.paths[0])):
                para = para.strip("\n")
                if para.strip():
                    yield para
            return
        for p in self.paths:
            yield _read_text(p)

    def fingerprint(self) -> str:
        return _stat_fingerprint(self.paths)

    def canonical(self) -> str:
        where = str(self.paths[0]) if self.single else os.path.abspath(self.pattern)
        return f"text:{where}{self._opts()}"

    def slug(self) -> str:
        return "text-" + _safe_name(Path(self.pattern).name or "corpus")


def _get_field(obj: Any, field: str) -> Any:
    """``obj['a']['b']`` for ``field = 'a.b'`` (a literal key with dots wins)."""
    if isinstance(obj, dict) and field in obj:
        return obj[field]
    for part in field.split("."):
        if not isinstance(obj, dict) or part not in obj:
            raise KeyError(part)
        obj = obj[part]
    return obj


class JsonLines(TextCorpus):
    """``jsonl:PATH:FIELD``: one JSON object per line, the document is ``obj[FIELD]``.

    PATH is a file, a directory (its ``.jsonl``, ``.json``, ``.jsonl.gz`` and
    ``.json.gz`` files) or a glob; FIELD may be dotted (``meta.text``) for nested
    objects. Lines whose field is null or empty are skipped; a missing field or a
    line that is not JSON is an error naming the file and line.
    """

    SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".ndjson")

    def __init__(self, spec: CorpusSpec) -> None:
        super().__init__(spec)
        self.pattern, self.field = spec.args
        self.paths = _expand_paths(self.pattern, "JSON lines", spec.text, self.SUFFIXES)

    def _lines(self, path: Path) -> Iterator[str]:
        try:
            if path.name.endswith(".gz"):
                with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                    yield from f
            else:
                with path.open(encoding="utf-8", errors="replace") as f:
                    yield from f
        except (OSError, EOFError) as e:
            raise DataError(f"cannot read corpus file {path}: {e}; fix or remove it") from None

    def _documents(self) -> Iterator[str]:
        for path in self.paths:
            for lineno, line in enumerate(self._lines(path), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(
                        f"data.corpus = {self.spec.text!r}: {path}:{lineno} is not JSON ({e.msg}); "
                        "each line must be one JSON object"
                    ) from None
                try:
                    value = _get_field(obj, self.field)
                except KeyError:
                    keys = ", ".join(map(repr, obj)) if isinstance(obj, dict) else "none"
                    raise DataError(
                        f"data.corpus = {self.spec.text!r}: {path}:{lineno} has no field "
                        f"{self.field!r} (its fields: {keys}); name the field holding the text"
                    ) from None
                if value is None:
                    continue
                if not isinstance(value, str):
                    raise DataError(
                        f"data.corpus = {self.spec.text!r}: {path}:{lineno}: field {self.field!r} "
                        f"is a {type(value).__name__}, not a string; name the field holding the text"
                    )
                yield value

    def fingerprint(self) -> str:
        return _stat_fingerprint(self.paths)

    def canonical(self) -> str:
        return f"jsonl:{os.path.abspath(self.pattern)}:{self.field}{self._opts()}"

    def slug(self) -> str:
        return "jsonl-" + _safe_name(Path(self.pattern).name or "corpus")


# local file suffix -> the `datasets` packaged builder that reads it
_HF_BUILDERS = {
    ".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
    ".txt": "text", ".arrow": "arrow",
}  # fmt: skip


class HuggingFace(TextCorpus):
    """``hf:NAME[:CONFIG]`` through Hugging Face ``datasets`` (``pip install 'scalelab[hf]'``).

    NAME is a dataset on the Hub or a local path (a data file, or a directory that
    ``datasets.load_dataset`` understands). The ``train`` split is used when there
    is one (so a dataset's own test split never leaks into training), else all
    splits in name order; ``split=NAME`` picks another. The text column is ``text``
    when present, else the only string column, else ``field=NAME``.
    """

    def __init__(self, spec: CorpusSpec) -> None:
        super().__init__(spec)
        body = spec.args[0]
        local = Path(body).expanduser()
        if local.exists():
            self.name, self.config = str(local.resolve()), None
        else:
            name, _, config = body.partition(":")
            self.name, self.config = name, config or None
            if Path(name).expanduser().exists():
                self.name = str(Path(name).expanduser().resolve())
            elif name.startswith((".", "/", "~")):
                raise DataError(
                    f"data.corpus = {spec.text!r}: local dataset path {name!r} does not exist "
                    f"(relative to {Path.cwd()}); give an existing path or a Hub dataset name"
                )
        self.field = spec.option("field")
        self.split = spec.option("split")

    def _load(self) -> Any:
        try:
            import datasets
        except ImportError:
            raise DataError(
                f"data.corpus = {self.spec.text!r}: hf corpora need the Hugging Face `datasets` "
                "package: pip install 'scalelab[hf]' (or use a text: or jsonl: corpus)"
            ) from None
        path = Path(self.name)
        try:
            if path.is_file():
                suffix = path.suffix.lower()
                if suffix not in _HF_BUILDERS:
                    raise DataError(
                        f"data.corpus = {self.spec.text!r}: cannot tell the format of {path.name}; "
                        f"use one of {', '.join(sorted(_HF_BUILDERS))} or a text:/jsonl: corpus"
                    )
                loaded = datasets.load_dataset(_HF_BUILDERS[suffix], data_files=str(path))
            else:
                from scalelab.waiting import note_if_slow

                with note_if_slow(
                    f"waiting for the Hugging Face Hub to load {self.name!r}; without a network "
                    "this ends in a timeout: set HF_HUB_OFFLINE=1 to use only the local cache"
                ):
                    loaded = datasets.load_dataset(self.name, self.config)
        except DataError:
            raise
        except Exception as e:  # datasets raises many types (FileNotFoundError, ValueError, ...)
            raise DataError(
                f"data.corpus = {self.spec.text!r}: datasets could not load {self.name!r}"
                f"{f' (config {self.config!r})' if self.config else ''}: {e}"
            ) from None
        return loaded

    def _splits(self, loaded: Any) -> list[Any]:
        if not hasattr(loaded, "keys"):  # a single Dataset
            return [loaded]
        names = sorted(loaded.keys())
        if self.split is not None:
            if self.split not in names:
                raise DataError(
                    f"data.corpus = {self.spec.text!r}: no split {self.split!r}; "
                    f"splits: {', '.join(names)}"
                )
            return [loaded[self.split]]
        if "train" in names:
            return [loaded["train"]]
        return [loaded[n] for n in names]

    def _column(self, ds: Any) -> str:
        features = ds.features
        if self.field is not None:
            if self.field not in features:
                raise DataError(
                    f"data.corpus = {self.spec.text!r}: no column {self.field!r}; "
                    f"columns: {', '.join(features)}"
                )
            return self.field
        if "text" in features:
            return "text"
        strings = [
            k
            for k, f in features.items()
            if getattr(f, "dtype", None) in ("string", "large_string")
        ]
        if len(strings) == 1:
            return strings[0]
        raise DataError(
            f"data.corpus = {self.spec.text!r}: cannot tell which column holds the text "
            f"(columns: {', '.join(features)}); add ,field=NAME to the spec"
        )

    def _documents(self) -> Iterator[str]:
        for ds in self._splits(self._load()):
            column = self._column(ds)
            for batch in ds.select_columns([column]).iter(batch_size=1024):
                for value in batch[column]:
                    if isinstance(value, str):
                        yield value

    def fingerprint(self) -> str:
        path = Path(self.name)
        if path.is_file():
            return _stat_fingerprint([path])
        if path.is_dir():
            return _stat_fingerprint(_walk_files(path))
        return "hub"  # a Hub dataset is identified by name and config only

    def canonical(self) -> str:
        config = f":{self.config}" if self.config else ""
        return f"hf:{self.name}{config}{self._opts()}"

    def slug(self) -> str:
        return "hf-" + _safe_name(Path(self.name).name or "dataset")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40].strip("._") or "corpus"


_CORPORA: dict[str, type[TextCorpus]] = {
    "python-stdlib": PythonStdlib,
    "text": TextFiles,
    "jsonl": JsonLines,
    "hf": HuggingFace,
}


def open_corpus(spec: str | CorpusSpec) -> Any:
    """A corpus object for a spec string: a :class:`TextCorpus`, or a
    :class:`scalelab.data.markov.MarkovSource` for ``markov:...``, or a
    :class:`scalelab.data.synthetic.SyntheticSource` for ``facts:...`` and ``bits:...``.

    Checks that the corpus exists (paths, options) without reading it.
    """
    parsed = spec if isinstance(spec, CorpusSpec) else parse_spec(spec)
    if parsed.kind == "markov":
        return MarkovSource.from_spec(parsed)
    if parsed.kind == "facts":
        from scalelab.data.facts import FactsSource

        return FactsSource.from_spec(parsed)
    if parsed.kind == "bits":
        from scalelab.data.bits import BitsSource

        return BitsSource.from_spec(parsed)
    return _CORPORA[parsed.kind](parsed)


__all__ = [
    "EXAMPLES",
    "HuggingFace",
    "JsonLines",
    "PythonStdlib",
    "TextCorpus",
    "TextFiles",
    "open_corpus",
]
