"""Gao, Schulman & Hilton 2022's overoptimisation laws: recovery, curves, trends, the CLI."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from scalelab.cli import main
from scalelab.errors import FitError
from scalelab.laws import fit_law
from scalelab.laws.forms import FORMS
from scalelab.laws.gao import coefficient_trend, fit_gao, fit_gao_curves
from scalelab.laws.law import Law


def near(true: float, ci: tuple[float, float]) -> bool:
    """The truth inside the interval widened by its width on each side: a 95% interval
    misses 1 time in 20 by design, and a test of three parameters must not fail that often."""
    lo, hi = ci
    return lo - (hi - lo) <= true <= hi + (hi - lo)


NS = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
BON_KL = np.log(NS) - (NS - 1) / NS  # the analytic KL of best-of-n (Gao et al., eq. in sec. 2)


def bon_points(alpha, beta, r0=0.1, noise=0.01, reps=4, seed=0, **cols) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kl = np.repeat(BON_KL, reps)
    d = np.sqrt(kl)
    y = r0 + d * (alpha - beta * d) + rng.normal(0.0, noise, kl.shape)
    return pd.DataFrame({"kl": kl, "gold_reward": y, "method": "bon", **cols})


def rl_points(alpha, beta, r0=0.0, noise=0.01, seed=0, **cols) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kl = np.linspace(0.0, 60.0, 40)
    d = np.sqrt(kl)
    dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    y = r0 + alpha * d - beta * dlogd + rng.normal(0.0, noise, kl.shape)
    return pd.DataFrame({"kl": kl, "proxy_reward": y, "method": "rl", **cols})


@pytest.mark.parametrize("alpha, beta", [(0.6, 0.15), (0.9, 0.25)])
def test_best_of_n_recovers_its_parameters_and_peak(alpha, beta):
    law = fit_law(bon_points(alpha, beta), "gao-bon", bootstrap=200, seed=1)
    for k, true in (("alpha", alpha), ("beta", beta), ("R0", 0.1)):
        assert near(true, law.ci[k]), (k, law.ci[k])
        assert abs(law.params[k] - true) < 0.05 * max(abs(true), 1.0)
    true_peak = alpha / (2 * beta)
    assert near(true_peak, law.ci["d_star"])
    assert law.ci["d_star"][1] - law.ci["d_star"][0] < 0.3 * true_peak  # and informative
    assert law.params["kl_star"] == pytest.approx(law.params["d_star"] ** 2)
    # the measured peak is the largest-mean KL among the points (the true peak lies inside
    # their range here), near the predicted one
    assert abs(law.params["d_peak_measured"] - true_peak) < 0.5
    assert law.predict(kl=1.0) == pytest.approx(0.1 + alpha - beta, abs=0.02)


def test_rl_recovers_its_parameters_and_peak():
    alpha, beta = 0.5, 0.12
    law = fit_law(rl_points(alpha, beta), "gao-rl", reward="proxy", fix={"R0": 0.0})
    assert "R0" not in law.ci and law.params["R0"] == 0.0
    for k, true in (("alpha", alpha), ("beta", beta)):
        assert near(true, law.ci[k]), (k, law.ci[k])
    # dR/dd = alpha - beta (log d + 1) = 0 at d* = exp(alpha / beta - 1)
    assert law.params["d_star"] == pytest.approx(np.exp(alpha / beta - 1), rel=0.25)
    # the best-of-n form does not describe RL's curve as well (its residuals are larger)
    bon = fit_law(rl_points(alpha, beta).assign(method="bon"), "gao-bon", reward="proxy")
    assert bon.objective > 3 * law.objective


def test_a_curve_that_never_turns_down_has_no_peak():
    law = fit_law(bon_points(0.5, -0.05, noise=0.001), "gao-bon", bootstrap=50)
    assert "d_star" not in law.params and law.params["beta"] < 0
    assert "no peak" in law.notes


def test_the_law_round_trips_through_json(tmp_path):
    law = fit_law(bon_points(0.6, 0.15), "gao-bon", bootstrap=20)
    back = Law.load(law.save(tmp_path / "gao.json"))
    assert back.params == pytest.approx(law.params)
    assert back.predict(kl=[0.5, 2.0]) == pytest.approx(law.predict(kl=[0.5, 2.0]))
    assert back.samples is not None and back.samples.shape == (20, 3)


def curves_table() -> pd.DataFrame:
    """Four reward-model sizes: alpha flat, beta falling by 0.05 per decade of N."""
    parts = []
    for i, n in enumerate([1e4, 1e5, 1e6, 1e7]):
        beta = 0.3 - 0.05 * np.log10(n / 1e4)
        parts.append(
            bon_points(
                0.8,
                beta,
                noise=0.005,
                seed=i,
                reward_run_id=f"rm{i}",
                reward_N=n,
                parent_run_id="sft",
                task="add",
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_curves_are_fitted_one_per_reward_model_with_their_trends():
    df = pd.concat([curves_table(), rl_points(0.5, 0.1, reward_run_id="rm0")])
    with pytest.raises(FitError, match="several curves"):
        fit_gao(df, "gao-bon")
    curves = fit_gao_curves(df, "gao-bon", bootstrap=100)  # the RL rows are left out
    assert [c.reward_N for c in curves] == [1e4, 1e5, 1e6, 1e7]
    assert [c.key["reward_run_id"] for c in curves] == ["rm0", "rm1", "rm2", "rm3"]
    assert all(c.law.n_points == len(BON_KL) * 4 for c in curves)
    beta = coefficient_trend(curves, "beta")
    assert beta["slope_per_decade"] == pytest.approx(-0.05, abs=0.01)
    assert near(-0.05, beta["ci"]) and beta["ci"][1] < 0
    alpha = coefficient_trend(curves, "alpha")
    assert near(0.0, alpha["ci"]) and abs(alpha["slope_per_decade"]) < 0.01  # flat


@pytest.mark.parametrize(
    "df, kw, match",
    [
        (pd.DataFrame({"gold_reward": [1.0] * 5}), {}, "needs a column kl"),
        (bon_points(0.5, 0.1).drop(columns="gold_reward"), {}, "gold_reward"),
        (bon_points(0.5, 0.1), {"reward": "silver"}, "reward must be one of"),
        (bon_points(0.5, 0.1).assign(kl=-1.0), {}, "kl must be >= 0"),
        (bon_points(0.5, 0.1).iloc[:8], {}, "distinct KLs"),
        (bon_points(0.5, 0.1).assign(method="rl"), {}, "method 'bon'"),
        (bon_points(0.5, 0.1), {"x": "N"}, "x do not apply"),
        (bon_points(0.5, 0.1), {"fix": {"gamma": 1.0}}, "no parameter 'gamma'"),
    ],
)
def test_bad_input_is_one_error_naming_the_fix(df, kw, match):
    with pytest.raises(FitError, match=match):
        fit_law(df, "gao-bon", bootstrap=0, **kw)


# -- the CLI ---------------------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def run(capsys, monkeypatch):
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


def _posttrain_store(db, df: pd.DataFrame) -> None:
    """Points as the posttrain stages write them: the numbers in extra_json, one id per n
    of a sweep (``<stage>-n<n>``), the policy as the parent."""
    from scalelab.results.store import Store

    with Store(db) as store:
        for i, row in enumerate(df.drop(columns="parent_run_id").to_dict("records")):
            row_parent = df["parent_run_id"].iloc[i]
            store.put_point(
                {"run_id": f"bon-{row['reward_run_id']}-n{i}", "kind": "posttrain", "technique": row["method"],
                 "parent_run_id": row_parent, "arch": "transformer",
                 "status": "finished", "extra_json": json.dumps(row)}
            )  # fmt: skip


def test_fit_reads_posttrain_points_from_a_store(run, tmp_path):
    db = tmp_path / "results.db"
    _posttrain_store(db, curves_table())
    r = run("fit", "--db", str(db), "--form", "gao-bon", "--bootstrap", "50", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [c["reward_N"] for c in out["curves"]] == [1e4, 1e5, 1e6, 1e7]
    betas = [c["law"]["params"]["beta"] for c in out["curves"]]
    assert betas == sorted(betas, reverse=True)  # beta falls with the reward model's size
    assert {t["coefficient"] for t in out["trends"]} == {"alpha", "beta", "R0"}
    r = run("fit", "--db", str(db), "--form", "gao-bon", "--bootstrap", "20")
    assert r.returncode == 0, r.stderr
    assert "d* predicted" in r.stdout and "beta against log10(reward N)" in r.stdout
    r = run("fit", "--db", str(db), "--form", "gao-bon", "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "4 curves" in r.stderr


def test_fit_one_curve_from_a_csv(run, tmp_path):
    csv = tmp_path / "rl.csv"
    rl_points(0.5, 0.12).to_csv(csv, index=False)
    out = tmp_path / "law.json"
    r = run("fit", "--csv", str(csv), "--form", "gao-rl", "--reward", "proxy", "--fix", "R0=0",
            "--bootstrap", "20", "--out", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "gao-rl law" in r.stdout and "predicted peak" in r.stdout
    assert Law.load(out).params["beta"] == pytest.approx(0.12, abs=0.02)
    r = run("fit", "--csv", str(csv), "--form", "gao-rl", "--x", "N")
    assert r.returncode == 2 and "--x" in r.stderr
    empty = tmp_path / "empty.db"
    from scalelab.results.store import Store

    with Store(empty):
        pass
    r = run("fit", "--db", str(empty), "--form", "gao-bon")
    assert r.returncode == 2 and "no posttrain points" in r.stderr


def test_the_cli_offers_every_form_of_the_api(run):
    r = run("fit", "--help")
    text = " ".join(r.stdout.split())
    for form in FORMS:
        assert form in text, form
    r = run("fit", "--csv", "x.csv", "--form", "gao-bonn")
    assert r.returncode == 2 and "did you mean 'gao-bon'" in r.stderr


def test_two_rl_runs_of_one_policy_and_reward_model_are_two_curves():
    a = rl_points(0.5, 0.1, seed=1, reward_run_id="rm", parent_run_id="sft")
    b = rl_points(0.5, 0.2, seed=2, reward_run_id="rm", parent_run_id="sft")
    a["run_id"] = [f"rl-kl0@{s}" for s in range(len(a))]
    b["run_id"] = [f"rl-kl1@{s}" for s in range(len(b))]
    curves = fit_gao_curves(pd.concat([a, b]), "gao-rl", reward="proxy", bootstrap=0)
    assert [c.key["stage"] for c in curves] == ["rl-kl0", "rl-kl1"]
    assert [round(c.law.params["beta"], 1) for c in curves] == [0.1, 0.2]


def test_a_stage_summary_without_kl_is_not_a_curve_point():
    curve = rl_points(0.5, 0.1, reward_run_id="rm")
    curve["run_id"] = [f"rl-0@{s}" for s in range(len(curve))]
    summary = pd.DataFrame(
        [{"run_id": "rl-0", "method": "rl", "reward_run_id": "rm", "accuracy": 0.4, "kl": None}]
    )
    (c,) = fit_gao_curves(pd.concat([curve, summary]), "gao-rl", reward="proxy", bootstrap=0)
    assert c.law.n_points == len(curve) and c.key["stage"] == "rl-0"
    with pytest.raises(FitError, match="NaN or infinite kl"):  # one curve given as such: strict
        fit_gao(pd.concat([curve, summary]).drop(columns="run_id"), "gao-rl", reward="proxy")
