import pytest

from scalelab.errors import ConfigError
from scalelab.tasks import TASKS, get_task, tasks_table


def test_every_task_states_kind_metric_and_chance():
    table = tasks_table()
    assert set(table.columns) >= {"name", "kind", "metric", "chance", "needs"}
    assert set(table["kind"]) == {"zero-shot", "fine-tune", "generative"}
    for task in TASKS.values():
        assert 0.0 <= task.chance < 1.0
        if task.kind == "zero-shot":
            assert task.n_choices and task.chance == pytest.approx(1 / task.n_choices)
        else:
            assert task.output in ("class", "tokens")
            if task.output == "class":
                assert task.chance == pytest.approx(1 / task.n_classes)


def test_the_issue_tasks_are_registered():
    assert {"code-next-line", "code-brackets", "code-indent", "cloze"} <= set(TASKS)
    assert {"syntax", "stdlib-package", "copy", "add"} <= set(TASKS)


def test_unknown_task_names_the_nearest():
    with pytest.raises(ConfigError, match="did you mean 'cloze'"):
        get_task("cloz")
