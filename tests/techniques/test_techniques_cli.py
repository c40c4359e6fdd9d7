"""scalelab compress / effective: a derived run and a point; bad input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalelab.laws import Law


def test_compress_writes_a_derived_run_and_a_point(cli, tiny_run: Path, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    out = tmp_path / "q4"
    r = cli(
        "compress",
        str(tiny_run),
        "--method",
        "quant",
        "--level",
        "4",
        "--group",
        "32",
        "--out",
        str(out),
        "--db",
        str(db),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["run_dir"] == str(out) and got["bits"] == 42496
    assert (out / "summary.json").is_file() and db.is_file()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--method", "zip", "--level", "0.5"], "not one of prune, quant"),
        (["--method", "prune", "--level", "1.5"], "out of range"),
        (["--method", "quant", "--level", "4", "--recover", "1k"], "no --recover"),
        (["--method", "prune", "--level", "0.5", "--algorithm", "gptq"], "do not apply"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tiny_run: Path, args, match) -> None:
    r = cli("compress", str(tiny_run), *args)
    assert r.returncode == 2
    assert match in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_missing_run_is_one_line(cli, tmp_path: Path) -> None:
    r = cli("compress", str(tmp_path / "none"), "--method", "prune", "--level", "0.5")
    assert r.returncode == 2 and "not a run directory" in r.stderr


def test_effective_n_from_a_law_file(cli, tmp_path: Path) -> None:
    law = Law(
        form="chinchilla", params={"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    )
    path = law.save(tmp_path / "law.json")
    r = cli(
        "effective",
        "--law",
        str(path),
        "--loss",
        f"{law.predict(1e8, 2e9):.10f}",
        "--tokens",
        "2e9",
    )
    assert r.returncode == 0, r.stderr
    assert "N_eff = 1e+08" in r.stdout
    r = cli("effective", "--law", str(path), "--loss", "1.0", "--tokens", "2e9")
    assert "below the law's floor" in r.stdout
    r = cli("effective", "--law", str(path), "--loss", "2.5")
    assert r.returncode == 2 and "--tokens" in r.stderr


def test_points_keep_technique_points_apart(cli, tiny_run: Path, tmp_path: Path) -> None:
    from scalelab.results.records import point_row, read_run
    from scalelab.results.store import Store

    db = tmp_path / "p.db"
    with Store(db) as s:
        s.put_point(point_row(read_run(tiny_run), study="t"))
    r = cli(
        "compress",
        str(tiny_run),
        "--method",
        "prune",
        "--level",
        "0.5",
        "--db",
        str(db),
        "--out",
        str(tmp_path / "pruned"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    plain = cli("points", "--db", str(db), "--csv", str(tmp_path / "a.csv"))
    every = cli("points", "--db", str(db), "--csv", str(tmp_path / "b.csv"), "--kind", "all")
    assert "wrote 1 points" in plain.stdout and "wrote 2 points" in every.stdout
    bad = cli("points", "--db", str(db), "--kind", "pruned")
    assert bad.returncode == 2 and "--kind" in bad.stderr
