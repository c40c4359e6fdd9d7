"""The overfitting crossover and the gap, on a store with known losses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scalelab.analysis.overfit import _crossing, overfit_analysis
from scalelab.errors import ScalelabError
from scalelab.results.store import Store


def test_crossing_interpolates_in_log_unique_tokens() -> None:
    x = np.array([1e3, 1e4, 1e5])
    assert _crossing(x, np.array([0.2, -0.1, -0.2])) == pytest.approx(1e4 / 10 ** (1 / 3))
    assert _crossing(x, np.array([-0.1, -0.1, -0.2])) is None
    assert _crossing(x, np.array([0.1, 0.1, 0.1])) == 1e5
    # worse only in the middle, better again at the least data: no crossover below
    assert _crossing(x, np.array([-0.1, 0.1, -0.2])) is None


def test_overfit_analysis_finds_where_the_larger_model_loses(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with Store(db) as s:
        for n, slope in ((1e4, 0.05), (1e5, 0.2)):
            for f in (0.01, 0.1, 1.0):
                u = 2e5 * f
                # the larger model is better with much data, worse when little is repeated
                loss = (2.0 if n == 1e4 else 1.8) + slope * np.log(2e5 / u)
                s.put_point(
                    {
                        "study": "overfit",
                        "run_id": f"r{n}-{f}",
                        "N_non_embedding": int(n),
                        "N_total": int(n),
                        "N_active": int(n),
                        "D": 200000,
                        "unique_tokens": int(u),
                        "loss": loss,
                        "best_val_loss": loss - 0.01,
                        "train_loss": loss - 2 * slope,
                        "status": "finished",
                        "corpus": "c",
                        "axes_json": json.dumps({"data.fraction": f}),
                    }
                )
    a = overfit_analysis(db, bootstrap=5)
    final = next(c for c in a.crossovers if c.metric == "loss")
    # 1.8 + 0.2 L = 2.0 + 0.05 L at L = ln(200k / u) = 4/3
    assert final.unique_tokens == pytest.approx(2e5 * np.exp(-4 / 3), rel=0.35)
    assert final.diff_at_smallest > 0
    assert (a.runs.groupby("N")["gap"].max().diff().dropna() > 0).all()
    assert "larger worse" in a.describe()
    with pytest.raises(ScalelabError, match="no finished runs"):
        overfit_analysis(db, study="missing")
