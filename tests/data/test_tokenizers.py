import numpy as np
import pytest

from scalelab.data import BPETokenizer, ByteTokenizer, SymbolTokenizer, Tokenizer
from scalelab.data.tokenizer import EOS_TOKEN
from scalelab.errors import DataError

TEXT = "def f(x):\n    return  x  # naïve → café 🙂\n\tpass\n"


def test_bytes_round_trip_and_specials():
    tok = ByteTokenizer()
    assert isinstance(tok, Tokenizer)
    ids = tok.encode(TEXT)
    assert len(ids) == len(TEXT.encode()) and max(ids) < 256
    assert tok.decode(ids) == TEXT
    assert tok.decode([*tok.encode("a"), tok.eos_id, *tok.encode("b")]) == f"a{EOS_TOKEN}b"
    (arr,) = tok.encode_batch([TEXT])
    assert arr.tolist() == ids
    assert (tok.vocab_size, tok.eos_id, tok.mask_id) == (258, 256, 257)


def test_bpe_trains_to_the_vocab_size_and_round_trips(docs):
    tok = BPETokenizer.train(docs * 3, vocab_size=300)
    assert isinstance(tok, Tokenizer)
    assert tok.vocab_size == 300 and (tok.eos_id, tok.mask_id) == (0, 1)
    for text in [*docs[:5], TEXT, "   leading spaces", ""]:
        assert tok.decode(tok.encode(text)) == text
    # merges compress: fewer tokens than bytes on the training text
    assert len(tok.encode(docs[0])) < 0.7 * len(docs[0].encode())
    batch = tok.encode_batch(docs[:4])
    assert [b.tolist() for b in batch] == [tok.encode(d) for d in docs[:4]]


def test_bpe_never_reads_special_tokens_out_of_text(docs):
    tok = BPETokenizer.train(docs, vocab_size=280)
    ids = tok.encode(f"a{EOS_TOKEN}b")
    assert tok.eos_id not in ids and tok.decode(ids) == f"a{EOS_TOKEN}b"


def test_bpe_is_deterministic_and_survives_save_load(docs, tmp_path):
    a = BPETokenizer.train(docs, vocab_size=320)
    b = BPETokenizer.train(docs, vocab_size=320)
    assert [a.encode(d) for d in docs] == [b.encode(d) for d in docs]
    a.save(tmp_path / "tok.json")
    c = BPETokenizer.load(tmp_path / "tok.json")
    assert c.vocab_size == a.vocab_size and c.encode(TEXT) == a.encode(TEXT)
    assert c.encode(f"x{EOS_TOKEN}") == a.encode(f"x{EOS_TOKEN}")


def test_bpe_vocab_too_small_or_bad_file(docs, tmp_path):
    with pytest.raises(DataError, match="vocab_size >= 258"):
        BPETokenizer.train(docs, vocab_size=200)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DataError, match="cannot read tokenizer"):
        BPETokenizer.load(tmp_path / "bad.json")


def test_symbol_tokenizer():
    tok = SymbolTokenizer(10)
    ids = [3, 9, 0, tok.eos_id, tok.mask_id]
    assert tok.decode(ids) == "3 9 0 <|eos|> <|mask|>"
    assert tok.encode(tok.decode(ids)) == ids
    assert tok.encode_batch(["1 2"])[0].dtype == np.uint32
    with pytest.raises(DataError, match="not a symbol"):
        tok.encode("3 10")
