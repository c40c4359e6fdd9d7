"""Where task items come from: the validation split of a run's corpus, never its training split.

The split rule is the token cache's (:mod:`scalelab.data.cache`): a document is held out when
the 64-bit hash of its UTF-8 text, read as a fraction, is below ``data.val_fraction`` (and,
for a corpus so small that no document falls there, the one with the smallest hash). It is
applied here to the documents themselves, so task items are the held-out text exactly and a
task never needs the tokenizer to find them.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass

from scalelab.config import DataConfig
from scalelab.data.cache import unit_hash
from scalelab.errors import DataError

# Splits read once per process per corpus: evaluating a ladder reads the corpus once.
_CACHE: dict[tuple[str, float], tuple[list[str], set[float]]] = {}


def _split(data: DataConfig, task: str) -> tuple[list[str], set[float]]:
    """(held-out documents in corpus order, hashes of the training documents)."""
    from scalelab.data.corpora import TextCorpus, open_corpus

    key = (data.corpus, data.val_fraction)
    if key in _CACHE:
        return _CACHE[key]
    corpus = open_corpus(data.corpus)
    if not isinstance(corpus, TextCorpus):
        _CACHE[key] = ([], set())
        return _CACHE[key]
    docs = list(corpus.documents())
    hashes = [unit_hash(d.encode("utf-8")) for d in docs]
    is_val = [h < data.val_fraction for h in hashes]
    if docs and not any(is_val):
        is_val[min(range(len(docs)), key=hashes.__getitem__)] = True
    held = [d for d, v in zip(docs, is_val, strict=True) if v]
    train = {h for h, v in zip(hashes, is_val, strict=True) if not v}
    _CACHE[key] = (held, train)
    return _CACHE[key]


def heldout_documents(data: DataConfig, *, task: str = "this task") -> list[str]:
    """The validation-split documents of ``data.corpus`` (a text corpus), in corpus order."""
    held, _ = _split(data, task)
    if not held:
        raise DataError(
            f"task {task!r} needs a text corpus, and data.corpus = {data.corpus!r} is a "
            "synthetic symbol source; evaluate a run trained on text (copy works on any corpus)"
        )
    return held


def stdlib_files_outside_training(data: DataConfig, *, task: str) -> list[tuple[str, str]]:
    """``(path relative to the library, text)`` of the interpreter's standard-library files
    that are not training documents of ``data.corpus``: for a run trained on
    ``python-stdlib`` its held-out files, for any other corpus every file it did not train on."""
    from scalelab.data.corpora import PythonStdlib
    from scalelab.data.spec import parse_spec

    _, train = _split(data, task)
    lib = PythonStdlib(parse_spec("python-stdlib"))
    out = []
    for path in lib.files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        if text and unit_hash(text.encode("utf-8")) not in train:
            out.append((path.relative_to(lib.root).as_posix(), text))
    return out


@dataclass(frozen=True)
class Function:
    """A function (or method) of a held-out file: its source, dedented, and where it is from."""

    name: str
    source: str
    module: str  # the file's first line-of-defence label: its top-level package or module


def python_documents(data: DataConfig, *, task: str) -> list[str]:
    """Held-out documents that parse as Python (the code tasks' source)."""
    docs = []
    for d in heldout_documents(data, task=task):
        try:
            ast.parse(d)
        except (SyntaxError, ValueError):
            continue
        docs.append(d)
    if not docs:
        raise DataError(
            f"task {task!r} needs Python code, and no held-out document of "
            f"data.corpus = {data.corpus!r} parses as Python; use a code task on a code corpus"
        )
    return docs


def functions(source: str, module: str) -> list[Function]:
    """Every ``def`` in ``source`` (methods included), with its source text dedented."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            seg = ast.get_source_segment(source, node)
            if seg:
                # get_source_segment drops the first line's indentation only; dedent the rest
                first, _, rest = seg.partition("\n")
                body = textwrap.dedent(" " * node.col_offset + first + "\n" + rest)
                out.append(Function(node.name, body, module))
    return out
