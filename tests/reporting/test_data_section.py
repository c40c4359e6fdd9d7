"""The report's Data section: drawn for a store with selected runs, absent without."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from scalelab.reporting.data_section import data_section
from scalelab.reporting.sections import ReportContext
from scalelab.results.store import Store


def _ctx(db: Path, out: Path) -> ReportContext:
    return ReportContext(db, out, None, pd.DataFrame(), pd.DataFrame(), None, None, 0)


def _store(db: Path) -> None:
    with Store(db) as s:
        i = 0
        for n in (1e4, 3e4):
            for d in (1e5, 3e5, 1e6):
                for seed in (0, 1):
                    loss = 1.0 + 40 / n**0.4 + 300 / d**0.35 + 0.001 * seed
                    s.put_point(
                        {"study": "keep-fraction", "run_id": f"p{i}", "N_non_embedding": int(n),
                         "N_total": int(n), "N_active": int(n), "D": int(d), "loss": loss,
                         "train_loss": loss, "seed": seed, "status": "finished", "epochs": 1.0}
                    )  # fmt: skip
                    i += 1
            for keep in (0.1, 0.5):
                for seed in (0, 1):
                    sel = {"method": "random", "keep": keep, "kept_fraction": keep}
                    loss = (1.0 + 40 / n**0.4 + 300 / 1e6**0.35) * (1 + 0.02 * (1 - keep))
                    s.put_point(
                        {"study": "keep-fraction", "run_id": f"s{i}", "N_non_embedding": int(n),
                         "N_total": int(n), "N_active": int(n), "D": int(1e6), "loss": loss,
                         "train_loss": loss, "seed": seed, "status": "finished", "epochs": 1.0,
                         "kind": "select", "technique": "random",
                         "extra_json": json.dumps({"selection": sel})}
                    )  # fmt: skip
                    i += 1


def test_the_data_section_draws_the_keep_fraction_curves(tmp_path: Path) -> None:
    _store(tmp_path / "r.db")
    sec = data_section(_ctx(tmp_path / "r.db", tmp_path))
    assert sec is not None and sec.title == "Data"
    assert [f.name for f in sec.figures] == ["data-keep.png"]
    assert (tmp_path / "data-keep.png").stat().st_size > 10_000
    assert "within 1%" in sec.html and "random" in sec.html
    assert "overfit" not in sec.data and len(sec.data["keep"]["runs"]) == 12


def test_no_selections_and_no_overfit_study_leave_the_section_out(tmp_path: Path) -> None:
    Store(tmp_path / "e.db").close()
    assert data_section(_ctx(tmp_path / "e.db", tmp_path)) is None
