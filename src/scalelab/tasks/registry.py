"""The task registry: every downstream task scalelab can score, torch-free.

A task is offline and deterministic: its items come from the **validation split** of the
run's own corpus (documents whose hash puts them there, :func:`scalelab.data.split_of`) or
are generated from a seed, never from the training split, so a model is never scored on
text it was trained on. Each task states its chance level: the accuracy of guessing
uniformly among its choices (or of always guessing, for an exact-match answer).

Three kinds:

* ``zero-shot``: multiple choice scored by the model's log-likelihood of each choice after
  the context (the choice with the highest likelihood is the model's answer); nothing is
  trained. ``normalize = "bytes"`` divides the log-likelihood by the choice's UTF-8 length,
  so choices of different lengths compete fairly (the ``acc_norm`` convention of
  evaluation harnesses); ``None`` keeps the sum (choices of one length).
* ``fine-tune``: labelled examples split into train / validation / test; the model is
  fine-tuned (``scalelab finetune``) and scored on the test part. ``output`` is
  ``"class"`` (a classification head over ``n_classes`` labels) or ``"tokens"`` (the
  answer is a token sequence, scored by exact match under teacher-forced argmax, which is
  what greedy decoding returns when every position is right).

* ``generative``: a prompt the model completes by sampling, scored by a programmatic grader
  in [0, 1] (the verifiable tasks of post-training, :mod:`scalelab.posttrain.tasks`, which
  registers them when imported).

``needs`` names what the run must have: ``"text"`` (a text tokenizer: the task is written
as characters) or ``"python"`` (text that parses as Python, for the code tasks).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from scalelab.errors import ConfigError, did_you_mean

KINDS = ("zero-shot", "fine-tune", "generative")


@dataclass(frozen=True)
class Task:
    """One downstream task (see the module docstring)."""

    name: str
    kind: str  # "zero-shot" or "fine-tune"
    metric: str
    chance: float
    description: str
    needs: tuple[str, ...] = ()  # "text", "python"
    n_choices: int | None = None  # zero-shot: choices per item
    normalize: str | None = None  # zero-shot: None (sum of log-probs) or "bytes"
    output: str | None = None  # fine-tune: "class" or "tokens"
    n_classes: int | None = None  # fine-tune, output "class"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["needs"] = list(self.needs)
        return d


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.kind not in KINDS:
        raise ValueError(f"task kind {task.kind!r} is not one of {KINDS}")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    """The registered task ``name``, or a ``ConfigError`` naming the nearest one."""
    if name not in TASKS:
        raise ConfigError(
            f"unknown task {name!r}{did_you_mean(name, TASKS)}; "
            f"tasks: {', '.join(TASKS)} (scalelab tasks lists them)"
        )
    return TASKS[name]


def task_names(kind: str | None = None) -> list[str]:
    return [n for n, t in TASKS.items() if kind is None or t.kind == kind]


def tasks_table() -> Any:
    """A DataFrame, one row per task: ``name``, ``kind``, ``metric``, ``chance``,
    ``description``, ``needs`` (what ``scalelab tasks --json`` prints)."""
    import pandas as pd

    return pd.DataFrame([t.to_dict() for t in TASKS.values()])


# -- the tasks ------------------------------------------------------------------------------

register(
    Task(
        "code-next-line",
        "zero-shot",
        "accuracy",
        0.25,
        "the true next line of a held-out Python file against three lines from other "
        "held-out files at the same indentation",
        needs=("text", "python"),
        n_choices=4,
        normalize="bytes",
    )
)
register(
    Task(
        "code-brackets",
        "zero-shot",
        "accuracy",
        0.5,
        "which bracket closes next, ')' or ']', at a real closing position of held-out code "
        "(as many of each, so always answering ')' is chance)",
        needs=("text", "python"),
        n_choices=2,
    )
)
register(
    Task(
        "code-indent",
        "zero-shot",
        "accuracy",
        0.25,
        "the indentation of the next line of held-out code among four levels "
        "(the true one and its neighbours, 4 spaces apart)",
        needs=("text", "python"),
        n_choices=4,
    )
)
register(
    Task(
        "cloze",
        "zero-shot",
        "accuracy",
        0.25,
        "LAMBADA-style: the last word of a held-out paragraph against three other words of "
        "the same paragraph",
        needs=("text",),
        n_choices=4,
        normalize="bytes",
    )
)
register(
    Task(
        "syntax",
        "fine-tune",
        "accuracy",
        0.5,
        "is this Python snippet valid? held-out code and mutated copies, labelled by ast.parse "
        "(classes balanced)",
        needs=("text", "python"),
        output="class",
        n_classes=2,
    )
)
register(
    Task(
        "stdlib-package",
        "fine-tune",
        "accuracy",
        0.25,
        "which of 4 standard-library packages a held-out function comes from "
        "(the 4 with most held-out functions; classes balanced)",
        needs=("text", "python"),
        output="class",
        n_classes=4,
    )
)
register(
    Task(
        "copy",
        "fine-tune",
        "exact match",
        0.0,
        "in-context copying: a random sequence of 8 symbols, a separator, then the same "
        "sequence (any corpus; exact match of all 8)",
        output="tokens",
    )
)
register(
    Task(
        "add",
        "fine-tune",
        "exact match",
        0.0,
        "in-context addition of two 3-digit numbers written as text ('417+85=502'; exact match)",
        needs=("text",),
        output="tokens",
    )
)
