import numpy as np

from scalelab.tasks.analysis import gadre_fit, leaves_chance


def test_gadre_fit_recovers_a_known_exponential():
    loss = np.linspace(2.0, 4.0, 8)
    err = 0.75 - 2.0 * np.exp(-1.5 * loss) * np.exp(3.0)  # eps 0.75, k 2 e^3, gamma 1.5
    fit = gadre_fit(loss, err)
    assert abs(fit["eps"] - 0.75) < 1e-3 and abs(fit["gamma"] - 1.5) < 1e-2
    assert fit["rms"] < 1e-6


def test_gadre_fit_needs_distinct_losses():
    assert "fit_error" in gadre_fit(np.array([2.0, 2.0, 2.1]), np.array([0.5, 0.5, 0.4]))


def test_leaves_chance_is_the_first_interval_above_chance():
    import pandas as pd

    g = pd.DataFrame({"N": [1e4, 2e4, 4e4], "lo": [0.2, 0.26, 0.3], "chance": [0.25, 0.25, 0.25]})
    assert leaves_chance(g) == 2e4
    assert leaves_chance(g.assign(lo=0.1)) is None


def test_results_table_rebuilds_from_run_directories(tmp_path):
    from scalelab.tasks.results import load_task_results, rebuild_task_results, write_run_results

    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    row = {"run_id": "abc", "task": "cloze", "method": "zero-shot", "accuracy": 0.3, "n": 10}
    write_run_results(run, [row])
    assert rebuild_task_results(tmp_path / "r.db", tmp_path / "runs") == 1
    df = load_task_results(tmp_path / "r.db")
    assert df.loc[0, "accuracy"] == 0.3 and df.loc[0, "task"] == "cloze"
