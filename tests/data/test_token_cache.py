import json
import multiprocessing as mp
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scalelab.config import DataConfig
from scalelab.data import cache as cache_mod
from scalelab.data import load_tokens, split_of
from scalelab.errors import DataError


def split_docs(td, split: str) -> list[str]:
    """Decode one split back into its documents (they are joined by eos after each)."""
    arr = np.asarray(getattr(td, split))
    assert arr[-1] == td.eos_id
    cuts = np.flatnonzero(arr == td.eos_id)
    starts = np.concatenate([[0], cuts[:-1] + 1])
    return [td.tokenizer.decode(arr[a:b].tolist()) for a, b in zip(starts, cuts, strict=True)]


@pytest.mark.parametrize("tokenizer", ["bpe", "bytes"])
def test_text_corpus_round_trip(text_dir, docs, tmp_path, tokenizer):
    data = DataConfig(
        corpus=f"text:{text_dir}",
        tokenizer=tokenizer,
        val_fraction=0.2,
        cache_dir=str(tmp_path / "c"),
    )
    td = load_tokens(data, 300)
    assert isinstance(td.train, np.memmap) and td.train.dtype == np.uint16
    assert td.unique_tokens == len(td.train)
    train, val = split_docs(td, "train"), split_docs(td, "val")
    # every document lands in exactly one split, in corpus order, chosen by its hash
    assert sorted(train + val) == sorted(docs)
    assert val == [d for d in docs if split_of(d, 0.2) == "val"]
    assert train == [d for d in docs if split_of(d, 0.2) == "train"]
    val_bytes = sum(len(d.encode()) for d in val)
    assert td.bytes_per_token == pytest.approx(val_bytes / len(td.val))
    assert td.stats["documents"] == {"train": len(train), "val": len(val)}
    assert td.entropy_rate is None and td.loss_floor(128) is None
    if tokenizer == "bpe":
        assert td.vocab_size == 300 and td.bytes_per_token > 1.5
    else:
        assert td.vocab_size == 258 and td.bytes_per_token < 1.0


def test_split_is_stable_under_reordering_and_additions(text_dir, docs, tmp_path):
    base = DataConfig(
        corpus=f"text:{text_dir}",
        tokenizer="bytes",
        val_fraction=0.2,
        cache_dir=str(tmp_path / "c"),
    )
    val = set(split_docs(load_tokens(base, 258), "val"))
    # rename every file (new order) and add a document: the old documents keep their side
    for p in sorted(text_dir.iterdir()):
        p.rename(p.with_name("z" + p.name[::-1]))
    (text_dir / "new.txt").write_text("a brand new document\n")
    val2 = set(split_docs(load_tokens(base, 258), "val"))
    assert val2 - {"a brand new document\n"} == val


def test_cache_is_reused_and_keyed(text_dir, tmp_path, monkeypatch):
    data = DataConfig(corpus=f"text:{text_dir}", tokenizer="bpe", cache_dir=str(tmp_path / "c"))
    first = load_tokens(data, 300)
    built = []
    real_build = cache_mod._build
    monkeypatch.setattr(cache_mod, "_build", lambda *a, **k: built.append(1) or real_build(*a, **k))
    again = load_tokens(data, 300)
    assert built == [] and again.path == first.path
    assert np.array_equal(again.train, first.train)
    other = load_tokens(data, 320)  # BPE at another vocabulary: another entry
    assert built == [1] and other.path != first.path
    b1 = load_tokens(
        DataConfig(corpus=data.corpus, tokenizer="bytes", cache_dir=data.cache_dir), 300
    )
    b2 = load_tokens(
        DataConfig(corpus=data.corpus, tokenizer="bytes", cache_dir=data.cache_dir), 4096
    )
    assert b1.path == b2.path  # bytes do not depend on the model's vocabulary
    (text_dir / "doc03.txt").write_text("edited\n")
    assert load_tokens(data, 300).path != first.path  # the corpus changed: a new entry


def test_default_cache_dir_is_env(text_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "env-cache"))
    td = load_tokens(DataConfig(corpus=f"text:{text_dir}", tokenizer="bytes"), 258)
    assert td.path.parent == tmp_path / "env-cache" / "tokens"


@pytest.mark.parametrize("damage", ["truncate", "no-meta", "bad-meta"])
def test_damaged_entry_is_rebuilt(text_dir, tmp_path, damage):
    data = DataConfig(corpus=f"text:{text_dir}", tokenizer="bytes", cache_dir=str(tmp_path / "c"))
    td = load_tokens(data, 258)
    expected = np.array(td.train)
    if damage == "truncate":
        with open(td.path / "train.bin", "r+b") as f:
            f.truncate(100)
    elif damage == "no-meta":
        (td.path / "meta.json").unlink()
    else:
        (td.path / "meta.json").write_text("{")
    again = load_tokens(data, 258)
    assert np.array_equal(again.train, expected)
    assert not list(again.path.parent.glob(".t*"))  # no temporary or trash directories left


KILLED_BUILD = """
import os, signal, sys
from scalelab.config import DataConfig
from scalelab.data import load_tokens, tokenizer

real = tokenizer.ByteTokenizer.encode_batch
def dying(self, texts):
    out = real(self, texts)
    os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of writing the entry
    return out
tokenizer.ByteTokenizer.encode_batch = dying
load_tokens(DataConfig(corpus=sys.argv[1], tokenizer="bytes", cache_dir=sys.argv[2]), 258)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_build_leaves_nothing_half_written(text_dir, tmp_path):
    cache = tmp_path / "c"
    spec = f"text:{text_dir}"
    r = subprocess.run([sys.executable, "-c", KILLED_BUILD, spec, str(cache)], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    tokens = cache / "tokens"
    assert [p.name for p in tokens.iterdir() if p.is_dir() and not p.name.startswith(".")] == []
    assert list(tokens.glob(".tmp-*"))  # the killed build's scratch directory
    td = load_tokens(DataConfig(corpus=spec, tokenizer="bytes", cache_dir=str(cache)), 258)
    assert len(td.train) > 0 and not list(tokens.glob(".tmp-*"))  # rebuilt, scratch removed


def _slow_builds() -> None:
    """Pool initializer: every build takes a second, so the three loads overlap."""
    import time

    real = cache_mod._build_text

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return real(*args, **kwargs)

    cache_mod._build_text = slow


def _load_in_process(args: tuple[str, str]) -> tuple[str, int, str]:
    spec, cache = args
    td = load_tokens(DataConfig(corpus=spec, tokenizer="bpe", cache_dir=cache), 300)
    meta = json.loads((td.path / "meta.json").read_text())
    return str(td.path), int(np.asarray(td.train, dtype=np.int64).sum()), meta["build_id"]


def test_concurrent_processes_share_one_build(text_dir, tmp_path):
    cache = str(tmp_path / "c")
    with mp.get_context("spawn").Pool(3, initializer=_slow_builds) as pool:
        results = pool.map(_load_in_process, [(f"text:{text_dir}", cache)] * 3, chunksize=1)
    assert len(set(results)) == 1  # same entry, same tokens, one build (one build_id)
    tokens = Path(cache) / "tokens"
    assert len([p for p in tokens.iterdir() if p.is_dir()]) == 1


def test_markov_tokens(tmp_path):
    data = DataConfig(
        corpus="markov:order=2,vocab=6,seed=1,tokens=20000",
        val_fraction=0.1,
        cache_dir=str(tmp_path / "c"),
    )
    td = load_tokens(data, 16)
    assert (td.vocab_size, td.eos_id, td.mask_id) == (8, 6, 7)
    assert len(td.train) == 18000 and len(td.val) == 2000
    assert int(np.max(td.train)) < 6 and int(np.max(td.val)) < 6  # one unbroken chain: no eos
    assert td.bytes_per_token == 1.0
    from scalelab.data import MarkovSource

    src = MarkovSource(2, 6, seed=1)
    assert td.entropy_rate == pytest.approx(src.entropy_rate, rel=1e-12)
    assert td.loss_floor(64) == pytest.approx(src.loss_floor(64), rel=1e-12)
    assert td.tokenizer.decode(td.val[:3].tolist()).count(" ") == 2
    # the tokenizer choice does not matter: symbols are the tokens
    assert (
        load_tokens(
            DataConfig(
                corpus=data.corpus, tokenizer="bytes", val_fraction=0.1, cache_dir=data.cache_dir
            ),
            8,
        ).path
        == td.path
    )
    with pytest.raises(DataError, match=r"model.vocab_size = 7 is too small.*at least 8"):
        load_tokens(data, 7)


@pytest.mark.parametrize(
    "setup, tokenizer, vocab, message",
    [
        (lambda d: d, "bpe", 200, "model.vocab_size = 200 is too small.*at least 258"),
        (lambda d: d, "bytes", 100, "at least 258"),
        (lambda d: (d / "only.txt").write_text("x"), "bytes", 258, "single document"),
        (lambda d: (d / "a.txt").write_text("\n\n"), "bytes", 258, "single document|is empty"),
    ],
)
def test_bad_input(tmp_path, setup, tokenizer, vocab, message):
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "empty.txt").write_text("")
    setup(d)
    with pytest.raises(DataError, match=message):
        load_tokens(
            DataConfig(corpus=f"text:{d}", tokenizer=tokenizer, cache_dir=str(tmp_path / "c")),
            vocab,
        )


def test_empty_corpus_and_unwritable_cache(tmp_path, text_dir):
    d = tmp_path / "blank"
    d.mkdir()
    (d / "a.txt").write_text("")
    (d / "b.txt").write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_tokens(
            DataConfig(corpus=f"text:{d}", tokenizer="bytes", cache_dir=str(tmp_path / "c")), 258
        )
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot create the token cache"):
        load_tokens(
            DataConfig(corpus=f"text:{text_dir}", tokenizer="bytes", cache_dir=str(blocker)), 258
        )


def test_small_corpus_still_gets_a_validation_document(tmp_path):
    d = tmp_path / "two"
    d.mkdir()
    (d / "a.txt").write_text("first document\n")
    (d / "b.txt").write_text("second document\n")
    td = load_tokens(
        DataConfig(
            corpus=f"text:{d}", tokenizer="bytes", val_fraction=0.01, cache_dir=str(tmp_path / "c")
        ),
        258,
    )
    assert td.stats["documents"] == {"train": 1, "val": 1}


def test_real_stdlib_with_bpe(stdlib_bpe):
    td = stdlib_bpe
    assert td.corpus.startswith("python-stdlib")
    assert td.vocab_size == 512 and td.train.dtype == np.uint16
    assert int(td.train.max()) < td.vocab_size
    assert 1.5 < td.bytes_per_token < 4.0  # BPE packs several bytes of code per token
    share = td.stats["bytes"]["val"] / (td.stats["bytes"]["val"] + td.stats["bytes"]["train"])
    assert 0.002 < share < 0.1  # about val_fraction of the text, by whole files
    # a validation document decodes to real Python source, and re-encodes to the same ids
    val = np.asarray(td.val)
    first = val[: int(np.argmax(val == td.eos_id))].tolist()
    source = td.tokenizer.decode(first)
    compile(source, "<val>", "exec")
    assert td.tokenizer.encode(source) == first
    assert (td.path / "tokenizer.json").is_file()


def test_rebuild_flag_builds_a_fresh_entry(text_dir, tmp_path):
    data = DataConfig(corpus=f"text:{text_dir}", tokenizer="bytes", cache_dir=str(tmp_path / "c"))
    first = json.loads((load_tokens(data, 258).path / "meta.json").read_text())["build_id"]
    td = load_tokens(data, 258, rebuild=True)
    assert json.loads((td.path / "meta.json").read_text())["build_id"] != first
    assert len(td.train) > 0


def test_losing_a_build_race_keeps_the_winners_entry(text_dir, tmp_path):
    # Where file locks do not work, two builds can finish: the second keeps the first's entry.
    from scalelab.data import open_corpus

    data = DataConfig(corpus=f"text:{text_dir}", tokenizer="bytes", cache_dir=str(tmp_path / "c"))
    source = open_corpus(data.corpus)
    name, key, material = cache_mod._entry(data, 258, source)
    tokens = tmp_path / "c" / "tokens"
    tokens.mkdir(parents=True)
    first = cache_mod._build(source, data, 258, tokens, name, key, material)
    second = cache_mod._build(source, data, 258, tokens, name, key, material)
    assert second["build_id"] == first["build_id"]
    assert [p.name for p in tokens.iterdir()] == [name]


def test_markov_floor_is_reachable_from_the_cached_splits(tmp_path):
    # The Bayes-optimal learner for an order-1 source is a bigram table: fitted by counting on
    # the cached training chain, it scores the entropy rate on the cached validation chain.
    data = DataConfig(
        corpus="markov:order=1,vocab=16,seed=3,tokens=300000", cache_dir=str(tmp_path)
    )
    td = load_tokens(data, 18)
    tr, va = np.asarray(td.train, dtype=np.int64), np.asarray(td.val, dtype=np.int64)
    counts = np.ones((16, 16))
    np.add.at(counts, (tr[:-1], tr[1:]), 1)
    probs = counts / counts.sum(axis=1, keepdims=True)
    nll = -np.log(probs[va[:-1], va[1:]])
    assert td.entropy_rate is not None
    assert abs(nll.mean() - td.entropy_rate) < 4 * nll.std() / np.sqrt(len(nll)) + 0.005


def test_fraction_of_train_is_spread_over_the_corpus(tmp_path):
    from scalelab.data.cache import TokenData

    stream = np.arange(1_000_000, dtype=np.uint32)  # token i sits at position i
    data = TokenData(
        train=stream,
        val=stream[:10],
        vocab_size=2**20,
        eos_id=0,
        mask_id=1,
        tokenizer=None,  # type: ignore[arg-type]
        bytes_per_token=1.0,
        entropy_rate=None,
        unique_tokens=len(stream),
        corpus="test",
        path=tmp_path,
    )
    part = data.fraction_of_train(0.1)
    assert part.unique_tokens == len(part.train) == pytest.approx(100_000, rel=0.01)
    # not a prefix: the slice reaches the end of the corpus, in contiguous runs
    assert part.train.max() > 0.95 * len(stream)
    assert (np.diff(part.train) == 1).mean() > 0.99
    assert part.val is data.val and data.fraction_of_train(1.0) is data
