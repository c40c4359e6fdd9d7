"""Data selection: which training documents a run keeps, as a measured choice.

``select(corpus, method, keep, ...) -> Selection`` scores every training unit (document or
chunk) of a corpus and keeps a share of its tokens; ``Selection.save(path)`` writes the JSON
a run reads with ``data.select = "SEL.json"``. One file per method:

* :mod:`~scalelab.select.random`      the baseline (seeded)
* :mod:`~scalelab.select.dedup`       exact and MinHash-LSH near duplicates
* :mod:`~scalelab.select.perplexity`  a reference run's loss: keep low, middle or high
* :mod:`~scalelab.select.prototype`   k-means on a reference run's hidden states: easy or hard
* :mod:`~scalelab.select.active`      rounds of small models, adding their highest-loss units

The file format and how a run applies it: :mod:`scalelab.data.subset_file`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from scalelab.config import DataConfig, RunConfig
from scalelab.data.subset_file import (
    METHODS,
    UNITS,
    Selection,
    SelectionError,
    apply_selection,
    load_selection,
    units_of,
)

# The units of a corpus are the same under every tokenizer (documents), so selections that
# need no model read it as bytes: exact text, no BPE to train.
_BYTES_VOCAB = 258


def select(
    corpus: str | None,
    method: str,
    keep: float | None = None,
    *,
    reference: str | Path | RunConfig | None = None,
    seed: int = 0,
    unit: str = "doc",
    chunk_tokens: int | None = None,
    order: str | None = None,
    threshold: float | None = None,
    shingle: int | None = None,
    k: int | None = None,
    rounds: int | None = None,
    initial: Sequence[int] | None = None,
    work: str | Path | None = None,
    cache_dir: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
) -> Selection:
    """Score every training unit of ``corpus`` with ``method`` and keep ``keep`` of its tokens.

    ``reference`` is a finished run directory (``perplexity``, ``prototype``; the corpus is
    then tokenized as that run was, and ``corpus=None`` means the run's own) or, for
    ``active``, a run directory or ``RunConfig`` whose model and training settings each
    round's small model uses. ``order``: ``low``/``middle``/``high`` (perplexity),
    ``hard``/``easy`` (prototype). ``dedup`` with ``keep=None`` drops exactly the duplicates.
    ``out`` writes the selection file (atomically). Raises :class:`SelectionError`.
    """
    from scalelab.data import load_tokens

    if method not in METHODS:
        from scalelab.errors import did_you_mean

        raise SelectionError(
            f"unknown selection method {method!r}{did_you_mean(method, METHODS)}; "
            f"one of {', '.join(METHODS)}"
        )
    if unit not in UNITS:
        raise SelectionError(f"--unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if keep is None and method != "dedup":
        raise SelectionError(f"method {method!r} needs --keep (the share of tokens to keep)")
    if keep is not None and not 0.0 < keep <= 1.0:
        raise SelectionError(f"--keep is a fraction of the training tokens in (0, 1], got {keep}")
    needs_ref = method in ("perplexity", "prototype", "active")
    if needs_ref and reference is None:
        raise SelectionError(
            f"method {method!r} needs --reference RUN (a finished run directory"
            + (", whose config the small models use" if method == "active" else "")
            + ")"
        )
    if not needs_ref and reference is not None:
        raise SelectionError(f"method {method!r} uses no reference run: drop --reference")
    # an option of another method, or of chunks, would be ignored without a word: refused
    owners = {
        "--threshold": (threshold, ("dedup",)),
        "--shingle": (shingle, ("dedup",)),
        "--k": (k, ("prototype",)),
        "--rounds": (rounds, ("active",)),
        "--order": (order, ("perplexity", "prototype")),
    }
    moot = [
        opt
        for opt, (value, methods) in owners.items()
        if value is not None and method not in methods
    ]
    if moot:
        raise SelectionError(
            f"{', '.join(moot)} {'has' if len(moot) == 1 else 'have'} no effect with method "
            f"{method!r} (" + "; ".join(f"{o}: {', '.join(owners[o][1])}" for o in moot) + ")"
        )
    if chunk_tokens is not None and unit != "chunk":
        raise SelectionError("--chunk-tokens has no effect with --unit doc: add --unit chunk")

    ref = None
    template: RunConfig | None = None
    if isinstance(reference, RunConfig):
        if method != "active":
            raise SelectionError("a RunConfig reference is only for method 'active'")
        template = reference
    elif reference is not None:
        from scalelab.select.reference import load_reference

        # active trains its own small models from the reference's config: weights not read
        ref = load_reference(reference, template=method == "active")
        template = ref.cfg

    if template is not None:
        from scalelab.select.reference import data_config_for

        data_cfg = data_config_for(template.data, corpus)
        vocab = template.model.vocab_size
    else:
        if corpus is None:
            raise SelectionError("give a corpus (a spec such as python-stdlib)")
        data_cfg, vocab = DataConfig(corpus=corpus, tokenizer="bytes"), _BYTES_VOCAB
    if cache_dir is not None:
        data_cfg = replace(data_cfg, cache_dir=cache_dir)
    data = load_tokens(data_cfg, vocab)
    units = units_of(data, unit, chunk_tokens)
    seed_ = int(seed)

    sel: Selection
    if method == "random":
        from scalelab.select.random import select_random

        assert keep is not None
        sel = select_random(data, units, keep, seed=seed_)
    elif method == "dedup":
        from scalelab.select.dedup import DEFAULT_SHINGLE, DEFAULT_THRESHOLD, select_dedup

        sel = select_dedup(
            data,
            units,
            keep,
            seed=seed_,
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            shingle=DEFAULT_SHINGLE if shingle is None else shingle,
        )
    elif method == "perplexity":
        from scalelab.select.perplexity import select_perplexity

        assert keep is not None and ref is not None
        sel = select_perplexity(data, units, keep, ref, order=order or "low", seed=seed_)
    elif method == "prototype":
        from scalelab.select.prototype import DEFAULT_K, select_prototype

        assert keep is not None and ref is not None
        sel = select_prototype(
            data, units, keep, ref, order=order or "hard", k=k or DEFAULT_K, seed=seed_
        )
    else:
        from scalelab.select.active import DEFAULT_ROUNDS, select_active

        assert keep is not None and template is not None
        if work is None:
            if out is None:
                raise SelectionError("method 'active' needs --out (its rounds go beside it)")
            work = Path(out).with_suffix("").with_name(Path(out).stem + ".rounds")
        sel = select_active(
            data,
            units,
            keep,
            template,
            work,
            rounds=rounds or DEFAULT_ROUNDS,
            seed=seed_,
            initial=initial,
            data_cfg=data_cfg,
            progress=progress,
        )
    if out is not None:
        sel.save(out)
    return sel


__all__ = [
    "METHODS",
    "UNITS",
    "Selection",
    "SelectionError",
    "apply_selection",
    "load_selection",
    "select",
    "units_of",
]
