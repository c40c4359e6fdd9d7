import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from scalelab.cli import app
from scalelab.study import load_study, sweep
from study_fakes import fake_probe, fake_train

STUDY = """
[study]
name = "cli"
tokens = [1000, 2000]
[[study.sizes]]
name = "a"
d_model = 16
[[study.sizes]]
name = "b"
d_model = 32
[model]
n_layer = 1
n_head = 2
vocab_size = 64
context = 16
"""

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    import scalelab.cli

    monkeypatch.setattr(scalelab.cli.console, "width", 200)


def test_dry_run_lists_the_grid(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(STUDY)
    r = runner.invoke(
        app,
        [
            "sweep",
            str(p),
            "--db",
            str(tmp_path / "r.db"),
            "--runs",
            str(tmp_path / "runs"),
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "4 runs" in r.output
    from scalelab.study import expand

    assert all(run.run_id in r.output for run in expand(load_study(p)))
    assert not any((tmp_path / "runs").glob("*/config.json"))


def test_points_list_export_and_rebuild(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(STUDY)
    db, out = tmp_path / "r.db", tmp_path / "runs"
    sweep(
        load_study(p),
        db=db,
        out=out,
        progress=False,
        trainer=fake_train,
        data_probe=fake_probe,
    )
    r = runner.invoke(app, ["points", "--db", str(db)])
    assert r.exit_code == 0 and re.search(r"4\s+points", r.output)
    assert len(re.findall(r"\d\.\d{4}", r.output)) >= 4  # a loss per point
    r = runner.invoke(
        app, ["points", "--db", str(db), "--csv", str(tmp_path / "p.csv"), "--n", "total"]
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "p.csv")
    assert len(df) == 4 and (df["N"] == df["N_total"]).all()
    r = runner.invoke(app, ["points", "--from-runs", str(out), "--db", str(tmp_path / "new.db")])
    assert r.exit_code == 0 and "4 points from 4 run directories" in r.output
    r = runner.invoke(
        app,
        ["points", "--db", str(tmp_path / "new.db"), "--curves", "--csv", str(tmp_path / "c.csv")],
    )
    assert len(pd.read_csv(tmp_path / "c.csv")) == 8  # two evaluations per run


def test_errors_are_one_line(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\nname = "x"\nsezes = []\n')
    r = cli("sweep", str(bad), "--dry-run", "--db", str(tmp_path / "r.db"))
    assert r.returncode == 2 and "did you mean 'sizes'" in r.stderr and "Traceback" not in r.stderr
    r = cli("points", "--db", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no results store" in r.stderr and "Traceback" not in r.stderr
