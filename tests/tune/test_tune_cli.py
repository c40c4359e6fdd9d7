"""`scalelab tune` and `scalelab tuned` end to end on tiny real runs; bad input is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scalelab.cli import main

STUDY = """
[study]
name = "cli-tune"
corpus = "markov:order=1,vocab=8,seed=0,tokens=50000"
tokenizer = "bytes"
tokens = 2048
[[study.sizes]]
name = "w8"
d_model = 8
[[study.sizes]]
name = "w16"
d_model = 16
[[study.sizes]]
name = "w32"
d_model = 32
[model]
n_layer = 1
n_head = 2
vocab_size = 260
context = 16
[train]
batch_size = 8
eval_every = 8
precision = "fp32"
[tune]
sampler = "random"
trials = 2
[tune.space]
"train.lr" = { low = 1e-3, high = 3e-2, log = true }
"""


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str):
    monkeypatch.setattr(sys, "argv", ["scalelab", *args])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    out, err = capsys.readouterr()
    return code, out, err


def test_tune_then_tuned(tmp_path: Path, capsys, monkeypatch) -> None:
    study = tmp_path / "s.toml"
    study.write_text(STUDY)
    db, runs = str(tmp_path / "r.db"), str(tmp_path / "runs")
    code, out, err = run_cli(capsys, monkeypatch, "tune", str(study), "--db", db, "--runs", runs)
    assert code == 0, err
    assert "w8: 2 trials, best" in out and "w32: 2 trials, best" in out
    assert "trial 1 (train.lr=" in out  # progress: each trial with the best so far
    code, out, err = run_cli(capsys, monkeypatch, "tune", str(study), "--db", db, "--runs", runs)
    assert code == 0 and "0 trials now" in out  # nothing left to do
    code, out, err = run_cli(
        capsys, monkeypatch, "tuned", "--db", db, "--fit", "train.lr", "--at", "1e6", "--json",
        "--bootstrap", "20",
    )  # fmt: skip
    assert code == 0, err
    res = json.loads(out)
    assert [r["size"] for r in res["best"]] == ["w8", "w16", "w32"]
    assert all(r["trials"] == 2 and r["best"] > 0 for r in res["best"])
    (fit,) = res["fits"]
    assert fit["key"] == "train.lr" and fit["n_points"] == 3 and fit["at"]["1e+06"] > 0
    # the fitted law names the learning rate of a planned size never tuned
    laws = tmp_path / "lr.json"
    code, out, err = run_cli(
        capsys, monkeypatch, "tuned", "--db", db, "--fit", "train.lr", "--bootstrap", "20",
        "--out", str(laws),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli(
        capsys, monkeypatch, "plan", "--compute", "1e21", "--law", "hoffmann2022",
        "--hyper", str(laws), "--json",
    )  # fmt: skip
    assert code == 0, err
    plan = json.loads(out)
    (named,) = plan["hyperparameters"]
    law = json.loads(laws.read_text())[0]
    assert named["key"] == "train.lr" and named["N"] == plan["N"]
    assert named["value"] == pytest.approx(law["k"] * plan["N"] ** -law["alpha"], rel=1e-12)
    assert named["extrapolation"] > 1e4  # billions of parameters from a ladder of thousands
    code, out, err = run_cli(
        capsys, monkeypatch, "plan", "--compute", "1e21", "--law", "hoffmann2022",
        "--hyper", str(laws),
    )  # fmt: skip
    assert code == 0 and "train.lr" in out and "beyond the fitted sizes" in out


@pytest.mark.parametrize(
    ("old", "new", "args", "message"),
    [
        ('"random"', '"bayes"', (), "tune.sampler = 'bayes' is not one of"),
        ("low = 1e-3, high = 3e-2", "low = 3e-2, high = 1e-3", (), "low (0.03) must be below"),
        ("", "", ("--trials", "0"), "--trials"),
        ("", "", ("--sampler", "annealing"), "tune.sampler = 'annealing'"),
        ("", "", ("--workers", "0"), "--workers must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path, old, new, args, message) -> None:
    study = tmp_path / "s.toml"
    study.write_text(STUDY.replace(old, new) if old else STUDY)
    r = cli(
        "tune", str(study), "--db", str(tmp_path / "r.db"), "--runs", str(tmp_path / "runs"), *args
    )  # fmt: skip
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_tuned_without_trials_is_one_line(cli, tmp_path: Path) -> None:
    r = cli("tuned", "--db", str(tmp_path / "none.db"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no results store" in r.stderr
