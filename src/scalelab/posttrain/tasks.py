"""Verifiable generative tasks: a prompt, the one right completion, and a grader in [0, 1].

Each task is written as characters (one byte token each under ``data.tokenizer = "bytes"``)
with a **fixed prompt length**, so a batch of prompts is a plain [B, T] tensor and sampling
needs no padding. A completion is the text the model writes after the prompt, up to its end
of sequence token. The grader (``score``) is exact match 1.0, with partial credit where it is
natural: the share of answer positions written right, over the longer of answer and
completion (so writing too much or too little costs as much as writing wrong).

* ``add-rev``: ``"42+75="`` -> ``"711"``: the sum of two zero-padded 2-digit numbers,
  written least significant digit first and padded to 3 digits (117 reversed). Lee et al. (2023, "Teaching
  arithmetic to small transformers", sec. 4) show that reversing the output lets a small
  model learn addition from scratch (each digit then depends only on digits already seen).
* ``sort``: ``"sort:53819="`` -> ``"13589"``: five digits in ascending order.
* ``dyck``: ``"([[(=" `` -> ``")]])"``: the brackets that close a prefix of a Dyck word over
  two bracket kinds, innermost first (the prefix is 10 brackets long and leaves 2-10 open).

Prompts come from a seed. Train and validation prompts never overlap: a prompt's split is a
function of its own hash (one in ten is validation), so any number of draws with any seed
keeps them apart (:func:`prompts`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scalelab import atomic
from scalelab.errors import ConfigError, did_you_mean
from scalelab.tasks.registry import TASKS, Task, register

VAL_SHARE = 10  # one prompt in VAL_SHARE (by its hash) is a validation prompt
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Verifiable:
    """A generative task: ``make(rng) -> (prompt, answer)`` and ``score(prompt, completion)``."""

    name: str
    prompt_len: int  # every prompt has this many characters
    max_answer: int  # the longest answer (the sampler's max_new_tokens is this + 1, for eos)
    make: Callable[[random.Random], tuple[str, str]]
    solve: Callable[[str], str]  # the right answer to a prompt
    description: str

    def score(self, prompt: str, completion: str) -> float:
        """1.0 for the right answer, else the share of positions right (see the module)."""
        return partial_credit(self.solve(prompt), completion)


def partial_credit(answer: str, completion: str) -> float:
    if completion == answer:
        return 1.0
    right = sum(a == c for a, c in zip(answer, completion, strict=False))
    return right / max(len(answer), len(completion), 1)


# -- the three tasks ---------------------------------------------------------------------------


def _add_make(rng: random.Random) -> tuple[str, str]:
    prompt = f"{rng.randrange(100):02d}+{rng.randrange(100):02d}="
    return prompt, _add_solve(prompt)


def _add_solve(prompt: str) -> str:
    a, b = prompt.rstrip("=").split("+")
    return f"{int(a) + int(b):03d}"[::-1]


def _sort_make(rng: random.Random) -> tuple[str, str]:
    prompt = "sort:" + "".join(str(rng.randrange(10)) for _ in range(5)) + "="
    return prompt, _sort_solve(prompt)


def _sort_solve(prompt: str) -> str:
    return "".join(sorted(prompt[len("sort:") : -1]))


_PAIRS = {"(": ")", "[": "]"}
DYCK_PREFIX = 10


def _dyck_make(rng: random.Random) -> tuple[str, str]:
    """A random prefix of 8 brackets that never closes what is not open and leaves at least
    one bracket open at the end (so there is always something to close)."""
    while True:
        stack: list[str] = []
        out = []
        for i in range(DYCK_PREFIX):
            left = DYCK_PREFIX - i
            # close only while the rest can still end with at least one open bracket
            if stack and (len(stack) > 1 or left > 1) and rng.random() < 0.45:
                out.append(_PAIRS[stack.pop()])
            else:
                stack.append(rng.choice("(["))
                out.append(stack[-1])
        if stack:
            prompt = "".join(out) + "="
            return prompt, _dyck_solve(prompt)


def _dyck_solve(prompt: str) -> str:
    stack: list[str] = []
    for c in prompt[:-1]:
        if c in _PAIRS:
            stack.append(c)
        elif stack:
            stack.pop()
    return "".join(_PAIRS[c] for c in reversed(stack))


VERIFIABLE: dict[str, Verifiable] = {
    t.name: t
    for t in (
        Verifiable(
            "add-rev",
            6,
            3,
            _add_make,
            _add_solve,
            "addition of two 2-digit numbers, the sum written reversed and padded "
            "('42+75=' -> '711'; Lee et al. 2023); partial credit per digit",
        ),
        Verifiable(
            "sort",
            11,
            5,
            _sort_make,
            _sort_solve,
            "sort five digits ('sort:53819=' -> '13589'); partial credit per position",
        ),
        Verifiable(
            "dyck",
            DYCK_PREFIX + 1,
            DYCK_PREFIX,
            _dyck_make,
            _dyck_solve,
            "close a prefix of a Dyck word over () and [] ('([[(=' -> ')]])'); partial "
            "credit per position",
        ),
    )
}

for _t in VERIFIABLE.values():
    if _t.name not in TASKS:
        register(
            Task(
                _t.name,
                "generative",
                "exact match",
                0.0,
                _t.description + " (scalelab posttrain; greedy decoding)",
                output="tokens",
            )
        )


def get_verifiable(name: str) -> Verifiable:
    """The task ``name`` with its grader, or a ``ConfigError`` naming the ones there are."""
    if name not in VERIFIABLE:
        other = (
            f" ({name!r} is a {TASKS[name].kind} task, without a grader)" if name in TASKS else ""
        )
        raise ConfigError(
            f"--task {name!r} is not a generative task with a grader{other}"
            f"{did_you_mean(name, VERIFIABLE)}; these are: {', '.join(VERIFIABLE)}"
        )
    return VERIFIABLE[name]


def split_of(prompt: str) -> str:
    digest = hashlib.sha256(prompt.encode()).digest()
    return "val" if int.from_bytes(digest[:8], "big") % VAL_SHARE == 0 else "train"


def prompts(task: str, split: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (prompt, answer) pairs of ``split`` drawn from ``seed`` (repeats possible when
    the task has few prompts, as a data set drawn with replacement would have)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    t = get_verifiable(task)
    rng = random.Random(f"{task}/{seed}")
    out: list[tuple[str, str]] = []
    while len(out) < n:
        prompt, answer = t.make(rng)
        if split_of(prompt) == split:
            out.append((prompt, answer))
    return out


def write_corpus(task: str, path: str | Path, n: int, seed: int = 0) -> Path:
    """``n`` training demonstrations ``prompt + answer``, one JSON line each (field
    ``text``): the pretraining corpus ``jsonl:PATH:text`` of a run that learns the task
    (each document ends with the tokenizer's eos, the end the sampler stops at)."""
    lines = [json.dumps({"text": p + a}) for p, a in prompts(task, "train", n, seed)]
    return atomic.write_text(path, "\n".join(lines) + "\n")
