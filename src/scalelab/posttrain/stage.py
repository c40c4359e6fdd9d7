"""A post-training stage as a run directory derived from its parent, and the loop they share.

A stage's directory lies beside its parent's, named ``pt-<method>-`` + a hash of (method,
parent run id, task, reward run id, the settings that differ from the defaults, the pair
file's content). It holds ``config.json`` (``kind = "posttrain"``, the parent's id and
directory, the root pretraining run's config under ``run_config``), ``metrics.jsonl``,
``checkpoint/`` (the trainer's atomic checkpoints: weights, optimizer, RNG, the loop's state)
and, once finished, ``summary.json``. The final weights are the newest checkpoint's.

Resuming repeats nothing and changes nothing: every random draw of step ``s`` comes from a
generator seeded by (seed, s), the optimizer's state is in the checkpoint, and the metrics
logged after the checkpoint are dropped, so a stage killed at any moment (``kill -9``)
resumes to the losses an uninterrupted one logs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab import rundir
from scalelab.config import RunConfig, run_config_from_dict
from scalelab.errors import ConfigError, StoreError
from scalelab.posttrain.config import PosttrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer


@dataclass
class Parent:
    """A finished run a stage starts from: a pretraining run or another stage."""

    run_dir: Path
    run_id: str
    run_cfg: RunConfig  # the root pretraining run's config (model shape, tokenizer)
    kind: str  # "run" (pretraining) or "posttrain"
    method: str | None  # the parent stage's method, if a stage
    meta: dict[str, Any]  # the parent stage's config.json ({} for a pretraining run)

    @property
    def is_reward_model(self) -> bool:
        return self.method == "reward"


def open_parent(run: str | Path, what: str = "RUN") -> Parent:
    """The finished run at ``run``, or a ``ScalelabError`` saying what it lacks."""
    run_dir = Path(run)
    cfg_path = run_dir / rundir.CONFIG
    if not cfg_path.is_file():
        raise StoreError(
            f"{what} {str(run_dir)!r} is not a run directory (no {rundir.CONFIG}); give a "
            "trained run (runs/<run id>) or a post-training stage (runs/pt-...)"
        )
    meta = rundir.read_json(cfg_path)
    summary_path = run_dir / rundir.SUMMARY
    summary = rundir.read_json(summary_path) if summary_path.is_file() else {}
    if meta.get("kind") == "posttrain":
        if summary.get("status") != "finished":
            raise StoreError(
                f"{what} {str(run_dir)!r} is a {meta.get('method')} stage that has not "
                "finished: run it to the end first (the same command resumes it)"
            )
        return Parent(
            run_dir,
            meta["run_id"],
            run_config_from_dict(meta["run_config"]),
            "posttrain",
            meta["method"],
            meta,
        )
    if summary.get("status") not in ("finished", "stopped_early"):
        state = summary.get("status", "not finished (no summary.json)")
        raise StoreError(
            f"{what} {str(run_dir)!r} is {state}: post-training starts from a finished run; "
            "train it to the end first (scalelab train CONFIG --resume)"
        )
    cfg = run_config_from_dict(meta)
    if not cfg.model.causal:
        raise ConfigError(
            f"{what} {str(run_dir)!r} is a bidirectional model (model.causal = false); "
            "post-training samples completions and needs a causal model"
        )
    return Parent(run_dir, run_dir.name, cfg, "run", None, {})


def build_lm(parent: Parent) -> nn.Module:
    """The parent's language model with its final weights (a reward model's body included)."""
    import torch

    from scalelab.models import build_model
    from scalelab.train.checkpoint import latest_checkpoint

    torch.manual_seed(parent.run_cfg.train.seed)
    model = build_model(parent.run_cfg.model)
    if parent.is_reward_model:
        from scalelab.posttrain.rewardmodel import RewardModel

        rm = RewardModel(model)
        _restore(rm, parent)
        return rm
    ckpt = latest_checkpoint(parent.run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        raise StoreError(f"{parent.run_dir} has no intact checkpoint to start from")
    if parent.kind == "run":
        ckpt.restore(model)
    else:
        _restore(model, parent)
    return model


def _restore(model: nn.Module, parent: Parent) -> None:
    from scalelab.train.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(parent.run_dir / rundir.CHECKPOINTS)
    if ckpt is None:
        raise StoreError(f"{parent.run_dir} has no intact checkpoint")
    ckpt.restore(model)


def tokenizer_of(parent: Parent) -> Tokenizer:
    from scalelab.tasks.runs import run_tokenizer

    cfg = parent.run_cfg
    if cfg.data.tokenizer != "bytes" or cfg.data.corpus.split(":", 1)[0] == "markov":
        raise ConfigError(
            f"the run reads data.corpus = {cfg.data.corpus!r} with data.tokenizer = "
            f"{cfg.data.tokenizer!r}; the verifiable tasks are written as characters and need "
            "data.tokenizer = 'bytes' (pretrain on `scalelab posttrain corpus` output)"
        )
    return run_tokenizer(cfg)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def stage_id(
    method: str,
    parent: str,
    task: str,
    reward: str | None,
    cfg: PosttrainConfig,
    key: dict[str, Any] | None = None,
) -> str:
    changed = cfg.changed()
    if changed.get("pairs_file"):  # the pairs' content names the stage, wherever the file is
        changed["pairs_file"] = "sha256:" + file_digest(changed["pairs_file"])
    blob = json.dumps(
        {
            "method": method,
            "parent": parent,
            "task": task,
            "reward": reward,
            "cfg": changed,
            **(key or {}),
        },
        sort_keys=True,
    )
    return f"pt-{method}-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class Stage:
    """One stage being run: where, from what, with what."""

    method: str
    parent: Parent
    task: str
    reward: str | None  # "grader", a reward-model run id, or None
    cfg: PosttrainConfig
    run_dir: Path
    run_id: str
    extra: dict[str, Any] = field(default_factory=dict)  # the method's own config.json keys

    @property
    def finished(self) -> bool:
        return (self.run_dir / rundir.SUMMARY).is_file()

    def summary(self) -> dict[str, Any]:
        return dict(rundir.read_json(self.run_dir / rundir.SUMMARY))

    def write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_json(
            self.run_dir / rundir.CONFIG,
            {
                "run_id": self.run_id,
                "kind": "posttrain",
                "method": self.method,
                "parent_run_id": self.parent.run_id,
                "parent_dir": str(self.parent.run_dir.resolve()),
                "task": self.task,
                "reward": self.reward,
                "posttrain": dataclasses.asdict(self.cfg),
                "run_config": self.parent.run_cfg.to_dict(),
                **self.extra,
            },
        )


def make_stage(
    method: str,
    parent: Parent,
    task: str,
    reward: str | None,
    cfg: PosttrainConfig,
    out: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    key: dict[str, Any] | None = None,
) -> Stage:
    """The stage (not yet written); ``key`` adds what else names it (best-of-n's n)."""
    run_id = stage_id(method, parent.run_id, task, reward, cfg, key)
    run_dir = Path(out) if out is not None else parent.run_dir.parent / run_id
    return Stage(method, parent, task, reward, cfg, run_dir, run_id, dict(extra or {}))


def step_generator(seed: int, step: int, salt: int = 0) -> torch.Generator:
    """The generator of step ``step``'s random draws (a function of the seed and step)."""
    import torch

    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + salt)


StepFn = Callable[[int], dict[str, float]]


def run_loop(
    stage: Stage,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    step_fn: StepFn,
    *,
    evaluate: Callable[[int], dict[str, Any]] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``step_fn(step)`` for the stage's steps, resuming from its newest checkpoint.

    ``step_fn`` returns the step's metrics; its ``flops`` and ``tokens`` are summed into the
    state. ``evaluate(step)`` runs every ``eval_every`` steps and at the end; its row is
    logged and kept in ``state["evals"]``. The final state (step, seconds, flops, tokens,
    evals, the last metrics) is returned."""
    from scalelab.train.checkpoint import latest_checkpoint, remove_temporaries, save_checkpoint

    cfg = stage.cfg
    ckpts = stage.run_dir / rundir.CHECKPOINTS
    remove_temporaries(ckpts)
    metrics = rundir.MetricsLog(stage.run_dir / rundir.METRICS)
    state: dict[str, Any] = {"step": 0, "seconds": 0.0, "flops": 0.0, "tokens": 0, "evals": []}
    ckpt = latest_checkpoint(ckpts)
    if ckpt is not None:
        ckpt.restore(model, optimizer)
        state.update(ckpt.state)
    metrics.truncate_after(int(state["step"]))
    t0 = time.perf_counter() - float(state["seconds"])
    if state["step"] == 0 and evaluate is not None:
        state["evals"].append({"step": 0, **evaluate(0)})
        metrics.append(state["evals"][-1])
    last: dict[str, float] = {}
    while state["step"] < cfg.steps:
        step = int(state["step"])
        model.train()
        last = step_fn(step)
        state["flops"] += float(last.get("flops", 0.0))
        state["tokens"] += int(last.get("tokens", 0))
        state["step"] = step + 1
        metrics.append({"step": step + 1, **last})
        done = state["step"] == cfg.steps
        if evaluate is not None and (state["step"] % cfg.eval_every == 0 or done):
            model.eval()
            row = {"step": state["step"], **evaluate(state["step"])}
            state["evals"].append(row)
            metrics.append(row)
            if log:
                log(", ".join(f"{k} {v:.4g}" for k, v in row.items() if isinstance(v, float)))
        if state["step"] % cfg.checkpoint_every == 0 or done:
            state["seconds"] = time.perf_counter() - t0
            save_checkpoint(ckpts, int(state["step"]), model, optimizer, state, keep=1)
    state["seconds"] = time.perf_counter() - t0
    state["last"] = last
    return state


def adamw(model: nn.Module, cfg: PosttrainConfig) -> torch.optim.Optimizer:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def finish(stage: Stage, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``summary.json`` (the stage is then finished) and return it."""
    out = {
        "run_id": stage.run_id,
        "run_dir": str(stage.run_dir),
        "method": stage.method,
        "parent_run_id": stage.parent.run_id,
        "task": stage.task,
        "reward": stage.reward,
        "status": "finished",
        **summary,
    }
    rundir.write_json(stage.run_dir / rundir.SUMMARY, out)
    return out
