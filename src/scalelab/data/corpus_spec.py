"""Corpus spec strings: ``KIND[:ARGS][,key=value]...``.

One string names a corpus everywhere (TOML ``data.corpus``, ``--set``, the CLI):

==================================================  =====================================
spec                                                corpus
==================================================  =====================================
``python-stdlib[:max_bytes=N][,sample=F]``          the running Python's standard library
``markov:order=K,vocab=V,seed=S[,tokens=N]``        synthetic order-K Markov source
``[,temperature=T]``
``facts:people=P[,attributes=A][,templates=K]``      synthetic biographies (known bits)
``[,seed=S]``
``bits:strings=S,length=L[,seed=S][,symbols=V]``    uniformly random strings
``text:PATH[,max_bytes=N]``                         a text file, a directory or a glob
``jsonl:PATH:FIELD[,max_bytes=N]``                  one document per JSON line
``hf:NAME[:CONFIG][,field=F][,split=S]``            Hugging Face ``datasets`` (name or path)
``[,max_bytes=N]``
==================================================  =====================================

One grammar: the kind, a colon, then the body: the kind's positional arguments
(a path; ``jsonl`` a path and a field, ``hf`` a name and a config, separated by
colons) and then its options, each as ``,key=value``. A kind without positional
arguments starts its body with the first option (``python-stdlib:max_bytes=N``).
``python-stdlib,max_bytes=N`` is an error that shows this form. Unknown options are
errors, so a typo never silently changes the corpus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scalelab.errors import DataError, did_you_mean

# kind -> the options it accepts
KINDS: dict[str, tuple[str, ...]] = {
    "python-stdlib": ("max_bytes", "sample"),
    "markov": ("order", "vocab", "seed", "tokens", "temperature"),
    "facts": ("people", "attributes", "templates", "seed"),
    "bits": ("strings", "length", "seed", "symbols"),
    "text": ("max_bytes",),
    "jsonl": ("max_bytes",),
    "hf": ("field", "split", "max_bytes"),
}
# kinds whose body is all options (no path or name before them)
_OPTIONS_ONLY = ("python-stdlib", "markov", "facts", "bits")

EXAMPLES = {
    "python-stdlib": "python-stdlib or python-stdlib:max_bytes=2000000",
    "markov": "markov:order=1,vocab=64,seed=0",
    "facts": "facts:people=1000,attributes=6,templates=1,seed=0",
    "bits": "bits:strings=1000,length=64,seed=0",
    "text": "text:data/books/ or text:'data/*.txt'",
    "jsonl": "jsonl:data/docs.jsonl:text",
    "hf": "hf:path/to/local/dataset or hf:wikitext:wikitext-2-raw-v1",
}

_TRAILING_OPTION = re.compile(r",([A-Za-z_][A-Za-z0-9_]*)=([^,=]*)$")
_LEADING_OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=([^,=]*)$")


@dataclass(frozen=True)
class CorpusSpec:
    """A parsed spec: ``kind``, positional ``args`` (path, field, name, config) and ``options``."""

    kind: str
    args: tuple[str, ...]
    options: tuple[tuple[str, str], ...]  # sorted (key, raw value) pairs
    text: str  # the spec as written

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key)

    def _number(self, key: str) -> float | None:
        """The option as a float (NaN when it is not a number), or None when absent."""
        raw = self.option(key)
        if raw is None:
            return None
        try:
            return float(raw)
        except ValueError:
            return float("nan")

    def int_option(self, key: str, default: int | None = None, minimum: int = 0) -> int | None:
        value = self._number(key)
        if value is None:
            return default
        if not value.is_integer() or value < minimum:
            raise DataError(
                f"data.corpus = {self.text!r}: {key} must be an integer >= {minimum}, "
                f"got {self.option(key)!r}"
            )
        return int(value)

    def require(self, *keys: str) -> None:
        """A ``DataError`` naming the options this kind needs that the spec does not give."""
        missing = [k for k in keys if self.option(k) is None]
        if missing:
            raise DataError(
                f"data.corpus = {self.text!r}: a {self.kind} corpus needs "
                f"{' and '.join(missing)}, e.g. {EXAMPLES[self.kind]}"
            )

    def float_option(self, key: str, default: float) -> float:
        value = self._number(key)
        if value is None:
            return default
        if not value > 0 or value == float("inf"):
            raise DataError(
                f"data.corpus = {self.text!r}: {key} must be a positive number, "
                f"got {self.option(key)!r}"
            )
        return value


def parse_spec(text: str) -> CorpusSpec:
    """Split a spec string into kind, positional arguments and options, checking names."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(
            "data.corpus is empty: name a corpus, e.g. 'python-stdlib', "
            "'markov:order=1,vocab=64,seed=0' or 'text:PATH'"
        )
    spec = text.strip()
    kind, _, body = spec.partition(":")
    head = kind.split(",", 1)[0]
    if kind not in KINDS and head in KINDS:
        # `python-stdlib,max_bytes=N`: options follow the colon (and the kind's path, if any).
        rest = kind[len(head) + 1 :] + (":" + body if body else "")
        right = f"{head}:{rest}" if head in _OPTIONS_ONLY else EXAMPLES[head]
        raise DataError(
            f"data.corpus = {spec!r}: the kind is followed by a colon, then its path (if it has "
            f"one) and its key=value options, comma-separated: write {right!r}"
        )
    if kind not in KINDS:
        raise DataError(
            f"data.corpus = {spec!r}: unknown corpus kind {kind!r}{did_you_mean(kind, KINDS)}; "
            f"kinds: {', '.join(KINDS)} (e.g. {EXAMPLES['text']})"
        )
    allowed = KINDS[kind]
    found: dict[str, str] = {}

    def add(key: str, value: str) -> None:
        if key not in allowed:
            raise DataError(
                f"data.corpus = {spec!r}: unknown option {key!r} for a {kind} corpus"
                f"{did_you_mean(key, allowed)}; options: {', '.join(allowed)}"
            )
        if key in found:
            raise DataError(f"data.corpus = {spec!r}: option {key!r} is given twice")
        found[key] = value.strip()

    while m := _TRAILING_OPTION.search(body):
        add(m.group(1), m.group(2))
        body = body[: m.start()]
    if kind in _OPTIONS_ONLY and body:
        m = _LEADING_OPTION.match(body)
        if not m:
            raise DataError(
                f"data.corpus = {spec!r}: a {kind} corpus takes only key=value options, "
                f"e.g. {EXAMPLES[kind]}"
            )
        add(m.group(1), m.group(2))
        body = ""

    args: tuple[str, ...]
    if kind in _OPTIONS_ONLY:
        args = ()
    elif kind == "text":
        args = (body,)
    elif kind == "jsonl":
        path, sep, field = body.rpartition(":")
        if not sep or not path or not field:
            raise DataError(
                f"data.corpus = {spec!r}: a jsonl corpus names a path and the JSON field "
                f"holding the text, e.g. {EXAMPLES['jsonl']}"
            )
        args = (path, field)
    else:  # hf
        args = (body,)
    if any(not a for a in args):
        raise DataError(
            f"data.corpus = {spec!r}: the {kind} corpus needs a path or name, e.g. {EXAMPLES[kind]}"
        )
    return CorpusSpec(kind, args, tuple(sorted(found.items())), spec)


def tokenizer_label(corpus: str | None, tokenizer: str | None) -> str | None:
    """The tokenizer a run really used: a ``markov:`` source's symbols are its tokens
    (``data.tokenizer`` is not used there), any other corpus uses ``data.tokenizer``."""
    if corpus is not None and str(corpus).split(":", 1)[0].strip() == "markov":
        return "symbols"
    return tokenizer
