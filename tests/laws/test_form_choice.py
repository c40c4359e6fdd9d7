"""Choosing the law by extrapolation (rolling origin by model size), bootstrap by size and
the coverage of its intervals; fixing parameters; fitting a subset."""

import numpy as np
import pandas as pd
import pytest

from scalelab.errors import FitError
from scalelab.laws import fit_law, plan, select_law
from scalelab.laws.forms import make_form

TRUE = {
    "chinchilla": {"E": 1.7, "A": 400.0, "B": 3000.0, "alpha": 0.30, "beta": 0.45},
    "chinchilla-tied": {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.33},
    "overtrain": {"E": 1.8, "a": 900.0, "b": 2500.0, "eta": 0.17},
}


def ladder(form: str, noise: float = 0.002, seed: int = 0, n_sizes: int = 8) -> pd.DataFrame:
    """Points of ``form``: n_sizes model sizes x 5 token multipliers, log-normal noise.
    C counts the embedding parameters (6 (N + 5e7) D), as a compute count may, so the
    over-training law (of C and D/N) differs from the tied law (of N and D)."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(1e7, 3e9, n_sizes), 5)
    D = N * np.tile([5.0, 10.0, 20.0, 40.0, 80.0], n_sizes)
    C = 6 * (N + 5e7) * D
    loss = make_form(form).predict(TRUE[form], {"N": N, "D": D, "C": C})
    return pd.DataFrame(
        {"N": N, "D": D, "C": C, "loss": loss * np.exp(noise * rng.standard_normal(N.size))}
    )


@pytest.mark.parametrize("form", sorted(TRUE))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_picks_the_true_form(form, seed):
    sel = select_law(ladder(form, seed=seed), bootstrap=0)
    assert sel.chosen == form, sel.summary
    assert sel.law.form == form and sel.law.n_points == 40
    # the table: every candidate on each of the 2 largest sizes, fitted on the smaller ones
    t = sel.table
    assert len(t) == 6 and set(t["form"]) == set(TRUE)
    assert sorted(t["held_out_N"].unique()) == pytest.approx(np.geomspace(1e7, 3e9, 8)[-2:])
    assert sorted(t["n_fit"].unique()) == [30, 35]
    best = sel.summary.set_index("form")["mean_abs_rel_error"]
    assert best[form] < 0.005  # the true form extrapolates to within the 0.2% noise


def test_ties_go_to_fewer_parameters():
    # noiseless tied points: the free form fits them exactly too (beta = alpha), so its
    # error is as small; the tie goes to the form with one parameter fewer
    sel = select_law(
        ladder("chinchilla-tied", noise=0.0), ["chinchilla", "chinchilla-tied"], bootstrap=0
    )
    s = sel.summary.set_index("form")
    assert s.loc["chinchilla", "mean_abs_rel_error"] < 1e-4
    assert sel.chosen == "chinchilla-tied"
    assert bool(s.loc["chinchilla-tied", "chosen"]) and not bool(s.loc["chinchilla", "chosen"])


def test_coverage_is_measured_and_below_nominal_is_said():
    sel = select_law(ladder("chinchilla-tied", noise=0.003), bootstrap=60, level=0.9)
    assert sel.table["covered"].between(0, sel.table["n_held"]).all()
    cov = sel.coverage
    assert 0 <= cov <= 1
    narrow = select_law(ladder("chinchilla-tied", noise=0.003), bootstrap=60, level=0.02)
    # 2% intervals cannot hold 2% of the points here... unless they do: the note follows
    # the measurement either way
    said = any("below nominal" in n for n in narrow.notes)
    assert said == (narrow.coverage < 0.02)
    assert sel.law.resample == "size" and sel.law.ci_level == 0.9
    assert sel.law.selection["chosen"] == sel.chosen
    assert len(sel.law.selection["table"]) == len(sel.table)


def test_prediction_intervals_are_calibrated_on_data_drawn_from_the_form():
    """Calibration, not only a number in [0, 1]: 20 seeded ladders drawn from
    chinchilla-tied with 0.3% log-normal noise, each fitted on its five smaller sizes; the
    90% prediction interval that select_law scores its coverage with (100 refits resampled
    by size, each plus a drawn residual) must hold 80-97% of 10 fresh runs at the top size.

    Today's code holds 169 of 200 here (84.5%); an interval for the mean alone (no residual
    term) holds 119 (59.5%) of the same draws and fails. Percentile intervals from B
    resamples run a little under nominal by construction (about 84% at B = 30, 88% at 100,
    89% at select_law's default 200)."""
    from scalelab.laws.fit import _cols, _fit_once
    from scalelab.laws.form_choice import prediction_interval
    from scalelab.laws.robust import DELTA

    form = make_form("chinchilla-tied")
    covered = held = 0
    for draw in range(20):
        pts = ladder("chinchilla-tied", noise=0.003, seed=100 + draw, n_sizes=6)
        n_next = pts["N"].max()  # the ladder's top rung, held out: fresh runs there
        fit = pts[pts["N"] < n_next]
        rng = np.random.default_rng(200 + draw)
        new = {"N": np.full(10, n_next), "D": n_next * np.geomspace(5.0, 80.0, 10)}
        truth = form.predict(TRUE["chinchilla-tied"], new)
        actual = truth * np.exp(0.003 * rng.standard_normal(10))
        theta, _ = _fit_once(form, fit, DELTA, 2)
        groups = np.unique(fit["N"].to_numpy(), return_inverse=True)[1]
        lo, hi = prediction_interval(
            form,
            form.features(_cols(fit, form)),
            np.log(fit["loss"].to_numpy()),
            theta,
            form.features(new),
            groups,
            100,
            0.9,
            seed=draw,
        )
        covered += int(np.sum((actual >= lo) & (actual <= hi)))
        held += len(actual)
    assert held == 200
    assert 0.80 <= covered / held <= 0.97, covered


def test_selection_survives_the_fit_json(tmp_path):
    from scalelab.laws import Law

    sel = select_law(ladder("overtrain"), bootstrap=10)
    back = Law.load(sel.law.save(tmp_path / "fit.json"))
    assert np.array_equal(back.residuals, sel.law.residuals) and len(back.residuals) == 40
    # the interval of one run is wider than the law's own, and holds its prediction
    at = {"N": 1e9, "D": 2e10, "C": 6 * (1e9 + 5e7) * 2e10}
    lo, hi = back.predict_interval(**at)
    lo_r, hi_r = back.predict_interval(run=True, **at)
    assert lo_r < lo < back.predict(**at) < hi < hi_r
    pl = plan(back, 1e21)  # plan uses the chosen law, with its size-bootstrap intervals
    assert pl.law == "fitted overtrain" and pl.loss_interval[0] < pl.loss < pl.loss_interval[1]
    assert back.form == "overtrain" and back.selection == sel.law.selection
    assert back.predict(N=1e10, D=2e11, C=6 * (1e10 + 5e7) * 2e11) == pytest.approx(
        sel.predict(N=1e10, D=2e11, C=6 * (1e10 + 5e7) * 2e11)
    )


def test_too_few_sizes_and_bad_forms_are_clear_errors():
    with pytest.raises(FitError, match=r"3 model sizes.*at least 4"):
        select_law(ladder("chinchilla", n_sizes=3), bootstrap=0)
    with pytest.raises(FitError, match="laws of N and D"):
        select_law(ladder("chinchilla"), ["chinchilla", "power"], bootstrap=0)
    with pytest.raises(FitError, match="unknown"):
        select_law(ladder("chinchilla"), ["chinchila"], bootstrap=0)
    with pytest.raises(FitError, match="holdout"):
        select_law(ladder("chinchilla"), holdout=0)
    with pytest.raises(FitError, match="no candidate form has a parameter R_D_star"):
        select_law(ladder("chinchilla"), fix={"R_D_star": 3.0}, bootstrap=0)
    # 4 sizes: only one can be held out with 3 left to fit, and the output says so
    sel = select_law(ladder("chinchilla", n_sizes=4), bootstrap=0)
    assert sel.holdout == 1 and "held out 1" in sel.notes[0]


@pytest.mark.parametrize("form", ["chinchilla", "chinchilla-tied", "overtrain"])
def test_fixing_a_parameter_to_its_true_value_returns_it_exactly(form):
    true = TRUE[form]
    pts = ladder(form, noise=0.0)
    law = fit_law(pts, form, fix={"E": true["E"]}, bootstrap=8)
    assert law.params["E"] == true["E"]  # exactly
    assert law.fixed == ("E",) and "E" not in law.ci
    assert all(s[0] == true["E"] for s in law.samples)
    for k, v in true.items():
        assert law.params[k] == pytest.approx(v, rel=1e-5), k
    # fixing E elsewhere moves the other parameters to compensate
    off = fit_law(pts, form, fix={"E": true["E"] - 0.3}, bootstrap=0)
    assert off.params["E"] == true["E"] - 0.3 and off.objective > law.objective


def test_fix_errors():
    pts = ladder("chinchilla")
    with pytest.raises(FitError, match=r"no parameter 'gamma'.*E, A, B, alpha, beta"):
        fit_law(pts, fix={"gamma": 1.0})
    with pytest.raises(FitError, match="positive"):
        fit_law(pts, fix={"E": -1.0})
    with pytest.raises(FitError, match="every parameter"):
        fit_law(pts, fix=TRUE["chinchilla"])
    with pytest.raises(FitError, match="not to slope"):
        fit_law(pts, "slope", fix={"k": 1.0})


def test_subset_by_min_n_and_min_c():
    pts = ladder("chinchilla")
    law = fit_law(pts, min_n=1e8, bootstrap=0)
    kept = int((pts["N"] >= 1e8).sum())
    assert law.n_points == kept < len(pts)
    assert law.subset == {"n_points_given": 40, "min_n": 1e8, "n_points_kept": kept}
    no_c = pts.drop(columns="C")
    law_c = fit_law(no_c, min_c=1e19, bootstrap=0)
    assert law_c.n_points == int((6 * no_c["N"] * no_c["D"] >= 1e19).sum())
    with pytest.raises(FitError, match="no point is at or above min_n = 1e\\+12"):
        fit_law(pts, min_n=1e12)
    sel = select_law(pts, min_n=3e7, bootstrap=0)
    assert sel.law.subset["min_n"] == 3e7 and sel.table["n_fit"].min() < 30


def test_bootstrap_by_size_resamples_whole_sizes(monkeypatch):
    from scalelab.laws import robust

    seen = []
    real = robust.refine

    def spy(form, feats, logy, theta0, delta=robust.DELTA, weights=None, maxiter=1000):
        if weights is not None:  # the bootstrap refits, not the fit itself
            seen.append(weights.copy())
        return real(form, feats, logy, theta0, delta, weights, maxiter)

    pts = ladder("chinchilla")
    monkeypatch.setattr(robust, "refine", spy)
    law = fit_law(pts, bootstrap=30, resample="size", extrapolation=False)
    assert law.resample == "size"
    boot = seen[-30:]
    sizes = pts["N"].to_numpy()
    for w in boot:
        # every run of a size gets the same weight: the number of times that size was drawn
        for n in np.unique(sizes):
            assert len(set(w[sizes == n])) == 1
        assert w.sum() == len(pts)  # 8 sizes of 5 runs, 8 draws
    assert any(len(set(w)) > 2 for w in boot)  # sizes drawn 0, 1, 2+ times
    seen.clear()
    fit_law(pts, bootstrap=30, resample="row", extrapolation=False)
    rows = seen[-30:]
    assert any(len(set(w[sizes == n])) > 1 for w in rows for n in np.unique(sizes))
    with pytest.raises(FitError, match="resample"):
        fit_law(pts, resample="budget")


def test_overtrain_is_scored_as_tied_when_c_is_6nd():
    pts = ladder("chinchilla-tied").drop(columns="C")  # C defaults to 6ND
    sel = select_law(pts, bootstrap=0)
    assert any("reparametrised" in n for n in sel.notes)
    t = sel.table.set_index(["form", "held_out_N"])["mean_abs_rel_error"]
    assert list(t["overtrain"]) == list(t["chinchilla-tied"])
    assert sel.chosen == "chinchilla-tied"  # the tie goes to the form listed first
    # its own fit agrees: the same law, fitted in Gadre et al.'s parameters
    ot = fit_law(pts, "overtrain", bootstrap=0)
    tied = fit_law(pts, "chinchilla-tied", bootstrap=0)
    assert ot.predict(N=1e10, D=2e11) == pytest.approx(tied.predict(N=1e10, D=2e11), rel=1e-4)
    # with another C, the two are fitted apart
    other = select_law(ladder("overtrain"), bootstrap=0)
    assert not any("reparametrised" in n for n in other.notes)


def test_run_interval_needs_residuals():
    law = fit_law(ladder("chinchilla"), bootstrap=5)
    with pytest.raises(FitError, match="no residuals"):
        law.predict_interval(N=1e9, D=2e10, run=True)
