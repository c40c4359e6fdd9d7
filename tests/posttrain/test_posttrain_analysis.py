"""The gain table's intervals and the trend of gain against N."""

from __future__ import annotations

import pandas as pd
import pytest

from scalelab.posttrain.analysis import diff_interval, gain_trend


def test_diff_interval_is_newcombes_square_and_add() -> None:
    d, lo, hi = diff_interval(0.70, 0.66, 0.74, 0.60, 0.55, 0.64)
    assert d == pytest.approx(0.10)
    assert lo == pytest.approx(0.10 - (0.04**2 + 0.04**2) ** 0.5)
    assert hi == pytest.approx(0.10 + (0.04**2 + 0.05**2) ** 0.5)


def _gains(values: list[float], half: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy_N": [1e4, 1e5, 1e6],
            "gain_over_sft": values,
            "gain_lo": [v - half for v in values],
            "gain_hi": [v + half for v in values],
        }
    )


def test_gain_trend_finds_a_falling_gain_and_not_a_noisy_one() -> None:
    sharp = gain_trend(_gains([0.3, 0.2, 0.1], 0.01))
    assert sharp["slope_per_decade"] == pytest.approx(-0.1)
    assert sharp["hi"] < 0  # the interval lies below 0: larger policies gain less
    noisy = gain_trend(_gains([0.3, 0.2, 0.1], 0.5))
    assert noisy["lo"] < 0 < noisy["hi"]  # the same points, too wide to tell
    with pytest.raises(ValueError, match="at least 3"):
        gain_trend(_gains([0.3, 0.2, 0.1], 0.01).iloc[:2])


def test_gain_figure_draws_one_line_per_named_series(tmp_path, monkeypatch) -> None:
    import matplotlib.pyplot as plt

    from scalelab.posttrain.analysis import gain_figure

    g = _gains([0.3, 0.2, 0.1], 0.05).assign(
        gold_gain=[0.03, 0.02, 0.01], gold_gain_lo=0.0, gold_gain_hi=0.05, task="sort"
    )
    g = pd.concat([g.assign(method="rl", series="sort RL"), g.assign(method="dpo", series="x")])
    drawn: list[str] = []
    real = plt.Axes.errorbar

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(kwargs["label"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "errorbar", spy)
    path = gain_figure(g, tmp_path / "gain.png")
    assert path.stat().st_size > 0
    assert sorted(drawn) == ["sort RL", "sort RL", "x", "x"]  # two panels, two series


def test_gain_table_keeps_rl_against_a_reward_model_apart(tmp_path) -> None:
    from scalelab.posttrain.analysis import gain_table
    from scalelab.posttrain.points import point, put_points

    acc = {"eval": 0.3, "sft": 0.5, "rl": 0.6, "rl-rm": 0.4}
    rows = []
    for name, a in acc.items():
        extra = {"run_id": name, "method": name.split("-")[0], "task": "sort", "policy_N": 1000,
                 "accuracy": a, "accuracy_lo": a - 0.05, "accuracy_hi": a + 0.05,
                 "gold_reward": a, "gold_reward_lo": a - 0.05, "gold_reward_hi": a + 0.05,
                 "kl": 0.1}  # fmt: skip
        if name == "rl-rm":
            extra.update(reward_run_id="pt-reward-x", reward_N=500)
        rows.append(point(extra, parent_run_id="sft", arch="transformer", run_dir=str(tmp_path)))
    db = tmp_path / "g.db"
    put_points(db, rows)
    by_grader = gain_table(db)
    assert list(by_grader["reward"]) == ["grader"]
    assert by_grader["gain_over_sft"].iloc[0] == pytest.approx(0.1)
    both = gain_table(db, reward_models=True).set_index("reward")
    assert set(both.index) == {"grader", "pt-reward-x"}
    assert both.loc["pt-reward-x", "gain_over_sft"] == pytest.approx(-0.1)
