"""The CLI of the downstream tasks: every bad input is one line and exit code 2."""

import json

import pytest


def test_tasks_json_lists_name_kind_metric_chance(cli):
    r = cli("tasks", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {"code-next-line", "cloze", "syntax", "copy"} <= {row["name"] for row in rows}
    assert all({"kind", "metric", "chance"} <= set(row) for row in rows)


def test_eval_prints_accuracy_and_writes_the_store(cli, tiny_run, tmp_path):
    db = tmp_path / "cli.db"
    r = cli("eval", str(tiny_run), "--task", "code-brackets", "--items", "40", "--db", str(db),
            "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)[0]
    assert row["task"] == "code-brackets" and row["n"] == 40
    assert db.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "{run}", "--task", "clze"], "unknown task 'clze'"),
        (["eval", "{bare}", "--task", "cloze"], "no intact checkpoint"),
        (["eval", "{markov}", "--task", "cloze"], "needs a text tokenizer"),
        (["finetune", "{run}", "--task", "copy", "--set", "finetune.lrr=1"], "finetune.lrr"),
        (["intrinsic", "{run}", "--task", "syntax", "--projection", "fourier"], "fourier"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tiny_run, tmp_path, args, message):
    from scalelab.config import run_config_from_dict
    from scalelab.train import rundir

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((tiny_run / "config.json").read_text())
    markov = tmp_path / "markov"
    markov.mkdir()
    cfg = run_config_from_dict(
        {"data": {"corpus": "markov:order=1,vocab=8,seed=0"}, "model": {"vocab_size": 16}}
    )
    rundir.write_json(markov / "config.json", cfg.to_dict())
    paths = {"{run}": str(tiny_run), "{bare}": str(bare), "{markov}": str(markov)}
    r = cli(*[paths.get(a, a) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
