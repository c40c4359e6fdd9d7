import pytest

from scalelab.data.corpus_spec import parse_spec
from scalelab.errors import DataError


def test_kinds_and_options():
    s = parse_spec("markov:order=2,vocab=32,seed=7")
    assert s.kind == "markov" and s.args == ()
    assert s.int_option("order") == 2 and s.int_option("seed") == 7
    assert s.int_option("tokens", 123) == 123
    assert parse_spec("python-stdlib").options == ()
    assert parse_spec("python-stdlib:max_bytes=1e6").int_option("max_bytes") == 1_000_000
    t = parse_spec("text:data/k=v/*.txt,max_bytes=100")
    assert t.args == ("data/k=v/*.txt",) and t.option("max_bytes") == "100"
    j = parse_spec("jsonl:/a/b.jsonl:meta.text")
    assert j.args == ("/a/b.jsonl", "meta.text")
    h = parse_spec("hf:wikitext:wikitext-2-raw-v1,field=text,split=validation")
    assert h.args == ("wikitext:wikitext-2-raw-v1",) and h.option("split") == "validation"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "data.corpus is empty"),
        ("pyhton-stdlib", "did you mean 'python-stdlib'"),
        ("markov:order=1,vocab=8,sede=1", "unknown option 'sede'.*did you mean 'seed'"),
        ("markov:order=1,order=2", "given twice"),
        ("markov:1,2", "only key=value options"),
        ("python-stdlib:lots", "only key=value options"),
        ("jsonl:data.jsonl", "JSON field"),
        ("text:", "needs a path"),
        ("text:a.txt,max_bytes=-5", "max_bytes must be an integer >= 1"),
        ("text:a.txt,max_bytes=lots", "max_bytes must be an integer"),
        ("markov:order=1.5,vocab=8", "order must be an integer"),
    ],
)
def test_bad_specs_say_what_to_fix(spec, message, tmp_path):
    from scalelab.data import open_corpus

    (tmp_path / "a.txt").write_text("x\n\ny\n")
    with pytest.raises(DataError, match=message):
        open_corpus(spec.replace("a.txt", str(tmp_path / "a.txt")))
