"""The keep-fraction analysis on a store with known losses: distance to full, effective data,
smallest keep within a tolerance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scalelab.results.store import Store
from scalelab.select.analysis import KeepAnalysis, keep_analysis

# a Chinchilla law the plain runs follow exactly
E, A, B, ALPHA, BETA = 1.0, 40.0, 300.0, 0.4, 0.35


def _loss(n: float, d: float) -> float:
    return E + A / n**ALPHA + B / d**BETA


def _row(run_id: str, n: int, d: int, loss: float, seed: int, **extra: object) -> dict:
    return {
        "study": str(extra.pop("study", "keep-fraction")),
        "run_id": run_id,
        "N_non_embedding": n,
        "N_total": n,
        "N_active": n,
        "D": d,
        "loss": loss,
        "train_loss": loss - 0.1,
        "seed": seed,
        "status": "finished",
        "epochs": 1.0,
        **extra,
    }


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> KeepAnalysis:
    db = tmp_path_factory.mktemp("keep") / "r.db"
    rng = np.random.default_rng(0)
    with Store(db) as s:
        i = 0
        for n in (1e4, 3e4, 1e5):
            for d in (2e5, 5e5, 1e6):
                for seed in (0, 1):
                    loss = _loss(n, d) * (1 + rng.normal(0, 1e-4))
                    s.put_point(_row(f"p{i}", int(n), int(d), loss, seed))
                    i += 1
            for keep, worse in ((0.1, 0.10), (0.3, 0.03), (0.6, 0.004)):
                for seed in (0, 1):
                    full = _loss(n, 1e6)
                    sel = {"method": "random", "keep": keep, "kept_fraction": keep}
                    s.put_point(
                        _row(
                            f"s{i}",
                            int(n),
                            int(1e6),
                            full * (1 + worse),
                            seed,
                            kind="select",
                            technique="random",
                            extra_json=json.dumps({"selection": sel}),
                        )
                    )
                    i += 1
    return keep_analysis(db, bootstrap=0)


def test_distance_to_full_and_smallest_keep(analysis: KeepAnalysis) -> None:
    a = analysis
    t = a.table[a.table["method"] == "random"]
    assert np.allclose(
        t.sort_values(["N", "keep"])["rel"].to_numpy()[:3], [0.1, 0.03, 0.004], atol=1e-3
    )
    sm = a.smallest.set_index("N")
    assert (sm["within_1%"] == 0.6).all() and (sm["within_5%"] == 0.3).all()


def test_effective_data_is_read_off_the_plain_law(analysis: KeepAnalysis) -> None:
    a = analysis
    assert a.law is not None and a.law_error is None
    sel = a.runs[a.runs["method"] == "random"].copy()
    # the exact inversion of the known law: D_eff = (B / (L - E - A / N^alpha))^(1 / beta)
    want = (B / (sel["loss"] - E - A / sel["N"] ** ALPHA)) ** (1 / BETA) / sel["D"]
    assert np.allclose(sel["d_mult"], want, rtol=0.15)
    assert (sel.loc[sel["keep"] == 0.1, "d_mult"] < 1).all()
    best = a.best_at(0.3)
    assert best is not None and best["method"] == "random" and len(best["per_size"]) == 3
