"""The budget rule: how many tokens (and whole optimizer steps) a run trains, and the guard
against a budget the corpus cannot supply. Used by the trainer and by a study's cost
estimate alike, so the two cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scalelab.errors import ConfigError

if TYPE_CHECKING:
    from scalelab.config.run import RunConfig

DEFAULT_TOKENS_PER_PARAM = 20.0  # Hoffmann et al. 2022 (Chinchilla), table 3


def budget_tokens(cfg: RunConfig, non_embedding: int, unique_tokens: int) -> tuple[int, str]:
    """The budget rule: planned training tokens and a note of where the number came from.

    ``train.tokens`` as given; ``train.epochs`` times the corpus's unique training tokens;
    else ``train.tokens_per_param`` (default 20, Chinchilla) times the non-embedding N.
    The trainer rounds it to whole steps; studies plan with the same rule."""
    t = cfg.train
    if t.tokens is not None:
        return int(t.tokens), f"train.tokens = {t.tokens}"
    if t.epochs is not None:
        return (
            round(t.epochs * unique_tokens),
            f"train.epochs = {t.epochs} x {unique_tokens} train tokens",
        )
    ratio = t.tokens_per_param if t.tokens_per_param is not None else DEFAULT_TOKENS_PER_PARAM
    source = (
        "train.tokens_per_param" if t.tokens_per_param is not None else "default tokens_per_param"
    )
    return round(
        ratio * non_embedding
    ), f"{source} = {ratio} x {non_embedding} non-embedding params"


def planned_steps(cfg: RunConfig, non_embedding: int, unique_tokens: int) -> tuple[int, str]:
    """:func:`budget_tokens` rounded to whole optimizer steps of ``batch_size x context``
    tokens (at least one): what the trainer runs and the schedule ends on, and the note."""
    want, note = budget_tokens(cfg, non_embedding, unique_tokens)
    return max(1, round(want / (cfg.train.batch_size * cfg.model.context))), note


# A budget beyond this many passes over the run's unique tokens is a typo, not a study: for
# generalisation, repeated data stops paying after ~4 epochs and is worth almost nothing past
# ~40 (Muennighoff et al. 2023, fig. 3 and eq. 5); memorization studies repeat a small corpus
# on purpose, a few thousand times at most (Allen-Zhu and Li 2024 use 1000 exposures).
MAX_EPOCHS = 100_000.0


def check_budget(tokens: int, note: str, unique_tokens: int) -> None:
    """Reject, before anything is built, a budget the corpus cannot supply: more than
    :data:`MAX_EPOCHS` passes over its unique training tokens (``train.tokens = 1e30`` would
    train for ages at a learning rate warmed over 5e24 steps)."""
    if unique_tokens <= 0:
        return
    epochs = tokens / unique_tokens
    if epochs > MAX_EPOCHS:
        how = "" if note.startswith("train.tokens") else f" ({note})"
        raise ConfigError(
            f"the budget of {tokens:.3g} tokens{how} is {epochs:.3g} epochs of the corpus's "
            f"{unique_tokens:,} unique training tokens, more than {MAX_EPOCHS:g}: lower the "
            "budget or use a bigger corpus"
        )
