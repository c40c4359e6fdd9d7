"""The report's law is chosen by extrapolation (issue 16): the selection table with the
chosen law marked, and the plans made with that law. A store of synthetic points (no
training): 6 sizes x 3 budgets drawn from a tied law."""

import numpy as np
import pytest

from scalelab.reporting import report
from scalelab.results.store import Store

TIED = {"E": 1.8, "A": 500.0, "B": 1500.0, "alpha": 0.33}


def tied_store(path, n_sizes=6, noise=0.002, seed=0):
    rng = np.random.default_rng(seed)
    with Store(path) as store:
        for i, n in enumerate(np.geomspace(1e7, 1e9, n_sizes)):
            for j, tpp in enumerate((10, 20, 40)):
                d = int(n * tpp)
                loss = TIED["E"] + TIED["A"] / n ** TIED["alpha"] + TIED["B"] / d ** TIED["alpha"]
                store.put_point(
                    {
                        "study": "ladder",
                        "run_id": f"r{i}-{j}",
                        "kind": "run",
                        "status": "finished",
                        "arch": "gpt2",
                        "corpus": "synthetic",
                        "tokenizer": "bytes",
                        "budget": f"{tpp}x",
                        "N_non_embedding": int(n),
                        "N_total": int(n) + 1000,
                        "D": d,
                        "loss": float(loss * np.exp(noise * rng.standard_normal())),
                        "wall_seconds": 1.0,
                    }
                )
                # a loss curve ending at the final loss (the compute sections read curves)
                steps = [
                    {
                        "run_id": f"r{i}-{j}",
                        "step": k,
                        "tokens": d * k // 4,
                        "val_loss": float(loss * (1 + 0.1 * (4 - k))),
                    }
                    for k in (1, 2, 3, 4)
                ]
                with store.transaction():
                    store._put_curves(f"r{i}-{j}", steps)
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("choice")
    res = report(tied_store(d / "runs.db"), d / "report", study="ladder", bootstrap=30)
    return res, res.path.read_text()


def test_the_report_chooses_the_law_and_marks_it(page):
    res, text = page
    assert res.law.form == "chinchilla-tied"
    titles = [s.title for s in res.sections]
    assert titles.index("Choosing the law") == titles.index("Fitted law") - 1
    part = text.split("<h2>Choosing the law</h2>", 1)[1].split("</section>", 1)[0]
    for form in ("chinchilla", "chinchilla-tied", "overtrain"):
        assert f"<td>{form}</td>" in part
    # one row is marked, the tied form's; two held-out sizes as columns
    assert part.count("<td>chosen</td>") == 1
    row = part.split("<td>chinchilla-tied</td>", 1)[1].split("</tr>", 1)[0]
    assert "<td>chosen</td>" in row
    assert part.count("error at N = ") == 2 and "90% interval held" in part
    fitted = text.split("<h2>Fitted law</h2>", 1)[1].split("</section>", 1)[0]
    assert "chinchilla-tied" in fitted and "whole model sizes resampled" in fitted


def test_plans_use_the_chosen_law(page):
    from scalelab.laws import plan

    res, _ = page
    plans = next(s for s in res.sections if s.title == "Plans").data["plans"]
    assert plans and all(p["law"] == "fitted chinchilla-tied" for p in plans)
    assert plans[0]["loss"] == pytest.approx(plan(res.law, plans[0]["compute"]).loss)


def test_too_few_sizes_fall_back_to_chinchilla_and_say_why(tmp_path):
    res = report(tied_store(tmp_path / "r.db", n_sizes=3), tmp_path / "out", bootstrap=0)
    assert res.law.form == "chinchilla"
    part = res.path.read_text().split("<h2>Choosing the law</h2>", 1)[1]
    assert "No choice by extrapolation" in part.split("</section>", 1)[0]
