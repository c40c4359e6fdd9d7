import json

import pytest
import torch

from scalelab.config import DataConfig
from scalelab.errors import ConfigError, DataError, StoreError
from scalelab.tasks import evaluate, load_task_results, wilson
from scalelab.tasks.sources import heldout_documents
from scalelab.tasks.zeroshot import BUILDERS, items


def test_items_come_from_held_out_documents_only(code_corpus):
    from scalelab.data.cache import split_of
    from scalelab.data.corpora import open_corpus

    data = DataConfig(corpus=code_corpus, tokenizer="bytes", val_fraction=0.3)
    held = heldout_documents(data)
    docs = list(open_corpus(code_corpus).documents())
    assert held and len(held) < len(docs)
    assert all(split_of(d, 0.3) == "val" for d in held)
    for name in BUILDERS:
        its = items(name, data, n=50, seed=0)
        assert its, name
        for it in its:
            assert any(d.startswith(it.context) for d in held), name
            assert len(set(it.choices)) == len(it.choices)
            true = it.choices[it.answer]
            # the true continuation follows the context in a held-out document
            if name != "cloze":
                assert any(d.startswith(it.context + true) for d in held), name


def test_items_are_deterministic_and_brackets_balanced(code_corpus):
    data = DataConfig(corpus=code_corpus, tokenizer="bytes", val_fraction=0.3)
    a = items("code-next-line", data, n=40, seed=3)
    assert a == items("code-next-line", data, n=40, seed=3)
    assert a != items("code-next-line", data, n=40, seed=4)
    br = items("code-brackets", data, n=None)
    counts = [sum(it.answer == k for it in br) for k in range(2)]
    assert counts[0] == counts[1] > 0 and all(len(it.choices) == 2 for it in br)


def test_wilson_interval():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and 0.25 < hi < 0.35  # the rule of three's neighbourhood
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    assert wilson(100, 100)[1] == 1.0


def test_evaluate_writes_run_dir_and_store(tiny_run, tmp_path):
    db = tmp_path / "r.db"
    df = evaluate(tiny_run, ["code-brackets", "cloze"], n=60, db=db)
    assert list(df["task"]) == ["code-brackets", "cloze"]
    for row in df.itertuples():
        assert row.lo <= row.accuracy <= row.hi
        assert row.n <= 60 and row.correct == round(row.accuracy * row.n)
        assert row.step > 0
    stored = load_task_results(db)
    assert set(stored["task"]) == {"code-brackets", "cloze"}
    saved = json.loads((tiny_run / "tasks.json").read_text())
    assert saved["cloze/zero-shot"]["accuracy"] == pytest.approx(
        float(df.set_index("task").loc["cloze", "accuracy"])
    )


class Favours(torch.nn.Module):
    """A 'language model' that puts most of its mass on one byte at every position."""

    def __init__(self, byte: int) -> None:
        super().__init__()
        self.byte = byte
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, 258)
        logits[..., self.byte] = 10.0
        return logits + self.w


def test_scorer_picks_the_most_likely_choice(code_corpus):
    from scalelab.data.tokenizer import ByteTokenizer
    from scalelab.tasks.scoring import score_items

    data = DataConfig(corpus=code_corpus, tokenizer="bytes", val_fraction=0.3)
    br = items("code-brackets", data, n=None)
    tok = ByteTokenizer()
    for byte, choice in ((ord(")"), 0), (ord("]"), 1)):
        picks = score_items(Favours(byte), tok, br, context=64)
        assert set(picks) == {choice}
        # balanced: always answering one bracket is exactly chance
        assert sum(p == it.answer for p, it in zip(picks, br, strict=True)) == len(br) // 2


def test_bad_requests(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="unknown task"):
        evaluate(tiny_run, ["nope"])
    with pytest.raises(ConfigError, match="fine-tune task"):
        evaluate(tiny_run, ["syntax"])
    with pytest.raises(StoreError, match="not a run directory"):
        evaluate(tmp_path, ["cloze"])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((tiny_run / "config.json").read_text())
    with pytest.raises(StoreError, match="no intact checkpoint"):
        evaluate(bare, ["cloze"])


def test_text_task_on_a_symbol_run_is_refused(tmp_path):
    from scalelab.config import run_config_from_dict
    from scalelab.train import rundir

    cfg = run_config_from_dict(
        {"data": {"corpus": "markov:order=1,vocab=8,seed=0"}, "model": {"vocab_size": 16}}
    )
    run = tmp_path / "m"
    run.mkdir()
    rundir.write_json(run / "config.json", cfg.to_dict())
    with pytest.raises(DataError, match="needs a text tokenizer"):
        evaluate(run, ["cloze"])
