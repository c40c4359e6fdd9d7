"""Zero-shot items: multiple choice built from held-out text (see :mod:`scalelab.tasks.registry`).

Each builder returns every candidate item of its task, in a deterministic order; the caller
draws ``n`` of them with a seeded generator. An item's ``context`` is the held-out document
up to the point of the question (the scorer keeps its last ``context`` tokens), its
``choices`` the strings to score after it, ``answer`` the index of the true one.

Items are chosen where a model must know something: brackets are balanced between ``)``
and ``]`` (``)`` alone is 80% of closing brackets in Python, so an unbalanced set would reward
a model that always says ``)``), indentation is asked where it *changes* (a line at the
previous line's indentation is the easy, frequent case), and next-line distractors share the
true line's indentation (so the indentation alone gives nothing away).
"""

from __future__ import annotations

import io
import random
import re
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

from scalelab.config import DataConfig
from scalelab.tasks.sources import heldout_documents, python_documents


@dataclass(frozen=True)
class Item:
    context: str
    choices: tuple[str, ...]
    answer: int


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _place(rng: random.Random, true: str, others: list[str]) -> tuple[tuple[str, ...], int]:
    """The true choice among ``others`` at a random position."""
    choices = list(others)
    k = rng.randrange(len(choices) + 1)
    choices.insert(k, true)
    return tuple(choices), k


def next_line(data: DataConfig, seed: int = 0) -> list[Item]:
    """The true next line against three lines of other held-out files at the same indentation."""
    rng = random.Random(seed)
    docs = python_documents(data, task="code-next-line")
    by_indent: dict[str, list[tuple[int, str]]] = {}
    lines_of = [d.splitlines(keepends=True) for d in docs]
    for i, lines in enumerate(lines_of):
        for line in lines:
            if len(line.strip()) >= 8:
                by_indent.setdefault(_indent(line), []).append((i, line))
    items = []
    for i, lines in enumerate(lines_of):
        offset = 0
        for j, line in enumerate(lines):
            start = offset
            offset += len(line)
            if j < 3 or len(line.strip()) < 8:
                continue
            pool = by_indent[_indent(line)]
            picked: list[str] = []
            for _ in range(30):  # rejection: another file's line, not this one's text
                doc, text = pool[rng.randrange(len(pool))]
                if doc != i and text.strip() != line.strip() and text not in picked:
                    picked.append(text)
                    if len(picked) == 3:
                        break
            if len(picked) < 3:
                continue
            choices, answer = _place(rng, line, picked)
            items.append(Item(docs[i][:start], choices, answer))
    return items


_CLOSERS = (")", "]")


def brackets(data: DataConfig, seed: int = 0) -> list[Item]:
    """Real positions where ``)`` or ``]`` closes (found by Python's tokenizer, so none
    inside strings or comments), as many of each: a model that always answers ``)`` (the
    commonest, 80% of closers in Python) scores exactly chance. Braces are left out: the
    held-out standard library has 11, too few to balance a third class."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Item]] = {c: [] for c in _CLOSERS}
    for doc in python_documents(data, task="code-brackets"):
        starts = [0]
        for line in doc.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(doc).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for tok in toks:
            if tok.type == tokenize.OP and tok.string in _CLOSERS:
                pos = starts[tok.start[0] - 1] + tok.start[1]
                by_kind[tok.string].append(Item(doc[:pos], _CLOSERS, _CLOSERS.index(tok.string)))
    per_kind = min(len(v) for v in by_kind.values())
    items = []
    for kind in _CLOSERS:
        items.extend(rng.sample(by_kind[kind], per_kind))
    return items


def indentation(data: DataConfig, seed: int = 0) -> list[Item]:
    """The indentation of the next line where it differs from the previous line's: the true
    level and the three nearest other multiples of 4 spaces (none below 0), each choice the
    whole next line at that indentation."""
    rng = random.Random(seed)
    items = []
    for doc in python_documents(data, task="code-indent"):
        offset, prev = 0, None
        for line in doc.splitlines(keepends=True):
            start = offset
            offset += len(line)
            if not line.strip():
                continue
            ind = _indent(line)
            level = len(ind)
            if prev is not None and level != prev and set(ind) <= {" "} and level % 4 == 0:
                levels = sorted(
                    (lv for lv in range(0, level + 16, 4) if lv != level),
                    key=lambda lv: (abs(lv - level), rng.random()),
                )[:3]
                body = line.lstrip(" ")
                choices, answer = _place(rng, line, [" " * lv + body for lv in levels])
                items.append(Item(doc[:start], choices, answer))
            prev = level
    return items


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def cloze(data: DataConfig, seed: int = 0) -> list[Item]:
    """LAMBADA-style (Paperno et al. 2016): the last word of a paragraph (a block of text
    between blank lines, of 20 words or more) against three other words of the paragraph."""
    rng = random.Random(seed)
    items = []
    for doc in heldout_documents(data, task="cloze"):
        for m in re.finditer(r"(?:[^\n]*\S[^\n]*\n?)+", doc):
            para = m.group(0)
            words = list(_WORD.finditer(para))
            if len(words) < 20:
                continue
            last = words[-1]
            others = sorted({w.group(0) for w in words[:-1]} - {last.group(0)})
            if len(others) < 3:
                continue
            choices, answer = _place(rng, last.group(0), rng.sample(others, 3))
            items.append(Item(doc[: m.start() + last.start()], choices, answer))
    return items


BUILDERS: dict[str, Callable[[DataConfig, int], list[Item]]] = {
    "code-next-line": next_line,
    "code-brackets": brackets,
    "code-indent": indentation,
    "cloze": cloze,
}


def items(task: str, data: DataConfig, n: int | None = None, seed: int = 0) -> list[Item]:
    """Up to ``n`` items of ``task`` (all with ``None``), drawn with ``seed``; the same
    ``(task, corpus, n, seed)`` gives the same items on every machine."""
    pool = BUILDERS[task](data, seed)
    if n is not None and n < len(pool):
        pool = random.Random(seed).sample(pool, n)
    return pool
