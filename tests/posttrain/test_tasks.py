"""The verifiable tasks: right answers, graders, splits that never overlap, registration."""

from __future__ import annotations

import json

import pytest

from scalelab.errors import ConfigError
from scalelab.posttrain.tasks import (
    VERIFIABLE,
    get_verifiable,
    partial_credit,
    prompts,
    split_of,
    write_corpus,
)


def test_answers_are_right() -> None:
    assert get_verifiable("add-rev").solve("42+75=") == "711"  # 117 reversed
    assert get_verifiable("add-rev").solve("02+03=") == "500"  # 5, padded to 005, reversed
    assert get_verifiable("sort").solve("sort:53819=") == "13589"
    assert get_verifiable("dyck").solve("([[()[]]=") == "])"  # '(' and '[' still open


@pytest.mark.parametrize("task", list(VERIFIABLE))
def test_generated_prompts_are_well_formed(task: str) -> None:
    t = get_verifiable(task)
    for prompt, answer in prompts(task, "train", 200, seed=3):
        assert len(prompt) == t.prompt_len
        assert 1 <= len(answer) <= t.max_answer
        assert t.score(prompt, answer) == 1.0


def test_dyck_prompts_are_prefixes_of_dyck_words() -> None:
    for prompt, answer in prompts("dyck", "train", 300):
        depth = 0
        for c in prompt[:-1] + answer:
            depth += 1 if c in "([" else -1
            assert depth >= 0
        assert depth == 0 and answer  # the answer closes every bracket, and there is one


def test_grader_partial_credit() -> None:
    t = get_verifiable("sort")
    assert t.score("sort:53819=", "13589") == 1.0
    assert t.score("sort:53819=", "13580") == pytest.approx(4 / 5)
    assert t.score("sort:53819=", "135") == pytest.approx(3 / 5)  # too short costs
    assert t.score("sort:53819=", "1358900") == pytest.approx(5 / 7)  # too long costs
    assert t.score("sort:53819=", "") == 0.0
    assert partial_credit("ab", "ba") == 0.0


@pytest.mark.parametrize("task", list(VERIFIABLE))
def test_train_and_validation_never_overlap(task: str) -> None:
    train = {p for s in range(3) for p, _ in prompts(task, "train", 500, seed=s)}
    val = {p for s in range(3) for p, _ in prompts(task, "val", 200, seed=s)}
    assert train and val and not train & val
    assert all(split_of(p) == "val" for p in val)


def test_prompts_follow_the_seed() -> None:
    assert prompts("sort", "train", 20, seed=1) == prompts("sort", "train", 20, seed=1)
    assert prompts("sort", "train", 20, seed=1) != prompts("sort", "train", 20, seed=2)


def test_corpus_holds_training_demonstrations(tmp_path) -> None:
    path = write_corpus("add-rev", tmp_path / "c.jsonl", 50)
    docs = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    assert len(docs) == 50
    t = get_verifiable("add-rev")
    for d in docs:
        prompt, completion = d[: t.prompt_len], d[t.prompt_len :]
        assert split_of(prompt) == "train" and t.score(prompt, completion) == 1.0


def test_registered_beside_the_other_tasks() -> None:
    from scalelab.tasks import get_task, tasks_table

    assert get_task("add-rev").kind == "generative"
    table = tasks_table()
    assert set(VERIFIABLE) <= set(table[table["kind"] == "generative"]["name"])


def test_a_task_without_a_grader_is_refused() -> None:
    with pytest.raises(ConfigError, match="fine-tune task, without a grader"):
        get_verifiable("add")
    with pytest.raises(ConfigError, match="did you mean 'sort'"):
        get_verifiable("sortt")
