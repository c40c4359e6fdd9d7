"""The plug-in protocol (scalelab.plugin): run ids survive the move of the techniques'
sections out of config.py, unknown sections fail by name, and a new technique is one
module (this file's ``ZLoss``) and one registration."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scalelab.config import RunConfig, load_run_config, run_config_from_dict
from scalelab.errors import ConfigError, ScalelabError
from scalelab.plugin import (
    Plugin,
    RunContext,
    TrainHook,
    get_plugin,
    plugins,
    register_plugin,
    run_needs,
    unregister_plugin,
)

# --- run ids: computed on main before the sections left config.py ------------------------

PINNED = {
    "plain": ([], "a1cada08057c"),
    "small": (
        [
            "model.n_layer=2",
            "model.d_model=64",
            "model.n_head=2",
            'data.tokenizer="bytes"',
            "model.vocab_size=258",
            "train.tokens=3000000",
        ],
        "b1c3e95d8589",
    ),
    "distill": (
        ['distill.teacher="runs/abc"', "distill.alpha=0.5", "distill.temperature=2.0"],
        "c9c788c55541",
    ),
    "distill-init": (['distill.teacher="t.toml"', "distill.init_every=2"], "9d431ce2b05b"),
    "distill-off": (['distill.teacher="runs/abc"', "distill.alpha=0.0"], "a1cada08057c"),
    "canaries": (["data.canaries={count=2, length=8, prefix=8, repeats=[1, 4]}"], "5536e2f72812"),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_run_ids_are_those_of_main(case: str) -> None:
    overrides, run_id = PINNED[case]
    assert load_run_config(None, overrides).run_id() == run_id


def test_a_selection_run_keeps_its_id(tmp_path: Path) -> None:
    sel = tmp_path / "sel.json"  # the id hashes the content, not the path
    sel.write_text(json.dumps({"method": "random", "keep": [1, 2, 3], "seconds": 1.5}))
    assert load_run_config(None, [f'data.select="{sel}"']).run_id() == "844245019887"


def test_config_json_keeps_its_shape() -> None:
    """config.json names the plug-ins' sections as before: [distill] as a table of
    defaults, data.canaries as null; read back, it is the same config."""
    cfg = load_run_config(None, [])
    d = cfg.to_dict()
    assert list(d) == ["model", "data", "train", "distill"]
    assert d["distill"]["teacher"] is None and d["distill"]["alpha"] == 0.0
    assert "canaries" in d["data"] and d["data"]["canaries"] is None
    assert run_config_from_dict(d) == cfg
    on = load_run_config(None, ["data.canaries={count=2}", 'distill.teacher="x"'])
    assert on.to_dict()["data"]["canaries"]["count"] == 2
    assert run_config_from_dict(on.to_dict()) == on
    assert on.distill.teacher == "x" and on.section("data.canaries").count == 2


def test_a_section_set_to_its_default_is_the_plain_config() -> None:
    plain = load_run_config(None, [])
    assert load_run_config(None, ["distill.alpha=0.0"]) == plain
    assert plain.with_section("distill", None) == plain


def test_an_unknown_section_names_what_to_register() -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[zloss\].*plug-in is registered"):
        load_run_config(None, ["zloss.weight=0.1"])
    with pytest.raises(ConfigError, match="register_plugin"):
        RunConfig(sections={"zloss": {"weight": 0.1}})


def test_the_built_in_plugins_are_registered_in_order() -> None:
    names = [p.name for p in plugins()]
    assert names[:3] == ["compress", "distill", "select"]
    assert {"tasks", "intrinsic", "tune", "memorization"} <= set(names)
    assert get_plugin("distill").section == "distill"
    with pytest.raises(ConfigError, match="did you mean 'distill'"):
        get_plugin("distil")


def test_a_distilled_run_needs_its_teacher_toml(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher.toml"
    teacher.write_text("[model]\nn_layer = 1\n")
    student = load_run_config(None, [f'distill.teacher="{teacher}"', "distill.alpha=0.5"])
    assert [c.model.n_layer for c in run_needs(student)] == [1]
    assert run_needs(load_run_config(None, [])) == []


# --- a new technique: one module (this class) and one registration ---------------------------


@dataclass(frozen=True)
class ZLossConfig:
    weight: float = 0.0
    keep: float = 1.0  # share of the training tokens the run sees (the data hook)


class _ZHook(TrainHook):
    """z-loss (Chowdhery et al. 2022, PaLM sec. 5): weight x mean(log Z)^2 added to the loss."""

    def __init__(self, weight: float) -> None:
        self.weight, self.calls = weight, 0

    def loss(self, lm: Any, logits: Any, x: Any, y: Any, denom: Any) -> Any:
        self.calls += 1
        log_z = logits.float().logsumexp(-1)
        return lm + self.weight * log_z.pow(2).mean()

    def summary(self, tokens: int, flops_total: float) -> dict[str, Any]:
        return {"weight": self.weight, "calls": self.calls}


class ZLoss(Plugin):
    name = "zloss"
    section = "zloss"
    config = ZLossConfig
    summary_key = "zloss"
    study_keys = ("zloss_point",)
    point_kinds = ("zloss",)

    def active(self, cfg: RunConfig) -> bool:
        v = self.value(cfg)
        return v is not None and (v.weight > 0 or v.keep < 1)

    def data(self, cfg: RunConfig, data: Any) -> Any:
        return data.fraction_of_train(self.value(cfg).keep)

    def train_hook(self, run: RunContext) -> TrainHook:
        return _ZHook(self.value(run.cfg).weight)

    def after_run(
        self,
        run_dir: Path,
        cfg: RunConfig | None,
        summary: Mapping[str, Any] | None,
        *,
        settings: Mapping[str, Any],
        db: str | Path | None = None,
    ) -> None:
        from scalelab.memorization.points import put_technique_point  # a point-writing helper

        assert db is not None and cfg is not None and summary is not None
        piece = {**summary["zloss"], "keep": self.value(cfg).keep}
        put_technique_point(db, run_dir, kind="zloss", technique="z", extra=piece)


@pytest.fixture
def zloss() -> Iterator[Plugin]:
    plugin = register_plugin(ZLoss())  # the one registration
    yield plugin
    unregister_plugin("zloss")


TINY = {
    "model": {"n_layer": 1, "d_model": 32, "n_head": 2, "vocab_size": 32, "context": 32},
    "data": {"corpus": "markov:order=1,vocab=16,seed=0,tokens=40000"},
    "train": {
        "batch_size": 8,
        "tokens": 2560,
        "eval_every": 10,
        "eval_batches": 2,
        "lr": 1e-2,
        "precision": "fp32",
    },
}


def test_a_new_technique_changes_training_and_runs_after_the_run(
    zloss: Plugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scalelab.study import load_points, sweep
    from scalelab.train import train

    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    plain_cfg = run_config_from_dict(TINY)
    cfg = run_config_from_dict({**TINY, "zloss": {"weight": 0.5, "keep": 0.5}})
    assert cfg.run_id() != plain_cfg.run_id()
    off = run_config_from_dict({**TINY, "zloss": {}})  # inactive: the plain run's id
    assert off.run_id() == plain_cfg.run_id() and not zloss.active(off)
    assert "zloss" in cfg.to_dict() and cfg.zloss.weight == 0.5

    plain = train(plain_cfg, tmp_path / "runs", progress=False)
    z = train(cfg, tmp_path / "runs", progress=False)
    assert z.zloss == {"weight": 0.5, "calls": 10}  # one call per micro-batch of 10 steps
    assert plain.zloss is None
    assert z.unique_tokens < plain.unique_tokens  # the data hook cut the training split
    assert z.train_loss != plain.train_loss  # the loss term changed training

    study = {"study": {"name": "z", "zloss_point": True}, **TINY, "zloss": {"weight": 0.5}}
    res = sweep(study, db=tmp_path / "r.db", out=tmp_path / "runs", workers=1, progress=False)
    assert [r.action for r in res.runs] == ["trained"]
    pts = load_points(tmp_path / "r.db", kind="zloss", config=True)
    assert len(pts) == 1 and pts["technique"].iloc[0] == "z" and pts["study"].iloc[0] == "z"
    with sqlite3.connect(tmp_path / "r.db") as con:
        (extra,) = con.execute("SELECT extra_json FROM points WHERE kind = 'zloss'").fetchone()
    assert json.loads(extra) == {"weight": 0.5, "calls": 10, "keep": 1.0}


def test_a_study_key_no_plugin_owns_is_an_error() -> None:
    from scalelab.study.studyfile import study_from_dict

    with pytest.raises(ScalelabError, match=r"study\.zloss_point"):
        study_from_dict({"study": {"name": "z", "zloss_point": True}, **TINY})


def test_spawned_workers_run_the_plugins_of_the_process_that_started_them(
    zloss: Plugin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ZLoss`` is no built-in: each of the two workers registers it from the parent's
    ``plugin_refs()`` ("test_plugin:ZLoss"), so its section parses, its loss and data hooks
    train and its after-run point is written there (without it a worker fails the run on
    the unknown [zloss] section)."""
    from scalelab.plugin import plugin_refs
    from scalelab.study import load_points, sweep

    assert plugin_refs()[-1] == f"{__name__}:ZLoss"
    monkeypatch.setenv("SCALELAB_CACHE", str(tmp_path / "cache"))
    study = {
        "study": {"name": "z", "zloss_point": True, "seeds": [0, 1]},
        **TINY,
        "zloss": {"weight": 0.5, "keep": 0.5},
    }
    res = sweep(study, db=tmp_path / "r.db", out=tmp_path / "runs", workers=2, progress=False)
    assert [r.status for r in res.runs] == ["finished", "finished"], [r.reason for r in res.runs]
    pts = load_points(tmp_path / "r.db", kind="zloss")
    assert sorted(pts["technique"]) == ["z", "z"]
    for r in res.runs:
        summary = json.loads((tmp_path / "runs" / r.run_id / "summary.json").read_text())
        assert summary["zloss"] == {"weight": 0.5, "calls": 10}


def test_a_plugin_class_defined_in_a_function_is_refused_before_a_sweep_with_workers(
    tmp_path: Path,
) -> None:
    from scalelab.study import sweep

    class Local(Plugin):
        name = "local"

    register_plugin(Local())
    try:
        with pytest.raises(ConfigError, match="defined inside a function"):
            sweep({"study": {"name": "l"}, **TINY}, db=tmp_path / "r.db", workers=2)
        assert not (tmp_path / "r.db").exists()  # refused before anything was written
    finally:
        unregister_plugin("local")
