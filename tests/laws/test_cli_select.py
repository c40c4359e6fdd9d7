"""`scalelab fit --form auto` (the form chosen by extrapolation), `--fix`, `--min-n`,
`--min-c`, `--resample`, on a CSV and on a store, as a user runs them."""

import json

import numpy as np
import pandas as pd
import pytest

from scalelab.results.store import Store

TIED = {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.33}


def tied_points(n_sizes: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = np.repeat(np.geomspace(1e7, 1e9, n_sizes), 3)
    d = n * np.tile([10.0, 20.0, 40.0], n_sizes)
    loss = TIED["E"] + TIED["A"] / n ** TIED["alpha"] + TIED["B"] / d ** TIED["alpha"]
    return pd.DataFrame(
        {"N": n, "D": d, "loss": loss * np.exp(0.002 * rng.standard_normal(n.size))}
    )


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("auto") / "ladder.csv"
    tied_points().to_csv(path, index=False)
    return path


def test_auto_prints_the_table_marks_the_choice_and_hands_it_to_plan(cli, ladder_csv, tmp_path):
    out = tmp_path / "fit.json"
    r = cli(
        "fit", "--csv", str(ladder_csv), "--form", "auto", "--bootstrap", "30", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    chosen = [ln for ln in lines if "chosen" in ln and "chinchilla" in ln]
    assert len(chosen) == 1 and "chinchilla-tied" in chosen[0]
    for form in ("chinchilla ", "overtrain"):
        assert any(form in ln for ln in lines)
    assert "N=398M" in r.stdout and "N=1G" in r.stdout  # the two held-out sizes
    assert "chinchilla-tied law: L = E + A / N^alpha + B / D^alpha" in r.stdout
    saved = json.loads(out.read_text())
    assert saved["form"] == "chinchilla-tied" and saved["selection"]["chosen"] == "chinchilla-tied"
    assert saved["resample"] == "size" and saved["ci_level"] == 0.9
    p = cli("plan", "--law", str(out), "--compute", "1e21", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["law"] == "fitted chinchilla-tied"


def test_auto_on_a_store_with_study(cli, tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        for i, row in tied_points().iterrows():
            for study in ("ladder", "other"):
                store.put_point(
                    {
                        "study": study,
                        "run_id": f"{study}-{i}",
                        "kind": "run",
                        "status": "finished",
                        "arch": "gpt2",
                        "N_non_embedding": int(row["N"]),
                        "D": int(row["D"]),
                        "loss": float(row["loss"]) * (1.0 if study == "ladder" else 1.3),
                    }
                )
    r = cli(
        "fit", "--db", str(db), "--study", "ladder", "--form", "auto", "--bootstrap", "0", "--json"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["form"] == "chinchilla-tied" and d["n_points"] == 18
    assert d["params"]["E"] == pytest.approx(1.8, rel=0.05)
    rows = d["selection"]["table"]
    assert len(rows) == 6 and {r_["form"] for r_ in rows} == {
        "chinchilla",
        "chinchilla-tied",
        "overtrain",
    }


def test_fix_and_subset_options(cli, ladder_csv):
    r = cli(
        "fit", "--csv", str(ladder_csv), "--form", "chinchilla-tied", "--fix", "E=1.8",
        "--min-n", "20M", "--min-c", "1e16", "--bootstrap", "20", "--resample", "size", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["params"]["E"] == 1.8 and d["fixed"] == ["E"] and "E" not in d["ci"]
    assert d["subset"]["min_n"] == 2e7 and d["subset"]["min_c"] == 1e16
    assert d["n_points"] == d["subset"]["n_points_kept"] == 15
    r = cli("fit", "--csv", str(ladder_csv), "--form", "auto", "--fix", "E=1.8", "--bootstrap", "0")
    assert r.returncode == 0 and "│ E     │    1.8 │" in r.stdout and "fixed" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fix", "E"], "write NAME=VALUE"),
        (["--fix", "E=abc"], "is not a number"),
        (["--fix", "gamma=1"], "no candidate form has a parameter gamma"),
        (["--forms", "chinchilla,power"], "laws of N and D"),
        (["--min-n", "1e12"], "no point is at or above"),
        (["--min-n", "3e8"], "2 model sizes"),
        (["--x", "N"], "apply to a named --form"),
        (["--resample", "size"], "apply to a named --form"),
    ],
)
def test_auto_errors_are_one_line(cli, ladder_csv, args, message):
    r = cli("fit", "--csv", str(ladder_csv), "--form", "auto", "--bootstrap", "0", *args)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
