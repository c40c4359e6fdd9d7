import pytest

from scalelab.errors import ConfigError
from scalelab.study.studyfile import study_from_dict


def _study(corpus: str, cache, **extra):
    from tests.tasks.conftest import tiny_config

    cfg = tiny_config(corpus, cache)
    cfg["train"].pop("tokens")
    return {
        "study": {"name": "t", "params": [2e3, 8e3], "tokens": [8192], **extra},
        "model": {
            k: v for k, v in cfg["model"].items() if k not in ("n_layer", "d_model", "n_head")
        },
        "data": cfg["data"],
        "train": cfg["train"],
    }


def test_study_tasks_are_scored_as_runs_finish(code_corpus, tmp_path):
    from scalelab.study import sweep
    from scalelab.tasks import load_task_results

    spec = _study(code_corpus, tmp_path / "cache", tasks=["cloze", "code-brackets"])
    db = tmp_path / "s.db"
    sweep(spec, db=db, out=tmp_path / "runs", progress=False)
    res = load_task_results(db)
    assert len(res) == 4 and set(res["task"]) == {"cloze", "code-brackets"}
    # a second sweep finds everything done and keeps the rows
    sweep(spec, db=db, out=tmp_path / "runs", progress=False)
    assert len(load_task_results(db)) == 4


def test_study_task_keys_are_validated(code_corpus, tmp_path):
    with pytest.raises(ConfigError, match="unknown task"):
        study_from_dict(_study(code_corpus, tmp_path, tasks=["clozee"]))
    with pytest.raises(ConfigError, match="needs a task"):
        study_from_dict(_study(code_corpus, tmp_path, intrinsic={"dims": [10]}))
    with pytest.raises(ConfigError, match=r"study\.intrinsic\.dimz"):
        study_from_dict(_study(code_corpus, tmp_path, intrinsic={"task": "syntax", "dimz": 1}))
    ok = study_from_dict(_study(code_corpus, tmp_path, intrinsic={"task": "syntax"}))
    assert ok.after == {"intrinsic": {"task": "syntax"}}
