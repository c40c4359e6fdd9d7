"""Known truth for ``perplexity``: with a reference trained on a mix of Markov-source and
uniform-noise documents, ``--keep low`` drops the noise first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.select.conftest import tiny_config

from scalelab.data import load_tokens
from scalelab.data.subset_file import units_of
from scalelab.runs import RunError
from scalelab.select import SelectionError, select
from scalelab.select.dedup import unit_texts
from scalelab.select.perplexity import order_by


def test_keep_low_drops_the_noise_first(mixed: tuple[str, Path], cache: Path) -> None:
    corpus, ref = mixed
    sel = select(corpus, "perplexity", 0.8, reference=ref, order="low")
    data = load_tokens(tiny_config(corpus, cache).data, 258)
    texts = unit_texts(data, units_of(data))
    is_noise = np.array([set(t) - set("abcdefgh") != set() for t in texts])
    dropped = np.setdiff1d(np.arange(len(texts)), sel.kept)
    precision = is_noise[dropped].mean()
    recall = is_noise[dropped].sum() / is_noise.sum()
    assert precision >= 0.9, (precision, recall)
    assert recall >= 0.9, (precision, recall)
    # scores are the reference's losses: noise is near ln(62) nats/char, Markov text far below
    scores = np.asarray(sel.scores)
    assert scores[is_noise].min() > scores[~is_noise].max()
    assert sel.params["reference_run_id"] == ref.name
    high = select(corpus, "perplexity", 0.2, reference=ref, order="high")
    assert is_noise[list(high.kept)].mean() >= 0.9


def test_a_reference_on_another_bpe_corpus_is_refused(tmp_path: Path, cache: Path) -> None:
    from scalelab.config import DataConfig
    from scalelab.select.reference import data_config_for

    with pytest.raises(SelectionError, match="BPE tokenizer"):
        data_config_for(DataConfig(corpus="python-stdlib", tokenizer="bpe"), "markov:order=1")
    with pytest.raises(RunError, match="not a run directory"):
        select("python-stdlib", "perplexity", 0.5, reference=tmp_path)


def test_middle_keeps_the_centre_of_the_distribution() -> None:
    scores = np.array([5.0, 1.0, 3.0, np.nan, 2.0, 4.0])
    assert list(order_by(scores, "low")[:2]) == [1, 4]
    assert list(order_by(scores, "high")[:2]) == [0, 5]
    assert order_by(scores, "middle")[0] == 2 and order_by(scores, "middle")[-1] == 3
