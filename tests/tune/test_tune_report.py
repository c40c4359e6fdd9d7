"""The report's Tuning section on a store of synthetic trials."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tune_fakes import run

from scalelab.reporting.sections import BUILDERS
from scalelab.reporting.tuning import best_shift, tuning_section
from scalelab.tune.trends import best_trials

GRID = {"train.lr": {"low": 1e-4, "high": 1e-1, "log": True, "n": 7}}


def test_tuning_section_draws_the_search_and_fits_lr(tmp_path: Path) -> None:
    run(tmp_path, GRID, sizes=(32, 64, 128), sampler="grid")
    ctx = SimpleNamespace(db=tmp_path / "r.db", out=tmp_path / "report", study=None, bootstrap=50)
    ctx.out.mkdir()
    s = tuning_section(ctx)
    assert s is not None and s.title == "Tuning"
    assert [f.name for f in s.figures] == ["tune-search.png"] and s.figures[0].stat().st_size > 0
    assert "w32" in s.html and "w128" in s.html and "N<sup>-" in s.html
    assert s.data["law"]["n_points"] == 3
    assert tuning_section in BUILDERS


def test_best_shift_in_grid_steps(tmp_path: Path) -> None:
    run(tmp_path, GRID, sizes=(32, 64, 128, 256), sampler="grid")
    best = best_trials(tmp_path / "r.db")
    grid = [1e-4 * 10 ** (i / 2) for i in range(7)]
    (shift,) = best_shift(best, "train.lr", grid).values()
    # the synthetic optimum falls 8x from width 32 to 256: 2 steps of sqrt(10) on this grid
    assert shift["moves_grid_steps"] == 2 and shift["sizes"] == ["w32", "w64", "w128", "w256"]


def test_no_trials_no_section(tmp_path: Path) -> None:
    from scalelab.results.store import Store

    Store(tmp_path / "r.db").close()
    ctx = SimpleNamespace(db=tmp_path / "r.db", out=tmp_path, study=None, bootstrap=10)
    assert tuning_section(ctx) is None


def test_a_store_of_trials_alone_is_reported(tmp_path: Path) -> None:
    """`scalelab tune` then `scalelab report` on that store: the Tuning section, no law."""
    from scalelab.errors import StoreError
    from scalelab.reporting import report
    from scalelab.results.store import Store

    run(tmp_path, GRID, sizes=(32, 64, 128), sampler="grid")
    res = report(tmp_path / "r.db", tmp_path / "report", bootstrap=20)
    assert [s.title for s in res.sections] == ["Tuning"]
    assert res.law is None and "no ladder runs" in str(res.law_error)
    assert "w128" in res.path.read_text()
    Store(tmp_path / "empty.db").close()  # neither runs nor trials: still an error
    with pytest.raises(StoreError, match="no finished runs"):
        report(tmp_path / "empty.db", tmp_path / "report2")
