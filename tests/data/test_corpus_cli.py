import json


def test_corpus_command_json_and_table(cli, tmp_path):
    r = cli(
        "corpus",
        "markov:order=1,vocab=8,seed=2,tokens=1000",
        "--vocab-size",
        "10",
        "--json",
        env={"SCALELAB_CACHE": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vocab_size"] == 10 and info["train_tokens"] + info["val_tokens"] == 1000
    assert info["entropy_rate"] > 0 and info["path"].startswith(str(tmp_path))
    r = cli(
        "corpus",
        "markov:order=1,vocab=8,seed=2,tokens=1000",
        "--vocab-size",
        "10",
        "--show",
        "5",
        env={"SCALELAB_CACHE": str(tmp_path)},
    )
    assert r.returncode == 0 and "entropy_rate" in r.stdout and "build_seconds" in r.stdout


def test_corpus_command_errors_are_one_line(cli, tmp_path):
    r = cli("corpus", f"text:{tmp_path / 'missing'}", env={"SCALELAB_CACHE": str(tmp_path)})
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = cli(
        "corpus",
        "markov:order=1,vocab=64",
        "--vocab-size",
        "10",
        env={"SCALELAB_CACHE": str(tmp_path)},
    )
    assert r.returncode == 2 and "at least 66" in r.stderr


def test_public_api_exports():
    import scalelab

    assert scalelab.load_tokens is scalelab.data.load_tokens
    assert scalelab.bits_per_byte(0.6931471805599453, 1.0) == 1.0
