import gzip
import json
import sysconfig
from pathlib import Path

import pytest

from scalelab.data import open_corpus
from scalelab.data.corpora import PythonStdlib
from scalelab.errors import DataError


def test_directory_files_are_documents_in_path_order(text_dir, docs):
    (text_dir / ".hidden.txt").write_text("secret")
    (text_dir / "blob.bin").write_bytes(b"\x00\x01binary")
    sub = text_dir / "sub"
    sub.mkdir()
    (sub / "z.txt").write_text("nested document\n")
    (text_dir / "empty.txt").write_text("")
    got = list(open_corpus(f"text:{text_dir}").documents())
    assert got == [*docs, "nested document\n"]


def test_single_file_paragraphs_are_documents(tmp_path):
    f = tmp_path / "book.txt"
    f.write_text("First para\nline two\n\n\nSecond para\n   \nThird\n")
    assert list(open_corpus(f"text:{f}").documents()) == [
        "First para\nline two",
        "Second para",
        "Third",
    ]


def test_glob(text_dir, docs):
    got = list(open_corpus(f"text:{text_dir}/doc0*.txt").documents())
    assert got == docs[:10]


def test_max_bytes_keeps_a_prefix_cut_at_a_line_end(text_dir, docs):
    size0 = len(docs[0].encode())
    got = list(open_corpus(f"text:{text_dir},max_bytes={size0 + 20}").documents())
    assert got[0] == docs[0]
    assert len(got) == 2 and docs[1].startswith(got[1]) and got[1].endswith("\n")
    assert sum(len(d.encode()) for d in got) <= size0 + 20


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "holds no text files"),
        (lambda p: str(p) + "/*.nothing", "matches no text files"),
    ],
)
def test_missing_or_empty_text_corpus(tmp_path, make, message):
    (tmp_path / ".hidden").write_text("x")
    with pytest.raises(DataError, match=message):
        open_corpus(f"text:{make(tmp_path)}")


def test_jsonl_nested_field_gzip_and_nulls(tmp_path):
    rows = [{"meta": {"text": "alpha"}}, {"meta": {"text": None}}, {"meta": {"text": "beta"}}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as f:
        f.write(json.dumps({"meta": {"text": "gamma"}}) + "\n")
    (tmp_path / "notes.md").write_text("not a jsonl file")
    got = list(open_corpus(f"jsonl:{tmp_path}:meta.text").documents())
    assert got == ["alpha", "beta", "gamma"]


def test_jsonl_errors_name_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "ok"}\n{"body": "x"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2 has no field 'text' \(its fields: 'body'\)"):
        list(open_corpus(f"jsonl:{f}:text").documents())
    f.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2 is not JSON"):
        list(open_corpus(f"jsonl:{f}:text").documents())
    f.write_text('{"text": 3}\n')
    with pytest.raises(DataError, match="is a int, not a string"):
        list(open_corpus(f"jsonl:{f}:text").documents())


def test_python_stdlib_excludes_tests_and_is_deterministic():
    corpus = open_corpus("python-stdlib")
    assert isinstance(corpus, PythonStdlib)
    root = Path(sysconfig.get_paths()["stdlib"])
    files = corpus.files()
    rel = [p.relative_to(root) for p in files]
    assert len(files) > 300
    assert all(p.suffix == ".py" for p in files)
    skipped = {"test", "tests", "idle_test", "site-packages"}
    assert not any(skipped & set(r.parts) for r in rel)
    assert not any(r.name.startswith("test_") for r in rel)
    assert [r.as_posix() for r in rel] == sorted(r.as_posix() for r in rel)
    assert root / "os.py" in files
    assert open_corpus("python-stdlib").fingerprint() == corpus.fingerprint()
    # the cap reads only a prefix, so tests can use real text cheaply
    capped = list(open_corpus("python-stdlib:max_bytes=50000").documents())
    assert 0 < sum(len(d.encode()) for d in capped) <= 50000


def test_python_stdlib_sample_spreads_over_the_library():
    full = open_corpus("python-stdlib").files()
    sample = open_corpus("python-stdlib:sample=0.1").files()
    assert set(sample) < set(full)
    assert 0.05 * len(full) < len(sample) < 0.15 * len(full)
    # spread over the library, not an alphabetical prefix
    assert sample[-1] in full[len(full) // 2 :] and sample[0] in full[: len(full) // 2]
    assert open_corpus("python-stdlib:sample=0.1").files() == sample
    with pytest.raises(DataError, match="share of the files"):
        open_corpus("python-stdlib:sample=2")


def test_fingerprint_changes_when_a_file_changes(text_dir):
    before = open_corpus(f"text:{text_dir}").fingerprint()
    (text_dir / "doc00.txt").write_text("edited, longer than before\n" * 3)
    assert open_corpus(f"text:{text_dir}").fingerprint() != before


def test_hf_local_files(tmp_path):
    pytest.importorskip("datasets")
    d = tmp_path / "ds"
    d.mkdir()
    rows = [{"id": i, "content": f"document {i}"} for i in range(5)]
    (d / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (d / "test.jsonl").write_text(json.dumps({"id": 9, "content": "held out"}) + "\n")
    got = list(open_corpus(f"hf:{d}").documents())  # the only string column, train split only
    assert got == [f"document {i}" for i in range(5)]
    got = list(open_corpus(f"hf:{d},split=test,field=content").documents())
    assert got == ["held out"]
    with pytest.raises(DataError, match="no column 'txt'"):
        list(open_corpus(f"hf:{d},field=txt").documents())
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": "a"}) + "\n" + json.dumps({"text": "b"}) + "\n")
    assert list(open_corpus(f"hf:{one}").documents()) == ["a", "b"]


def test_hf_without_datasets_or_missing_path(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    (tmp_path / "x.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(DataError, match=r"pip install 'scalelab\[hf\]'"):
        list(open_corpus(f"hf:{tmp_path / 'x.jsonl'}").documents())
    with pytest.raises(DataError, match="does not exist"):
        open_corpus("hf:./no/such/dir")
