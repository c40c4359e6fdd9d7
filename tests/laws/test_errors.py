"""Bad input gets a FitError naming what is wrong, never a traceback from NumPy/SciPy."""

import numpy as np
import pandas as pd
import pytest

from scalelab.errors import FitError, ScalelabError
from scalelab.laws import fit_law

P = {"E": 1.7, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28}


@pytest.fixture()
def pts(synthetic):
    return synthetic(P)


def test_missing_columns_are_named(pts):
    with pytest.raises(FitError, match=r"missing D"):
        fit_law(pts.drop(columns=["D"]), bootstrap=0)
    with pytest.raises(FitError, match=r"unique_tokens"):
        fit_law(pts, "data-constrained", base="muennighoff2023", bootstrap=0)


def test_nan_loss_is_refused_with_the_rows(pts):
    pts.loc[[3, 7], "loss"] = np.nan
    with pytest.raises(FitError, match=r"2 point\(s\) have a NaN or infinite loss \(rows 3, 7\)"):
        fit_law(pts, bootstrap=0)


@pytest.mark.parametrize("col", ["N", "D"])
def test_non_positive_sizes_are_refused(pts, col):
    pts.loc[0, col] = 0
    with pytest.raises(FitError, match=rf"{col} must be positive"):
        fit_law(pts, bootstrap=0)


def test_too_few_points_for_the_form(pts):
    with pytest.raises(FitError, match=r"5 free parameters and needs at least 6 points; got 4"):
        fit_law(pts.head(4), bootstrap=0)


def test_one_data_budget_cannot_fit_two_variables():
    df = pd.DataFrame(
        {"N": [1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7], "D": 1e9, "loss": np.linspace(4, 3, 6)}
    )
    with pytest.raises(FitError, match=r"all points have the same D"):
        fit_law(df, bootstrap=0)
    # the one-variable law is the fix the message suggests
    assert fit_law(df, "power", x="N", bootstrap=0).params["alpha"] > 0


def test_unknown_law_and_variable(pts):
    with pytest.raises(FitError, match=r"did you mean 'chinchilla'"):
        fit_law(pts, "chinchila")
    with pytest.raises(FitError, match=r"x must be N, D or C"):
        fit_law(pts, "power", x="T")


def test_non_numeric_column(pts):
    pts["loss"] = pts["loss"].astype(str)
    pts.loc[0, "loss"] = "oops"
    with pytest.raises(FitError, match=r"column 'loss' must be numeric"):
        fit_law(pts, bootstrap=0)


def test_data_constrained_without_base_needs_single_epoch_points():
    df = pd.DataFrame(
        {
            "N": [1e6] * 6,
            "D": np.geomspace(1e8, 1e9, 6),
            "unique_tokens": 1e7,
            "loss": np.linspace(4, 3, 6),
        }
    )
    with pytest.raises(FitError, match=r"needs base Chinchilla parameters"):
        fit_law(df, "data-constrained", bootstrap=0)


def test_unknown_base_preset(pts):
    pts["unique_tokens"] = pts["D"]
    with pytest.raises(ScalelabError, match=r"unknown law preset"):
        fit_law(pts, "data-constrained", base="nope2020", bootstrap=0)


def test_options_that_do_not_apply_to_the_form(pts):
    with pytest.raises(FitError, match=r"x applies to the one-variable laws"):
        fit_law(pts, "chinchilla", x="N")
    with pytest.raises(FitError, match=r"base applies to the data-constrained law"):
        fit_law(pts, "chinchilla", base="muennighoff2023")
