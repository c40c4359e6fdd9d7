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
from scalelab.errors import ConfigError
from scalelab.posttrain.config import PosttrainConfig
from scalelab.runs import FinishedRun, open_run

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.data import Tokenizer


def open_policy(run: str | Path, what: str = "RUN") -> FinishedRun:
    """The finished run at ``run`` (a pretraining run, a stage or a run's export), opened by
    :func:`scalelab.runs.open_run` (whose ``RunError`` says what it lacks), and causal."""
    opened = open_run(run, what=what)
    if not opened.cfg.model.causal:
        raise ConfigError(
            f"{what} {str(run)!r} is a bidirectional model (model.causal = false); "
            "post-training samples completions and needs a causal model"
        )
    return opened


def stage_record(run: FinishedRun) -> dict[str, Any]:
    """A stage's own config.json (method, task, posttrain settings); {} for any other run."""
    meta = run.derived or {}
    return meta if meta.get("kind") == "posttrain" else {}


def is_reward_model(run: FinishedRun) -> bool:
    return stage_record(run).get("method") == "reward"


def build_lm(parent: FinishedRun) -> nn.Module:
    """The parent's language model with its final weights (a reward model's body included)."""
    import torch

    from scalelab.models import build_model

    if parent.checkpoint is None:  # a run's export: its weights, checked by open_run
        return parent.load_model(fork_rng=False).train()
    torch.manual_seed(parent.cfg.train.seed)
    model = build_model(parent.cfg.model)
    if is_reward_model(parent):
        from scalelab.posttrain.rewardmodel import RewardModel

        rm = RewardModel(model)
        parent.checkpoint.restore(rm)
        return rm
    parent.checkpoint.restore(model)
    return model


def tokenizer_of(parent: FinishedRun) -> Tokenizer:
    """The run's tokenizer: raw bytes (the only one the tasks are written for, and one that
    needs no token cache, so a stage runs wherever the run's directory is)."""
    from scalelab.data.tokenizer import ByteTokenizer

    cfg = parent.cfg
    if cfg.data.tokenizer != "bytes" or cfg.data.corpus.split(":", 1)[0] == "markov":
        raise ConfigError(
            f"the run reads data.corpus = {cfg.data.corpus!r} with data.tokenizer = "
            f"{cfg.data.tokenizer!r}; the verifiable tasks are written as characters and need "
            "data.tokenizer = 'bytes' (pretrain on `scalelab demos` output)"
        )
    return ByteTokenizer()


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
    parent: FinishedRun
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
                "run_config": self.parent.cfg.to_dict(),
                **self.extra,
            },
        )


def make_stage(
    method: str,
    parent: FinishedRun,
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
        # every setting, so a report can tell two stages of one method apart (one line each)
        "settings": dataclasses.asdict(stage.cfg),
        **summary,
    }
    rundir.write_json(stage.run_dir / rundir.SUMMARY, out)
    return out
