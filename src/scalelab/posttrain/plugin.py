"""Post-training as a plug-in (:mod:`scalelab.plugin`): its section, study key, points, CLI.

* the ``posttrain`` settings (:class:`~scalelab.posttrain.config.PosttrainConfig`) are a
  stage's, not a run's: ``--set posttrain.KEY=VALUE`` on the command line, the tables below
  in a study. A pretraining run's config (and id) is untouched by post-training, so the
  plug-in owns no run-config section.
* ``[study] posttrain = {...}``: the stages a sweep runs on every finished run of a ladder,
  in order, so a ladder is post-trained per size::

      [study]
      posttrain = { task = "dyck", stages = ["eval", "sft", "dpo", "rl"],
                    sft = { steps = 150 }, rl = { steps = 60, kl_coef = 0.0 } }

  ``eval`` and ``sft`` start from the run; ``pairs``, ``reward``, ``dpo`` and ``rl`` from
  the SFT stage when the list has one (the reference of DPO and RL), else from the run.
  ``reward_run`` (default ``"grader"``) is the gold of the pairs and the reward of RL: the
  grader or a reward-model stage directory. ``set`` holds settings for every stage, each
  method's table those of its stage.
* points of kind ``posttrain`` (:mod:`scalelab.posttrain.points`); commands ``posttrain``,
  ``bon`` and ``demos`` (:mod:`scalelab.cli.posttrain`).

Torch-free: the stages are imported when a run is post-trained.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab.errors import ConfigError, ScalelabError, did_you_mean
from scalelab.plugin import Plugin
from scalelab.posttrain.config import posttrain_config
from scalelab.posttrain.tasks import get_verifiable

if TYPE_CHECKING:
    from scalelab.config import RunConfig

STAGES = ("eval", "sft", "pairs", "reward", "dpo", "rl")
PIPELINE_KEYS = ("task", "stages", "reward_run", "set", *STAGES)


def check_pipeline(value: Any) -> dict[str, Any]:
    """Validate a ``study.posttrain`` table before anything runs."""
    if not isinstance(value, dict):
        raise ConfigError(
            'study.posttrain is a table, e.g. {task = "dyck", stages = ["sft", "dpo", "rl"]}'
        )
    for key in value:
        if key not in PIPELINE_KEYS:
            raise ConfigError(
                f"unknown key study.posttrain.{key}{did_you_mean(key, PIPELINE_KEYS)}; "
                f"keys: {', '.join(PIPELINE_KEYS)}"
            )
    if "task" not in value:
        raise ConfigError('study.posttrain needs a task, e.g. task = "dyck"')
    get_verifiable(value["task"])
    stages = value.get("stages", ["eval", "sft"])
    if not isinstance(stages, list) or not stages or not all(s in STAGES for s in stages):
        raise ConfigError(
            f"study.posttrain.stages is a list of {', '.join(STAGES)}, got {stages!r}"
        )
    reward = value.get("reward_run", "grader")
    if not isinstance(reward, str):
        raise ConfigError(f"study.posttrain.reward_run is 'grader' or a directory, got {reward!r}")
    if reward != "grader" and any(s in ("pairs", "reward", "dpo", "rl") for s in stages):
        from scalelab.posttrain.api import resolve_reward

        try:  # a reward model that is missing or damaged: before the sweep trains anything
            resolve_reward(reward, "rl")
        except ScalelabError as e:
            raise ConfigError(f"study.posttrain.reward_run: {e}") from None
    for method in ("set", *STAGES):
        table = value.get(method, {})
        if not isinstance(table, dict):
            raise ConfigError(f"study.posttrain.{method} is a table of posttrain keys")
        posttrain_config(**{**value.get("set", {}), **table})  # as --set posttrain.K=V is
    return dict(value)


def run_pipeline(
    run_dir: Path, pipeline: Mapping[str, Any], db: str | Path | None
) -> list[dict[str, Any]]:
    """The stages of ``pipeline`` on the finished run ``run_dir`` (finished ones reused)."""
    from scalelab.posttrain.api import posttrain

    base = posttrain_config(**pipeline.get("set", {}))
    task, stages = pipeline["task"], pipeline.get("stages", ["eval", "sft"])
    reward = pipeline.get("reward_run", "grader")
    out = []
    policy: Path = run_dir
    for method in stages:
        cfg = dataclasses.replace(base, **pipeline.get(method, {}))
        parent = run_dir if method in ("eval", "sft") else policy
        s = posttrain(
            parent,
            method,
            task,
            cfg,
            reward=None if method in ("eval", "sft") else reward,
            db=db,
        )
        if method == "sft":
            policy = Path(s["run_dir"])
        out.append(s)
    return out


class PosttrainPlugin(Plugin):
    """``study.posttrain``: the stages of every finished run of a sweep; posttrain points."""

    name = "posttrain"
    study_keys = ("posttrain",)
    point_kinds = ("posttrain",)
    cli = "scalelab.cli.posttrain"
    # the "Post-training" section in a store that also holds the ladder's runs (a sweep with
    # study.posttrain); a store of posttrain points alone gets it without runs (WITHOUT_RUNS)
    report = "scalelab.reporting.posttrain_section:posttrain_section"

    def parse_study(self, key: str, value: Any) -> dict[str, Any]:
        return check_pipeline(value)

    def check_study(self, settings: Mapping[str, Any], configs: Sequence[RunConfig]) -> None:
        """Every run of the grid can be post-trained (a causal model reading bytes: the
        tasks are characters), else the pipeline would be skipped on each after training."""
        from types import SimpleNamespace

        from scalelab.posttrain.stage import tokenizer_of

        for cfg in configs:
            try:
                tokenizer_of(SimpleNamespace(cfg=cfg))  # type: ignore[arg-type]  # reads .cfg only
                if not cfg.model.causal:
                    raise ConfigError("post-training samples completions: it needs a causal model")
            except ConfigError as e:
                raise ConfigError(f"study.posttrain cannot post-train these runs: {e}") from None

    def after_run(
        self,
        run_dir: Path,
        cfg: RunConfig | None,
        summary: Mapping[str, Any] | None,
        *,
        settings: Mapping[str, Any],
        db: str | Path | None = None,
    ) -> None:
        try:
            run_pipeline(run_dir, settings["posttrain"], db)
        except ScalelabError as e:  # a run that cannot be post-trained is not a failed run
            warnings.warn(f"{run_dir.name}: post-training skipped: {e}", stacklevel=2)
