"""``finetune(run, task)``: fine-tune a pretrained run on a fine-tune task (``scalelab finetune``).

Methods (``finetune.method``):

* ``full``: every weight of the model, plus a new classification head for a class task;
* ``head``: the model frozen, only a classification head on its hidden state (a linear probe);
* ``lora``: low-rank adapters (Hu et al. 2021: W + (alpha/r) B A, B zero at the start) on
  every ``nn.Linear`` of the body (the output layer excluded), plus the head. The adapters
  come from ``peft`` (``inject_adapter_in_model`` with the body's Linear layers named
  explicitly): scalelab's blocks are plain ``nn.Linear`` modules, so peft fits them without a
  Hugging Face model class, on every architecture of the zoo.

The head reads the model's last hidden state (the final norm's output, which every
architecture of the zoo has) at the last token (``pool = "last"``: in a causal model the only position
that has seen the whole input) or averaged over the tokens (``"mean"``). A token task (copy,
add) has no head: the model's own next-token predictions are trained on the answer tokens.

The fine-tuned run has its own directory, named ``ft-`` + a hash of (parent run, task, config)
beside the parent unless ``out`` says otherwise: ``config.json`` (the parent's run id and
directory, the task, the resolved :class:`FinetuneConfig`), ``metrics.jsonl``,
``checkpoint/`` (the trainer's atomic checkpoints: weights, optimizer, RNG, and the early
stopping state), ``best.pt`` (the best validation weights so far) and ``summary.json``.
Early stopping watches validation accuracy (``patience`` evaluations without improvement);
the test split is scored once, with the best validation weights. Resuming continues from the
newest checkpoint with the same batches (each step's batch is a function of the seed and the
step), so an interrupted fine-tune ends where an uninterrupted one does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab import atomic
from scalelab.config import apply_overrides, check_choice, section_from_dict
from scalelab.errors import ConfigError, TrainingError
from scalelab.ranges import check_rate
from scalelab.tasks.registry import Task, get_task

if TYPE_CHECKING:
    import torch
    from torch import nn

    from scalelab.tasks.supervised import Example, Splits

METHODS = ("full", "head", "lora")


@dataclass(frozen=True)
class FinetuneConfig:
    """How a run is fine-tuned (``--set finetune.KEY=VALUE``)."""

    method: str = "full"  # full | head | lora
    pool: str = "last"  # last | mean: which hidden state the class head reads
    lr: float = 1e-3
    steps: int = 1000  # at most; early stopping usually ends sooner
    batch_size: int = 32
    eval_every: int = 50
    patience: int = 4  # evaluations without a better validation accuracy before stopping
    weight_decay: float = 0.0
    lora_rank: int = 8
    lora_alpha: float = 16.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("finetune.method", self.method, METHODS)
        check_choice("finetune.pool", self.pool, ("last", "mean"))
        for name in ("steps", "batch_size", "eval_every", "patience", "lora_rank"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"finetune.{name} must be a positive integer, got {getattr(self, name)}"
                )
        check_rate("finetune.lr", self.lr)
        # counts bounded as every count option is: beyond these a value is a typo (a batch of
        # 2^16 examples is more than any task's split; 1e9 steps would run for years)
        for name, most in (("steps", 10**9), ("eval_every", 10**9), ("patience", 10**9),
                           ("batch_size", 2**16), ("lora_rank", 2**16)):  # fmt: skip
            if getattr(self, name) > most:
                raise ConfigError(
                    f"finetune.{name} = {getattr(self, name):,} is more than this machine can "
                    f"use: give at most {most:,}"
                )
        if not self.weight_decay >= 0:
            raise ConfigError(f"finetune.weight_decay must be >= 0, got {self.weight_decay}")
        if not self.lora_alpha > 0:
            raise ConfigError(f"finetune.lora_alpha must be positive, got {self.lora_alpha}")


def finetune_config(overrides: list[str] | tuple[str, ...] = (), **fields: Any) -> FinetuneConfig:
    """A config from ``section.key=value`` overrides (section ``finetune``) and keywords."""
    values = apply_overrides({"finetune": dict(fields)}, overrides)
    extra = set(values) - {"finetune"}
    if extra:
        raise ConfigError(
            f"fine-tuning takes finetune.KEY=VALUE settings, not {sorted(extra)[0]}.*"
        )
    cfg = section_from_dict(FinetuneConfig, values["finetune"], "finetune")
    moot = sorted(k for k in values["finetune"] if k.startswith("lora_"))
    if moot and cfg.method != "lora":
        raise ConfigError(
            f"finetune.{moot[0]} has no effect with finetune.method = {cfg.method!r}: set "
            "finetune.method = 'lora', or drop it"
        )
    return cfg


# -- the model ---------------------------------------------------------------------------------


def task_model(lm: nn.Module, task: Task, cfg: FinetuneConfig) -> nn.Module:
    from torch import nn

    class TaskModel(nn.Module):
        """The pretrained LM with a hook on its final norm's output (the last hidden state)
        and, for a class task, a linear head over it."""

        def __init__(self) -> None:
            super().__init__()
            self.lm = lm
            self._hidden: list[Any] = []
            # a bound method, not a lambda: a deep copy of the model (full training in the
            # intrinsic-dimension search) then hooks into the copy's own list
            # The final norm's output is the last hidden state in every architecture of the zoo
            # (the output layer's input is not: ALBERT projects it down, MoS splits it in K).
            lm.norm_f.register_forward_hook(self._keep)
            width = lm.cfg.d_model
            self.cls = nn.Linear(width, task.n_classes) if task.output == "class" else None
            if self.cls is not None:
                nn.init.normal_(self.cls.weight, std=width**-0.5)
                nn.init.zeros_(self.cls.bias)

        def _keep(self, _module: nn.Module, _args: tuple[Any, ...], out: Any) -> None:
            self._hidden.append(out)

        def forward(self, idx: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            self._hidden.clear()
            logits = self.lm(idx)
            if self.cls is None:
                return logits
            h = self._hidden[-1].float()
            rows = torch.arange(idx.shape[0], device=idx.device)
            if cfg.pool == "last":
                pooled = h[rows, lengths - 1]
            else:
                mask = torch.arange(idx.shape[1], device=idx.device)[None] < lengths[:, None]
                pooled = (h * mask[..., None]).sum(1) / lengths[:, None]
            return self.cls(pooled)

    import torch

    model = TaskModel()
    for p in model.lm.parameters():
        p.requires_grad_(cfg.method == "full")
    if cfg.method == "lora":
        _add_lora(model.lm, cfg)
    if cfg.method == "head" and model.cls is None:
        raise ConfigError(
            f"task {task.name!r} answers in tokens, so it has no classification head to "
            "train alone; use finetune.method=full or lora"
        )
    return model


def _add_lora(lm: nn.Module, cfg: FinetuneConfig) -> None:
    from torch import nn

    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ConfigError(
            "finetune.method = 'lora' needs peft: pip install 'scalelab[lora]'"
        ) from None

    targets = [n for n, m in lm.named_modules() if isinstance(m, nn.Linear) and n != "head"]
    if not targets:
        raise ConfigError("this architecture has no Linear layers for LoRA adapters")
    inject_adapter_in_model(
        LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=targets), lm
    )
    for n, p in lm.named_parameters():
        p.requires_grad_("lora_" in n)


# -- batches -----------------------------------------------------------------------------------


def collate(examples: list[Example], task: Task) -> dict[str, torch.Tensor]:
    """``idx`` [B, T] (right-padded), ``lengths`` [B], and the target: ``labels`` [B] for a
    class task, ``targets`` [B, T] (-100 outside the answer) for a token task."""
    import torch

    seqs = [list(e.prompt) + list(e.answer) for e in examples]
    if examples[0].answer:
        seqs = [s[:-1] for s in seqs]  # inputs: the last answer token is only a target
    width = max(len(s) for s in seqs)
    idx = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        idx[i, : len(s)] = torch.tensor(s)
    batch = {"idx": idx, "lengths": torch.tensor([len(s) for s in seqs])}
    if task.output == "class":
        batch["labels"] = torch.tensor([e.label for e in examples])
    else:
        targets = torch.full((len(seqs), width), -100, dtype=torch.long)
        for i, e in enumerate(examples):
            start = len(e.prompt) - 1
            targets[i, start : start + len(e.answer)] = torch.tensor(e.answer)
        batch["targets"] = targets
    return batch


def task_loss(module: Any, batch: dict[str, torch.Tensor], task: Task) -> torch.Tensor:
    import torch.nn.functional as F

    out = module(batch["idx"], batch["lengths"])
    if task.output == "class":
        return F.cross_entropy(out.float(), batch["labels"])
    return F.cross_entropy(out.float().flatten(0, 1), batch["targets"].flatten(), ignore_index=-100)


def accuracy(module: Any, examples: list[Example], task: Task, batch_size: int = 128) -> int:
    """Correct examples: argmax class, or every answer token right (teacher-forced argmax,
    which is what greedy decoding produces when all are right)."""
    import torch

    correct = 0
    with torch.no_grad():
        for b in range(0, len(examples), batch_size):
            batch = collate(examples[b : b + batch_size], task)
            out = module(batch["idx"], batch["lengths"])
            if task.output == "class":
                correct += int((out.argmax(-1) == batch["labels"]).sum())
            else:
                t = batch["targets"]
                ok = (out.argmax(-1) == t) | (t == -100)
                correct += int(ok.all(dim=1).sum())
    return correct


def batch_at(train: list[Example], step: int, cfg: FinetuneConfig) -> list[Example]:
    """The training batch of ``step``: a seeded permutation per epoch, so resuming at any
    step sees the batches an uninterrupted run would."""
    import numpy as np

    n = len(train)
    per_epoch = max(1, n // cfg.batch_size)
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    return [train[i] for i in order[k * cfg.batch_size : (k + 1) * cfg.batch_size]]


# -- the run -----------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    run_dir: Path
    run_id: str
    parent_run_id: str
    task: str
    method: str
    status: str  # "finished" (all steps) or "stopped_early"
    step: int
    best_step: int
    val_accuracy: float
    test_accuracy: float
    test_lo: float
    test_hi: float
    n_test: int
    chance: float
    trainable_params: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d


def _id(parent: str, task: str, cfg: FinetuneConfig) -> str:
    blob = json.dumps(
        {"parent": parent, "task": task, "finetune": dataclasses.asdict(cfg)}, sort_keys=True
    )
    return "ft-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def prepare(
    run: str | Path,
    task_name: str,
    cfg: FinetuneConfig,
    *,
    initial: bool = False,
    verify: bool = True,
) -> tuple[Any, Task, Splits]:
    """(loaded run, task, examples), every check done before training (``initial``: the
    run's weights before training, see :func:`scalelab.runs.open_run`)."""
    from scalelab.runs import open_run, read_config
    from scalelab.tasks.evaluation import check_task_fits
    from scalelab.tasks.runs import check_causal
    from scalelab.tasks.supervised import build

    task = get_task(task_name)
    run_cfg = read_config(run)
    if task.kind == "generative":
        raise ConfigError(
            f"task {task.name!r} is a generative task: fine-tune on its demonstrations with "
            f"`scalelab posttrain RUN --method sft --task {task.name}`"
        )
    if task.kind != "fine-tune":
        raise ConfigError(
            f"task {task.name!r} is a zero-shot task: score it with `scalelab eval RUN --task "
            f"{task.name}` (nothing to fine-tune)"
        )
    check_task_fits(task, run_cfg)
    check_causal(run_cfg, "fine-tuning")
    if cfg.method == "lora" and cfg.lora_rank > run_cfg.model.d_model:
        raise ConfigError(
            f"finetune.lora_rank = {cfg.lora_rank} is above the model's width "
            f"(model.d_model = {run_cfg.model.d_model}): a rank of at most the width, e.g. 8"
        )
    loaded = open_run(run, initial=initial, verify=verify)
    splits = build(task.name, run_cfg.data, loaded.tokenizer(), run_cfg.model.context, cfg.seed)
    return loaded, task, splits


def finetune(
    run: str | Path,
    task: str,
    cfg: FinetuneConfig | None = None,
    *,
    out: str | Path | None = None,
    db: str | Path | None = None,
    resume: bool = True,
    progress: bool = False,
    log: Any = None,
    verify: bool = True,
) -> FinetuneResult:
    """Fine-tune ``run`` on ``task``; see the module docstring. A finished fine-tune in the
    same directory is returned as it is (``resume=False`` refuses an existing directory)."""
    import torch

    from scalelab import rundir
    from scalelab.tasks.scoring import wilson
    from scalelab.train.checkpoint import latest_checkpoint, save_checkpoint
    from scalelab.train.device import ThreadPolicy

    cfg = cfg or FinetuneConfig()
    loaded, t, splits = prepare(run, task, cfg, verify=verify)
    run_id = _id(loaded.run_id, t.name, cfg)
    run_dir = Path(out) if out is not None else loaded.run_dir.parent / run_id
    from scalelab.outputs import check_output

    # a new folder, or this same fine-tune's own (to resume); never a run or anything else
    check_output(
        run_dir,
        "--out",
        folder=True,
        own=lambda a: (
            a.kind in ("derived run", "folder")
            and a.config.get("kind") == "finetune"
            and a.config.get("run_id") == run_id
        ),
    )
    if (run_dir / rundir.SUMMARY).exists():
        if not resume:
            raise TrainingError(f"{run_dir} already holds a fine-tune; pass resume to reuse it")
        return FinetuneResult(**{**rundir.read_json(run_dir / rundir.SUMMARY), "run_dir": run_dir})
    run_dir.mkdir(parents=True, exist_ok=True)
    rundir.write_json(
        run_dir / rundir.CONFIG,
        {
            "run_id": run_id,
            "kind": "finetune",
            "parent_run_id": loaded.run_id,
            "parent_dir": str(loaded.run_dir.resolve()),
            "parent_step": loaded.step,
            "task": t.name,
            "finetune": dataclasses.asdict(cfg),
            "splits": {k: len(getattr(splits, k)) for k in ("train", "val", "test")},
            "labels": list(splits.labels),
        },
    )
    torch.manual_seed(cfg.seed)
    model = task_model(loaded.model, t, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    threads = ThreadPolicy(
        torch.device("cpu"),
        2.0
        * sum(p.numel() for p in model.parameters())
        * cfg.batch_size
        * loaded.cfg.model.context,
    )
    threads.apply()
    metrics = rundir.MetricsLog(run_dir / rundir.METRICS)
    state = {"step": 0, "best": -1.0, "best_step": 0, "bad": 0, "seconds": 0.0}
    ckpt = latest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if ckpt is not None:
        ckpt.restore(model, opt)
        state.update(ckpt.state)
        metrics.truncate_after(int(state["step"]))
    best_path = run_dir / "best.pt"
    t0 = time.perf_counter() - float(state["seconds"])
    try:
        model.train()
        while state["step"] < cfg.steps and state["bad"] < cfg.patience:
            step = int(state["step"])
            loss = task_loss(model, collate(batch_at(splits.train, step, cfg), t), t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            state["step"] = step + 1
            if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.steps:
                model.eval()
                val = accuracy(model, splits.val, t) / len(splits.val)
                model.train()
                row = {"step": state["step"], "train_loss": loss.item(), "val_accuracy": val}
                metrics.append(row)
                if log:
                    log(f"step {state['step']}: train loss {loss.item():.4f}, val acc {val:.3f}")
                if val > state["best"]:
                    state.update(best=val, best_step=state["step"], bad=0)
                    _save_atomic({k: v for k, v in model.state_dict().items()}, best_path)
                else:
                    state["bad"] = int(state["bad"]) + 1
                state["seconds"] = time.perf_counter() - t0
                save_checkpoint(
                    run_dir / rundir.CHECKPOINTS, int(state["step"]), model, opt, state, keep=1
                )
        model.load_state_dict(torch.load(best_path, weights_only=True))
        model.eval()
        correct = accuracy(model, splits.test, t)
    finally:
        threads.restore()
    status = "stopped_early" if state["bad"] >= cfg.patience else "finished"
    n_test = len(splits.test)
    lo, hi = wilson(correct, n_test)
    result = FinetuneResult(
        run_dir=run_dir,
        run_id=run_id,
        parent_run_id=loaded.run_id,
        task=t.name,
        method=cfg.method,
        status=status,
        step=int(state["step"]),
        best_step=int(state["best_step"]),
        val_accuracy=float(state["best"]),
        test_accuracy=correct / n_test,
        test_lo=lo,
        test_hi=hi,
        n_test=n_test,
        chance=t.chance,
        trainable_params=n_trainable,
        seconds=time.perf_counter() - t0,
    )
    rundir.write_json(run_dir / rundir.SUMMARY, result.to_dict())
    _record(result, t, loaded, db)
    return result


def _save_atomic(obj: Any, path: Path) -> None:
    import torch

    with atomic.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _record(result: FinetuneResult, task: Task, loaded: Any, db: str | Path | None) -> None:
    """The result row in the parent's ``tasks.json`` and, with ``db``, the tasks table and a
    ``finetune`` point linked to the parent run."""
    from scalelab.tasks.results import put_task_results, write_run_results

    row = {
        "run_id": result.parent_run_id,
        "task": task.name,
        "method": result.method,
        "kind": task.kind,
        "metric": task.metric,
        "n": result.n_test,
        "correct": round(result.test_accuracy * result.n_test),
        "accuracy": result.test_accuracy,
        "lo": result.test_lo,
        "hi": result.test_hi,
        "chance": task.chance,
        "seed": None,
        "step": loaded.step,
        "finetune_run_id": result.run_id,
        "seconds": result.seconds,
        "val_accuracy": result.val_accuracy,
        "trainable_params": result.trainable_params,
    }
    write_run_results(loaded.run_dir, [row])
    if db is None:
        return
    put_task_results(db, [row])
    from scalelab.results.store import Store

    with Store(db) as store:
        store.put_point(
            {
                "run_id": result.run_id,
                "kind": "finetune",
                "technique": f"finetune-{result.method}",
                "parent_run_id": result.parent_run_id,
                "arch": loaded.cfg.model.arch,
                "status": result.status,
                "step": result.step,
                "wall_seconds": result.seconds,
                "run_dir": str(result.run_dir),
                "extra_json": json.dumps(result.to_dict(), default=str),
            }
        )
