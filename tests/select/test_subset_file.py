"""The selection file, the random baseline, and how a run applies ``data.select``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from tests.select.conftest import random_words, tiny_config, write_jsonl

from scalelab.data import load_tokens, split_of
from scalelab.data.subset_file import units_of
from scalelab.select import Selection, SelectionError, apply_selection, load_selection, select
from scalelab.select.dedup import unit_texts


def _corpus(tmp_path: Path, n: int = 60, seed: int = 0) -> tuple[str, list[str]]:
    rng = np.random.default_rng(seed)
    docs = [" ".join(random_words(rng, int(rng.integers(20, 120)))) for _ in range(n)]
    return write_jsonl(tmp_path / "docs.jsonl", docs), docs


def test_selection_file_has_ids_scores_method_inputs_and_hash(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    sel = select(corpus, "random", 0.5, seed=3, cache_dir=str(cache), out=tmp_path / "sel.json")
    d = json.loads((tmp_path / "sel.json").read_text())
    assert d["method"] == "random" and d["params"] == {"seed": 3} and d["unit"] == "doc"
    assert len(d["scores"]) == d["n_units"] == sel.n_units
    assert d["kept"] == sorted(d["kept"]) and len(d["kept"]) < d["n_units"]
    assert len(d["corpus_hash"]) == 16 and d["corpus"].startswith("jsonl:")
    # a fraction of tokens, not of documents
    assert abs(d["kept_fraction"] - 0.5) < 0.05
    assert load_selection(tmp_path / "sel.json") == sel


def test_random_is_stable_for_a_seed_and_differs_across_seeds(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    a = select(corpus, "random", 0.3, seed=0, cache_dir=str(cache))
    b = select(corpus, "random", 0.3, seed=0, cache_dir=str(cache))
    c = select(corpus, "random", 0.3, seed=1, cache_dir=str(cache))
    assert a.kept == b.kept and a.scores == b.scores
    assert a.kept != c.kept


def test_validation_documents_are_never_scored_or_kept(tmp_path: Path, cache: Path) -> None:
    corpus, docs = _corpus(tmp_path, n=200)
    sel = select(corpus, "dedup", 0.5, cache_dir=str(cache))
    data = load_tokens(replace(tiny_config(corpus, cache).data), 258)
    texts = unit_texts(data, units_of(data))
    val_docs = {d for d in docs if split_of(d, 0.02) == "val"}
    assert val_docs, "the corpus should hold some validation documents"
    assert len(texts) == sel.n_units == len(docs) - sum(split_of(d, 0.02) == "val" for d in docs)
    assert not val_docs & set(texts)
    # applying the selection leaves validation as it was
    cut = apply_selection(data, sel)
    assert np.array_equal(np.asarray(cut.val), np.asarray(data.val))
    assert len(cut.train) == sel.tokens["kept"] < len(data.train)


def test_a_run_trains_on_the_kept_documents_only(tmp_path: Path, cache: Path) -> None:
    from scalelab.train import train

    corpus, _ = _corpus(tmp_path)
    sel = select(corpus, "random", 0.4, cache_dir=str(cache), out=tmp_path / "sel.json")
    cfg = tiny_config(corpus, cache, tokens=2560)
    full = train(cfg, tmp_path / "runs", progress=False)
    cfg_sel = replace(cfg, data=replace(cfg.data, select=str(tmp_path / "sel.json")))
    assert cfg_sel.run_id() != cfg.run_id()
    s = train(cfg_sel, tmp_path / "runs", progress=False)
    assert s.unique_tokens == sel.tokens["kept"] < full.unique_tokens
    assert s.selection is not None and s.selection["method"] == "random"
    assert s.selection["corpus_hash"] == sel.corpus_hash
    on_disk = json.loads((tmp_path / "runs" / s.run_id / "summary.json").read_text())
    assert on_disk["selection"]["kept_units"] == len(sel.kept)


def test_the_run_id_follows_the_selection_content(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    path = tmp_path / "sel.json"
    select(corpus, "random", 0.4, seed=0, cache_dir=str(cache), out=path)
    cfg = tiny_config(corpus, cache)
    cfg = replace(cfg, data=replace(cfg.data, select=str(path)))
    before = cfg.run_id()
    select(corpus, "random", 0.4, seed=1, cache_dir=str(cache), out=path)
    assert cfg.run_id() != before


def test_a_selection_of_another_corpus_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    sel = select(corpus, "random", 0.5, cache_dir=str(cache))
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other, _ = _corpus(other_dir, seed=1)
    data = load_tokens(tiny_config(other, cache).data, 258)
    with pytest.raises(SelectionError, match="make the selection again on this data"):
        apply_selection(data, sel)


def test_a_bad_selection_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SelectionError, match="no such file"):
        load_selection(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"format": 1, "method": "random"}')
    with pytest.raises(SelectionError, match="not a scalelab selection"):
        load_selection(tmp_path / "bad.json")


def test_bad_arguments_are_clear_errors(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    with pytest.raises(SelectionError, match="did you mean 'random'"):
        select(corpus, "randm", 0.5, cache_dir=str(cache))
    with pytest.raises(SelectionError, match="needs --keep"):
        select(corpus, "random", None, cache_dir=str(cache))
    with pytest.raises(SelectionError, match=r"in \(0, 1\]"):
        select(corpus, "random", 1.5, cache_dir=str(cache))
    with pytest.raises(SelectionError, match="needs --reference"):
        select(corpus, "perplexity", 0.5, cache_dir=str(cache))


def test_chunks_tile_the_training_stream(tmp_path: Path, cache: Path) -> None:
    corpus, _ = _corpus(tmp_path)
    sel = select(corpus, "random", 0.5, unit="chunk", chunk_tokens=100, cache_dir=str(cache))
    data = load_tokens(tiny_config(corpus, cache).data, 258)
    assert sel.n_units == -(-len(data.train) // 100) and sel.chunk_tokens == 100
    cut = apply_selection(data, sel)
    assert len(cut.train) == sel.tokens["kept"]
    assert isinstance(sel, Selection)
