"""scalelab.fmt.si: one SI formatter, whose output for stored labels must not drift."""

from __future__ import annotations

import math

import pytest

from scalelab.accounting.display import human
from scalelab.fmt import si
from scalelab.study.grid import _size_label
from scalelab.study.studyfile import Budget


@pytest.mark.parametrize(
    ("x", "kw", "want"),
    [
        (1.5e6, {}, "1.5M"),
        (-2.5e9, {}, "-2.5G"),
        (999, {}, "999"),
        (1e3, {}, "1k"),
        (5.76e20, {}, "576E"),
        (1.2345e21, {"digits": 2}, "1.2e+03E"),
        (12800, {"digits": 4}, "12.8k"),
        (8.03e9, {"billion": "B", "sep": " "}, "8.03 B"),
        (15.6e12, {}, "15.6T"),
        (1e15, {}, "1P"),
    ],
)
def test_si(x, kw, want):
    assert si(x, **kw) == want


@pytest.mark.parametrize("x", [None, math.nan, "12", True])
def test_no_number_is_an_empty_cell(x):
    assert si(x) == ""


def test_the_labels_stored_with_runs_keep_their_form():
    """Size and budget labels are columns of the store: the forms studies already wrote."""
    assert [_size_label(t) for t in (3e4, 1e5, 1.5e6, 2e9)] == ["30k", "100k", "1.5M", "2B"]
    assert Budget(tokens=12800).label == "tokens=12.8k"
    assert Budget(tokens=1_234_567).label == "tokens=1.235M"
    assert human(124_439_808) == "124 M" and human(8.03e9) == "8.03 B"
