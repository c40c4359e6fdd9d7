"""Fine-tune task data: labelled examples in train / validation / test parts.

Examples are token ids in the run's own tokenizer, each fitting its context: a ``prompt``
and either a class ``label`` (``output = "class"``) or ``answer`` tokens that follow the
prompt (``output = "tokens"``). Sources (never the run's training split):

* ``syntax``: snippets of held-out Python (1 to 8 consecutive lines, dedented, that parse
  alone) and a mutated copy of each (a bracket, colon, quote or operator deleted, inserted or
  swapped); the label is what ``ast.parse`` says of the text, not what the mutation meant,
  and the two classes are balanced by dropping the surplus of the larger.
* ``stdlib-package``: functions of the standard-library files the run did not train on
  (for a ``python-stdlib`` run, its held-out files), labelled by top-level package or
  module; the 4 labels with most functions, balanced; the prompt is the function's first
  ``context`` tokens.
* ``copy`` / ``add``: generated from the seed, their answers exact ("qwhdkzmb|qwhdkzmb",
  "417+85=502"); the test and validation prompts never occur in training.
"""

from __future__ import annotations

import ast
import random
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalelab.config import DataConfig
from scalelab.data.spec import parse_spec
from scalelab.errors import DataError
from scalelab.tasks.sources import functions, python_documents, stdlib_files_outside_training

if TYPE_CHECKING:
    from scalelab.data import Tokenizer

N_GENERATED = {"train": 2000, "val": 200, "test": 500}
COPY_LENGTH = 8
N_PACKAGES = 4
Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class Example:
    prompt: tuple[int, ...]
    label: int = -1  # class tasks
    answer: tuple[int, ...] = ()  # token tasks


@dataclass
class Splits:
    train: list[Example]
    val: list[Example]
    test: list[Example]
    labels: tuple[str, ...] = ()  # class names, for class tasks


def _split(examples: list[Example], rng: random.Random, labels: tuple[str, ...] = ()) -> Splits:
    """60 / 20 / 20, after a seeded shuffle."""
    examples = list(examples)
    rng.shuffle(examples)
    n = len(examples)
    a, b = int(0.6 * n), int(0.8 * n)
    return Splits(examples[:a], examples[a:b], examples[b:], labels)


def _balanced(by_label: dict[int, list[Example]], rng: random.Random) -> list[Example]:
    size = min(len(v) for v in by_label.values())
    out: list[Example] = []
    for label in sorted(by_label):
        out.extend(rng.sample(by_label[label], size))
    return out


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


_MUTATION_CHARS = "()[]{}:'\",=+"


def mutate(text: str, rng: random.Random) -> str:
    """One small edit at a syntax-bearing character: delete it, duplicate it, or replace it
    with another one of ``()[]{}:'",=+``; a snippet with none gets a stray bracket."""
    spots = [i for i, c in enumerate(text) if c in _MUTATION_CHARS]
    if not spots:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice("([{") + text[i:]
    i = rng.choice(spots)
    op = rng.randrange(3)
    if op == 0:
        return text[:i] + text[i + 1 :]
    if op == 1:
        return text[:i] + text[i] + text[i:]
    other = rng.choice([c for c in _MUTATION_CHARS if c != text[i]])
    return text[:i] + other + text[i + 1 :]


def syntax(data: DataConfig, encode: Encode, context: int, seed: int) -> Splits:
    rng = random.Random(seed)
    snippets: list[str] = []
    for doc in python_documents(data, task="syntax"):
        lines = doc.splitlines(keepends=True)
        i = 0
        while i < len(lines):
            for span in range(8, 0, -1):
                text = textwrap.dedent("".join(lines[i : i + span])).strip("\n")
                if (
                    len(text) >= 12
                    and any(c in text for c in "([{:")
                    and len(encode(text)) < context
                    and _parses(text)
                ):
                    snippets.append(text)
                    i += span
                    break
            else:
                i += 1
    by_label: dict[int, list[Example]] = {0: [], 1: []}
    for text in snippets:
        by_label[1].append(Example(tuple(encode(text)), 1))
        bad = mutate(text, rng)
        ids = encode(bad)
        if len(ids) < context:
            by_label[int(_parses(bad))].append(Example(tuple(ids), int(_parses(bad))))
    if min(len(v) for v in by_label.values()) < 10:
        raise DataError(
            f"task 'syntax': too few held-out snippets in {data.corpus!r} "
            f"({sum(map(len, by_label.values()))}); raise data.val_fraction or use a larger corpus"
        )
    return _split(_balanced(by_label, rng), rng, ("invalid", "valid"))


def stdlib_package(data: DataConfig, encode: Encode, context: int, seed: int) -> Splits:
    rng = random.Random(seed)
    found: dict[str, list[str]] = {}
    for path, text in stdlib_files_outside_training(data, task="stdlib-package"):
        module = path.split("/")[0].removesuffix(".py")
        found.setdefault(module, []).extend(f.source for f in functions(text, module))
    counts = Counter({m: len(v) for m, v in found.items()})
    top = sorted(counts.most_common(), key=lambda kv: (-kv[1], kv[0]))[:N_PACKAGES]
    if len(top) < N_PACKAGES or top[-1][1] < 10:
        raise DataError(
            f"task 'stdlib-package': the standard-library files outside this run's training "
            f"split hold too few functions for {N_PACKAGES} packages ({dict(top)}); raise "
            "data.val_fraction or fine-tune a run trained on another corpus"
        )
    labels = tuple(m for m, _ in top)
    by_label = {
        k: [Example(tuple(encode(src)[:context]), k) for src in found[m]]
        for k, m in enumerate(labels)
    }
    return _split(_balanced(by_label, rng), rng, labels)


def _generated(make: Callable[[random.Random], Example], seed: int) -> Splits:
    """Test, then validation, then training examples from one generator; a prompt already
    used in an earlier part is drawn again, so the parts never share a prompt."""
    rng = random.Random(seed)
    seen: set[tuple[int, ...]] = set()
    parts: dict[str, list[Example]] = {}
    for part in ("test", "val", "train"):
        out: list[Example] = []
        while len(out) < N_GENERATED[part]:
            ex = make(rng)
            if ex.prompt not in seen:
                seen.add(ex.prompt)
                out.append(ex)
        parts[part] = out
    return Splits(parts["train"], parts["val"], parts["test"])


def copy_task(encode: Encode, seed: int, eos: int, n_symbols: int | None) -> Splits:
    if n_symbols is not None:  # a symbol source: copy symbol ids, eos as the separator

        def make(rng: random.Random) -> Example:
            seq = tuple(rng.randrange(n_symbols) for _ in range(COPY_LENGTH))
            return Example((*seq, eos), answer=seq)

    else:

        def make(rng: random.Random) -> Example:
            seq = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(COPY_LENGTH))
            return Example(tuple(encode(seq + "|")), answer=tuple(encode(seq)))

    return _generated(make, seed)


def add_task(encode: Encode, seed: int) -> Splits:
    def make(rng: random.Random) -> Example:
        a, b = rng.randrange(1000), rng.randrange(1000)
        return Example(tuple(encode(f"{a}+{b}=")), answer=tuple(encode(f"{a + b}\n")))

    return _generated(make, seed)


def build(task: str, data: DataConfig, tokenizer: Tokenizer, context: int, seed: int = 0) -> Splits:
    """The examples of fine-tune task ``task`` for a run with ``data`` and ``tokenizer``."""
    encode = tokenizer.encode
    if task == "syntax":
        return syntax(data, encode, context, seed)
    if task == "stdlib-package":
        return stdlib_package(data, encode, context, seed)
    if task == "copy":
        symbols = (
            int(getattr(tokenizer, "n_symbols", 0)) or None
            if parse_spec(data.corpus).kind == "markov"
            else None
        )
        return copy_task(encode, seed, tokenizer.eos_id, symbols)
    if task == "add":
        return add_task(encode, seed)
    raise DataError(f"no examples for task {task!r}")  # pragma: no cover - registry checked
