"""`scalelab fit` and `scalelab plan`: JSON contract, FIT.json hand-over, clean errors."""

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from scalelab.cli import main

P = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def run(capsys, monkeypatch):
    """Run the CLI in-process (the real entry point, error handling included)."""

    def _run(*args: str) -> Result:
        monkeypatch.setattr(sys, "argv", ["scalelab", *args])
        capsys.readouterr()
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run


def test_entry_point_in_a_subprocess(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from scalelab.cli import main; main()",
            "plan",
            "--law",
            "hoffmann2022",
            "--compute",
            "5.76e23",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert 10 < json.loads(r.stdout)["tokens_per_param"] < 100


@pytest.fixture(scope="module")
def csv(tmp_path_factory, synthetic):
    path = tmp_path_factory.mktemp("pts") / "points.csv"
    synthetic(P, noise=0.005, seed=5).to_csv(path, index=False)
    return path


def test_fit_json_contract_and_plan_from_fit_json(run, csv, tmp_path):
    out = tmp_path / "fit.json"
    r = run("fit", "--csv", str(csv), "--bootstrap", "20", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert {"objective", "ci", "extrapolation"} <= set(d)
    assert "samples" not in d.get("bootstrap", {})  # printed JSON stays short
    assert json.loads(out.read_text())["bootstrap"]["n"] == 20

    r = run("plan", "--law", str(out), "--compute", "1e21", "--json")
    assert r.returncode == 0, r.stderr
    p = json.loads(r.stdout)
    assert p["compute"] == 1e21 and len(p["loss_interval"]) == 2
    assert p["N"] * p["D"] * 6 == pytest.approx(1e21)


def test_fit_human_output(run, csv):
    r = run("fit", "--csv", str(csv), "--bootstrap", "5")
    assert r.returncode == 0, r.stderr
    assert "alpha" in r.stdout and "extrapolation" in r.stdout


def test_plan_presets_several_budgets_and_repetition(run):
    r = run("plan", "--law", "hoffmann2022", "--compute", "1e21", "--compute", "1e22", "--json")
    assert r.returncode == 0, r.stderr
    assert [p["compute"] for p in json.loads(r.stdout)] == [1e21, 1e22]
    r = run("plan", "--compute", "1e24", "--unique-tokens", "1e11")
    assert r.returncode == 0, r.stderr
    assert "epochs" in r.stdout and "warning" in r.stderr
    r = run("plan", "--law", "epoch2024", "--target-loss", "2.0")
    assert r.returncode == 0 and "compute" in r.stdout


def test_data_constrained_and_allocation_from_csv(run, tmp_path, data_dir):
    df = pd.read_csv(data_dir / "datablations_fit_set_182.csv").rename(
        columns={
            "N_params": "N",
            "D_tokens": "D",
            "U_unique_tokens": "unique_tokens",
            "val_loss": "loss",
        }
    )
    path = tmp_path / "db.csv"
    df.to_csv(path, index=False)
    r = run(
        "fit",
        "--csv",
        str(path),
        "--form",
        "data-constrained",
        "--base",
        "muennighoff2023",
        "--bootstrap",
        "0",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["params"]) >= {"R_D_star", "R_N_star"}
    iso = pd.read_csv(data_dir / "cs336_isoflops.csv").rename(
        columns={
            "parameters": "N",
            "compute_budget": "C",
            "tokens_C_over_6N": "D",
            "final_loss": "loss",
        }
    )
    iso.to_csv(path, index=False)
    r = run("fit", "--csv", str(path), "--form", "isoflop", "--bootstrap", "10", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["params"]["a"] == pytest.approx(0.514, abs=0.01)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fit", "--csv", "/nonexistent.csv"], "does not exist"),
        (["fit", "--db", "/nonexistent/results.db"], "no results store"),
        (["fit", "--csv", "CSV", "--db", "CSV"], "not both"),
        (["fit", "--csv", "CSV", "--form", "chinchila"], "did you mean 'chinchilla'"),
        (["fit", "--csv", "NAN"], "NaN or infinite loss"),
        (["fit", "--csv", "ARCHS"], "mix architectures"),
        (["plan"], "--compute"),
        (["plan", "--compute", "1e21", "--law", "hofman2022"], "did you mean 'hoffmann2022'"),
        (["plan", "--law", "hoffmann2022", "--target-loss", "1.0"], "irreducible loss"),
        (["plan", "--law", "/nonexistent/fit.json", "--compute", "1e21"], "does not exist"),
    ],
)
def test_errors_are_one_line_no_traceback(run, args, message, csv, tmp_path):
    df = pd.read_csv(csv)
    nan = tmp_path / "nan.csv"
    df.assign(loss=np.where(df.index == 2, np.nan, df["loss"])).to_csv(nan, index=False)
    archs = tmp_path / "archs.csv"
    df.assign(arch=["transformer", "albert"] * (len(df) // 2)).to_csv(archs, index=False)
    subs = {"CSV": str(csv), "NAN": str(nan), "ARCHS": str(archs)}
    r = run(*[subs.get(a, a) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert message in r.stderr.replace("\n", " ")


def test_arch_filter(run, csv, tmp_path):
    df = pd.read_csv(csv)
    path = tmp_path / "a.csv"
    pd.concat(
        [df.assign(arch="transformer"), df.assign(arch="albert", loss=df["loss"] * 1.1)]
    ).to_csv(path, index=False)
    r = run("fit", "--csv", str(path), "--arch", "albert", "--bootstrap", "0", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_points"] == len(df)


def _store_with(db, df, study):
    from scalelab.results.store import Store

    with Store(db) as store:
        for i, r in enumerate(df.itertuples()):
            store.put_point(
                {"run_id": f"r{i}", "study": study, "arch": "transformer",
                 "status": r.status, "N_non_embedding": r.N, "N_total": 2 * r.N,
                 "N_active": r.N, "D": r.D, "loss": r.loss}
            )  # fmt: skip


def test_fit_reads_one_point_per_run_from_a_store(run, tmp_path, synthetic):
    """A run recorded in two studies counts once; stopped-early runs are fitted (with their
    best loss, as the store keeps them), failed ones are not; --study and --n select."""
    df = synthetic(P, noise=0.005, seed=6).assign(status="finished")
    df.loc[0, "status"] = "failed"
    df.loc[1, "status"] = "stopped_early"
    db = tmp_path / "results.db"
    _store_with(db, df, "ladder")
    _store_with(db, df.iloc[:5], "holdout")  # the same run ids again, in a second study
    r = run("fit", "--db", str(db), "--bootstrap", "0", "--json", "--no-extrapolation")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_points"] == len(df) - 1
    r = run("fit", "--db", str(db), "--study", "holdout", "--form", "power", "--x", "N",
            "--bootstrap", "0", "--json", "--no-extrapolation")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["n_points"] == 4
    # --n total fits N_total (twice N here): the fitted A moves by 2^alpha
    by_n = {}
    for n in ("non_embedding", "total"):
        r = run("fit", "--db", str(db), "--n", n, "--bootstrap", "0", "--json",
                "--no-extrapolation")  # fmt: skip
        assert r.returncode == 0, r.stderr
        by_n[n] = json.loads(r.stdout)["params"]
    ratio = by_n["total"]["A"] / by_n["non_embedding"]["A"]
    assert ratio == pytest.approx(2 ** by_n["total"]["alpha"], rel=1e-2)
    r = run("fit", "--db", str(db), "--study", "nosuch")
    assert r.returncode == 2 and "no such study" in r.stderr
    r = run("fit", "--db", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no results store" in r.stderr
