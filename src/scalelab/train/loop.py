"""``train(cfg, out) -> RunSummary``: one run, in one directory, resumable.

The loop is a plain PyTorch loop written for small models on CPUs as much as for GPUs:

* one optimizer update per step of ``train.batch_size`` sequences (``batch_size x context``
  tokens), accumulated over micro-batches of ``train.micro_batch_size``;
* AdamW (the fused kernel where this PyTorch has one for the device, else foreach) with
  weight decay on matrices and embeddings only, gradient clipping, the learning rate of
  :mod:`scalelab.train.schedule` ending exactly at the run's own budget;
* no host synchronisation between log steps: losses and gradient norms stay on the device
  until a log step reads them all at once, and NaN/inf is caught there (before any
  checkpoint could save a damaged model);
* evaluation on fixed validation windows every ``train.eval_every`` steps and at the end;
* checkpoints every ``train.checkpoint_every`` steps and at the end; ``resume=True`` picks up
  the newest intact one and continues as if never stopped (the data order and masked-LM
  corruption are functions of the step, the RNG and optimizer state are restored).

The budget is ``train.tokens``, ``train.tokens_per_param`` (times the *non-embedding*
parameter count of :func:`scalelab.accounting.count`, as in Kaplan et al. 2020), or
``train.epochs`` (passes over ``TokenData.train``); with none set, 20 tokens per
non-embedding parameter (the compute-optimal ratio of Hoffmann et al. 2022). It is rounded
to whole steps.

The loop's helpers each have a module of their own: the tokens a run trains on
(:mod:`~scalelab.train.stream`), the checks before it starts
(:mod:`~scalelab.train.preflight`), the optimizer (:mod:`~scalelab.train.optim`),
evaluation (:mod:`~scalelab.train.evaluate`), what it shows while it trains
(:mod:`~scalelab.train.progress`) and the summary it ends with
(:mod:`~scalelab.train.summary`); checkpoints, batches, devices and the schedule were
already apart. What is left here is the loop, read top to bottom: :func:`train`, then
:class:`_Run` (set up, one update, resume, evaluate, checkpoint, the loop, the summary).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scalelab import rundir
from scalelab.accounting import count
from scalelab.config import RunConfig, check_budget, planned_steps
from scalelab.data import load_tokens
from scalelab.errors import ConfigError, StoreError, TrainingError
from scalelab.models import build_model
from scalelab.plugin import RunContext, train_hooks
from scalelab.train import branch, precision_probe
from scalelab.train.batches import TrainSampler, gather, mlm_corrupt, mlm_generator
from scalelab.train.checkpoint import latest_checkpoint, remove_temporaries, save_checkpoint
from scalelab.train.device import Precision, ThreadPolicy, resolve_device, resolve_precision
from scalelab.train.evaluate import Evaluator
from scalelab.train.optim import make_optimizer
from scalelab.train.preflight import check_memory, prepare_dir, run_lock
from scalelab.train.progress import NoLog, Progress, TensorBoard, warn_if_long
from scalelab.train.schedule import lr_at
from scalelab.train.stream import TokenSource, check_data, training_stream
from scalelab.train.summary import RunSummary, bpb, now

# the names other modules import from here, kept where they were
__all__ = ["RunSummary", "TokenSource", "check_data", "check_memory", "make_optimizer", "train"]

LOG_EVERY = 10  # steps between metrics lines (and host syncs), at most train.eval_every

EvalHook = Callable[[int, float], str | None]  # (step, val_loss) -> a reason to stop, or None


@dataclass
class _State:
    """The loop's counters: what a checkpoint stores besides weights and optimizer."""

    step: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    best_val_loss: float | None = None
    bad_evals: int = 0
    train_seconds: float = 0.0
    timed_tokens: int = 0
    first_step_seconds: float = 0.0
    eval_seconds: float = 0.0
    wall_seconds: float = 0.0
    started: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    cfg: RunConfig,
    out: str | Path = "runs",
    *,
    resume: bool = False,
    progress: bool = True,
    data: TokenSource | None = None,
    on_eval: EvalHook | None = None,
) -> RunSummary:
    """Train one run in ``out / cfg.run_id()`` and return its summary.

    ``on_eval(step, val_loss)`` is called after every evaluation before the last step; a
    string it returns stops the run there as ``stopped_early`` with that string as the
    reason (a hyperparameter search prunes a bad trial this way, :mod:`scalelab.tune`).

    ``data`` replaces ``scalelab.data.load_tokens(cfg.data, cfg.model.vocab_size)`` (for
    callers that hold tokens in memory, e.g. tests and benchmarks). A run that diverges
    (NaN/inf loss or gradient) returns a summary with ``status = "failed"``; its metrics
    and earlier checkpoints are kept.
    """
    run_dir = Path(out) / cfg.run_id()
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--runs {str(out)!r} is a file: give a directory for the runs")
    created = [p for p in (run_dir, *run_dir.parents) if not p.exists()]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot create the run directory {str(run_dir)!r}: {e.strerror}"
        ) from None
    with run_lock(run_dir):
        try:
            done = prepare_dir(run_dir, resume)
            if done is not None:
                return done
            the_run = _Run(cfg, run_dir, data, progress)
            the_run.on_eval = on_eval
        except BaseException:
            # a run that fails before it starts (a bad corpus, too big for memory, an absurd
            # budget) leaves nothing behind: the directories this call made go again
            (run_dir / ".lock").unlink(missing_ok=True)
            for p in created:
                with contextlib.suppress(OSError):
                    p.rmdir()
            raise
        return the_run.run()


class _Run:
    on_eval: EvalHook | None = None

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        data: TokenSource | None,
        progress: bool,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        t0 = time.perf_counter()
        self.cfg, self.dir, self.progress_on = cfg, run_dir, progress
        # data parallel (scalelab.train.distributed): this process trains rows
        # [rank * local, (rank + 1) * local) of every global batch; rank 0 alone writes
        self.rank, self.world, self.writer = rank, world, rank == 0
        if data is None:
            data = load_tokens(cfg.data, cfg.model.vocab_size)
        check_data(cfg, data)
        data, self.selection = training_stream(cfg, data)
        self.data = data
        counted = count(cfg.model, causal=cfg.model.causal).to_dict()
        self.params, self.flops = counted["params"], counted["flops"]
        tc = cfg.train
        self.device = resolve_device(tc.device)
        self.local_batch = tc.batch_size // world
        self.micro = min(tc.micro_batch_size or self.local_batch, self.local_batch)
        self.n_micro = self.local_batch // self.micro
        self.tokens_per_step = tc.batch_size * cfg.model.context
        self.total_steps, self.budget_note = planned_steps(
            cfg, self.params["non_embedding"], int(data.unique_tokens)
        )
        check_budget(
            self.total_steps * self.tokens_per_step, self.budget_note, int(data.unique_tokens)
        )
        check_memory(cfg, self.device, self.micro)
        # WSD branches (scalelab.train.branch): the steps whose state this run keeps, and
        # for a branch the parent's state it starts from, both checked before any work
        self.save_steps = branch.save_steps(tc, self.tokens_per_step, self.total_steps)
        self.branch_from = (
            branch.locate(cfg, run_dir, self.tokens_per_step, self.total_steps)
            if tc.branch_of is not None
            else None
        )
        if self.device.type == "cuda":  # TF32 tensor cores for fp32 matmuls
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(tc.seed)
        self.model = build_model(cfg.model).to(self.device)
        self.model.train()
        # the active plug-ins' training hooks (distillation: the teacher and its loss term),
        # after build_model: a hook may overwrite the fresh weights (distill.init_every).
        # The runs this one needs (scalelab.plugin.run_needs: a teacher) are finished
        # already: the sweep and `scalelab train` train them first, never this loop
        self.context = RunContext(cfg, run_dir, self.device, self.model)
        self.hooks = train_hooks(self.context)
        self.optimizer = make_optimizer(self.model, cfg, self.device)
        self.forward: nn.Module = self.model
        if tc.compile:
            self.forward = torch.compile(self.model)  # type: ignore[assignment]
        if world > 1:  # gradients averaged across ranks in buckets during backward
            from torch.nn.parallel import DistributedDataParallel

            self.forward = DistributedDataParallel(self.model)
        self.sampler = TrainSampler(np.asarray(data.train), cfg.model.context, tc.seed)
        self.metrics = rundir.MetricsLog(run_dir / rundir.METRICS) if self.writer else NoLog()
        self.state = _State(started=now())
        self.setup_seconds = time.perf_counter() - t0

    # --- one update ---------------------------------------------------------------------------

    def _step(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer update; returns the step's mean loss and gradient norm (on device)."""
        cfg, tc = self.cfg, self.cfg.train
        lr = lr_at(step, self.total_steps, tc, self.tokens_per_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        first = step * tc.batch_size
        if tc.objective == "mlm":
            assert self.data.mask_id is not None
            seq = gather(
                self.data.train,
                self.sampler.starts(first, tc.batch_size),
                cfg.model.context,
                self.device,
            )
            x_all, y_all = mlm_corrupt(
                seq, self.data.mask_id, self.data.vocab_size, mlm_generator(tc.seed, step, 0)
            )
            denom = (y_all != -100).sum().clamp_min(1)
        else:
            x_all, y_all = self.sampler.batch(first, tc.batch_size, self.device)
            denom = y_all.numel()
        if self.world > 1:  # this rank's slice of the global batch (the same data order)
            lo = self.rank * self.local_batch
            x_all, y_all = x_all[lo : lo + self.local_batch], y_all[lo : lo + self.local_batch]
        loss_sum = torch.zeros((), device=self.device)
        for m in range(self.n_micro):
            x = x_all[m * self.micro : (m + 1) * self.micro]
            y = y_all[m * self.micro : (m + 1) * self.micro]
            sync = self.world == 1 or m == self.n_micro - 1  # all-reduce once per step
            with (
                contextlib.nullcontext() if sync else self.forward.no_sync(),  # type: ignore[operator]
                self.precision.autocast(self.device),
            ):
                logits = self.forward(x)
            lm = (
                F.cross_entropy(
                    logits.flatten(0, 1).float(), y.flatten(), ignore_index=-100, reduction="sum"
                )
                / denom
            )
            loss = lm
            for _, hook in self.hooks:
                loss = hook.loss(loss, logits, x, y, denom)
            loss = loss * self.world  # DDP averages over ranks; the global mean is their sum
            aux = getattr(self.model, "aux_loss", None)
            if aux is not None:
                loss = loss + aux / self.n_micro
            loss.backward()  # DDP reduces in the backward of a forward made outside no_sync
            loss_sum += lm.detach()
        if tc.grad_clip > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        else:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            gnorm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads])
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, gnorm.detach()

    # --- the loop -----------------------------------------------------------------------------

    def _resume(self) -> None:
        remove_temporaries(self.dir / rundir.CHECKPOINTS)  # a killed run's half checkpoint
        ckpt = latest_checkpoint(self.dir / rundir.CHECKPOINTS)
        branching = ckpt is None and self.branch_from is not None
        if branching:  # a branch's first start: from the parent's stable-phase state
            ckpt = self.branch_from
        work = float(self.flops["forward_per_token"]) * self.micro * self.cfg.model.context
        extra = ckpt.state.get("extra", {}) if ckpt is not None else {}
        self.thread_policy = ThreadPolicy(self.device, work, extra.get("threads"))
        self.thread_policy.apply()
        # after the threads: the CPU's bf16 probe is measured (and cached) at the thread count
        # the run uses; a resumed run keeps the precision it started with
        tc = self.cfg.train

        def probe() -> Precision:  # "auto" on a CPU: time this run's own model
            timings, cached = precision_probe.step_timings(
                self.cfg, self.micro, self.device, self.cfg.data.cache_dir
            )
            return precision_probe.choose(timings, cached)

        self.precision = resolve_precision(
            tc.precision,
            self.device,
            self.cfg.data.cache_dir,
            kept=extra.get("precision"),
            probe=probe,
        )
        self.evaluate = Evaluator(self.cfg, self.data, self.device, self.precision, self.micro)
        self.context.precision = self.precision  # a teacher runs in the student's precision
        if ckpt is None:
            self.metrics.truncate_after(-1)  # nothing to continue from: start afresh
            return
        ckpt.restore(self.model, self.optimizer)
        s = ckpt.state
        if branching:  # the parent's step and losses; the timers are the branch's own
            self.state = _State(
                step=ckpt.step,
                train_loss=s.get("train_loss"),
                val_loss=s.get("val_loss"),
                best_val_loss=s.get("best_val_loss"),
                started=now(),
            )
            self.metrics.truncate_after(-1)
            for row in branch.parent_metrics(self.cfg, self.dir, ckpt.step):
                self.metrics.append(row)
            return
        known = {f.name for f in dataclasses.fields(_State)}
        self.state = _State(**{k: v for k, v in s.items() if k in known})
        self.metrics.truncate_after(self.state.step)

    def _checkpoint(self, root: str = rundir.CHECKPOINTS, keep: int = 2) -> None:
        if not self.writer:
            return
        state = dataclasses.asdict(self.state)
        state["extra"] = {
            "next_sample": self.state.step * self.cfg.train.batch_size,
            "total_steps": self.total_steps,
            "threads": self.thread_policy.count if self.thread_policy.enabled else None,
            "precision": self.precision.name,
        }
        save_checkpoint(self.dir / root, self.state.step, self.model, self.optimizer, state, keep)

    def _eval(self, row: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        val = self.evaluate(self.model)
        self.state.eval_seconds += time.perf_counter() - t0
        self.state.val_loss = val
        row["val_loss"] = val
        row["val_bpb"] = bpb(val, self.data.bytes_per_token)
        if math.isfinite(val) and (
            self.state.best_val_loss is None or val < self.state.best_val_loss
        ):
            self.state.best_val_loss = val
            self.state.bad_evals = 0
        else:
            self.state.bad_evals += 1

    def run(self) -> RunSummary:
        if self.writer:
            rundir.write_json(self.dir / rundir.CONFIG, self.cfg.to_dict())
        self._resume()
        session_start = time.perf_counter()
        wall_before = self.state.wall_seconds
        tc = self.cfg.train
        log_every = min(LOG_EVERY, tc.eval_every)
        bar = Progress(self.progress_on, self.total_steps, self.cfg.run_id(), self.state.step)
        tb = TensorBoard(self.dir / "tensorboard") if self.writer else NoLog()
        status, reason = "finished", None

        def elapsed() -> float:
            return wall_before + self.setup_seconds + time.perf_counter() - session_start

        try:
            if self.state.step == 0 and not rundir.read_metrics(self.dir):
                row: dict[str, Any] = {"step": 0, "tokens": 0, "elapsed": elapsed()}
                self._eval(row)
                self.metrics.append(row)
            losses: list[torch.Tensor] = []
            norms: list[torch.Tensor] = []
            window_start = self.state.step
            first_in_session = True
            warned_long = False
            seg_start = time.perf_counter()
            while self.state.step < self.total_steps:
                step = self.state.step
                if first_in_session and tc.compile:
                    try:
                        loss, gnorm = self._step(step)
                    except Exception as e:  # inductor needs a C++ compiler, etc.
                        raise TrainingError(
                            f"torch.compile failed ({type(e).__name__}: {e}): "
                            "set train.compile = false"
                        ) from e
                else:
                    loss, gnorm = self._step(step)
                losses.append(loss)
                norms.append(gnorm)
                self.state.step = done = step + 1
                if first_in_session:  # allocation, kernel choice, compilation: timed apart
                    _sync(self.device)
                    self.state.first_step_seconds += time.perf_counter() - seg_start
                    first_in_session = False
                    timed_from = done
                    seg_start = time.perf_counter()
                is_eval = done % tc.eval_every == 0 or done == self.total_steps
                is_ckpt = done % tc.checkpoint_every == 0 or done == self.total_steps
                keep_state = done in self.save_steps  # a branch point (train.save_at)
                if not (is_eval or is_ckpt or keep_state or done % log_every == 0):
                    continue
                # a log step: one host sync for the whole window of steps
                stacked = torch.stack(losses)
                if self.world > 1:  # each rank holds its share of the global mean loss
                    torch.distributed.all_reduce(stacked)
                values = stacked.tolist()
                gnorms = torch.stack(norms).tolist()
                now = time.perf_counter()
                if done > timed_from:
                    n_timed = done - max(window_start, timed_from)
                    self.state.train_seconds += now - seg_start
                    self.state.timed_tokens += n_timed * self.tokens_per_step
                bad = next(
                    (
                        i
                        for i, (a, b) in enumerate(zip(values, gnorms, strict=True))
                        if not (math.isfinite(a) and math.isfinite(b))
                    ),
                    None,
                )
                if bad is not None:
                    what = "loss" if not math.isfinite(values[bad]) else "gradient norm"
                    value = values[bad] if what == "loss" else gnorms[bad]
                    self.state.step = window_start + bad + 1
                    status = "failed"
                    reason = f"train {what} became {value} at step {self.state.step}"
                    break
                # the summary's train_loss is the mean over the last logged window, as in the
                # metrics (one step's loss is noisier than the window's mean)
                self.state.train_loss = sum(values) / len(values)
                row = {
                    "step": done,
                    "tokens": done * self.tokens_per_step,
                    "train_loss": sum(values) / len(values),
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "grad_norm": gnorms[-1],
                }
                rate = (
                    self.state.timed_tokens / self.state.train_seconds
                    if self.state.train_seconds
                    else None
                )
                if rate:
                    row["tokens_per_second"] = rate
                    if not warned_long:
                        warned_long = True
                        warn_if_long(
                            self.dir.name,
                            (self.total_steps - done) * self.tokens_per_step,
                            rate,
                            self.budget_note,
                        )
                if is_eval:
                    self._eval(row)
                if self.thread_policy.enabled:
                    row["threads"] = self.thread_policy.count
                row["elapsed"] = elapsed()
                self.state.wall_seconds = row["elapsed"]
                self.metrics.append(row)
                tb.log(row)
                info = f"loss {row['train_loss']:.3f}"
                if self.state.val_loss is not None:
                    info += f"  val {self.state.val_loss:.3f}"
                if rate:
                    info += f"  {rate:,.0f} tok/s"
                bar.update(done, info)
                if is_eval and not math.isfinite(row["val_loss"]):
                    status, reason = (
                        "failed",
                        f"validation loss became {row['val_loss']} at step {done}",
                    )
                    break
                stop = (
                    is_eval
                    and tc.early_stopping is not None
                    and self.state.bad_evals >= tc.early_stopping
                )
                if is_eval and self.on_eval is not None and done < self.total_steps:
                    why = self.on_eval(done, row["val_loss"])
                    if why:
                        stop, reason = True, why
                if stop and done < self.total_steps:
                    status = "stopped_early"
                if is_ckpt or stop:
                    self._checkpoint()
                if keep_state:  # kept whole, every one: branches start from them
                    self._checkpoint(branch.BRANCH_POINTS, keep=len(self.save_steps))
                if stop:
                    break
                losses, norms, window_start = [], [], done
                seg_start = time.perf_counter()
        except BaseException as e:
            bar.close()
            tb.close()
            self.thread_policy.restore()
            if isinstance(e, OSError) and self.writer:  # a full disk (ENOSPC, EFBIG), ...
                where = f" writing {e.filename}" if e.filename else ""
                reason = f"{e.strerror or e}{where}"
                with contextlib.suppress(OSError):  # the summary may not fit either
                    self._write_summary("failed", reason, elapsed())
                raise TrainingError(
                    f"run {self.dir} failed at step {self.state.step}: {reason}; the run is "
                    "marked failed: make room, then --resume continues from its last checkpoint"
                ) from e
            if self.writer and not isinstance(e, KeyboardInterrupt | TrainingError):
                with contextlib.suppress(OSError):
                    self._write_summary("failed", f"{type(e).__name__}: {e}", elapsed())
            raise
        bar.close()
        tb.close()
        self.thread_policy.restore()
        return self._write_summary(status, reason, elapsed())

    def _write_summary(self, status: str, reason: str | None, wall: float) -> RunSummary:
        s, tc = self.state, self.cfg.train
        tokens = s.step * self.tokens_per_step
        unique = int(self.data.unique_tokens)
        rate = s.timed_tokens / s.train_seconds if s.train_seconds > 0 else None
        if rate is None and s.first_step_seconds > 0:
            rate = tokens / s.first_step_seconds
        summary = RunSummary(
            run_id=self.cfg.run_id(),
            status=status,
            reason=reason,
            step=s.step,
            tokens=tokens,
            val_loss=s.val_loss,
            val_bpb=bpb(s.val_loss, self.data.bytes_per_token),
            train_loss=s.train_loss,
            best_val_loss=s.best_val_loss,
            tokens_per_second=rate,
            wall_seconds=wall,
            params=self.params,
            flops=self.flops,
            flops_total=float(self.flops["train_per_token"]) * tokens,
            six_nd=float(self.flops["six_n"]) * tokens,
            six_nd_non_embedding=6.0 * self.params["non_embedding"] * tokens,
            unique_tokens=unique,
            epochs=tokens / unique if unique else 0.0,
            entropy_rate=self.data.entropy_rate,
            steps=self.total_steps,
            budget_tokens=self.total_steps * self.tokens_per_step,
            budget=self.budget_note,
            val_ppl=math.exp(s.val_loss) if s.val_loss is not None and s.val_loss < 700 else None,
            best_val_bpb=bpb(s.best_val_loss, self.data.bytes_per_token),
            bytes_per_token=self.data.bytes_per_token,
            eos_id=int(self.data.eos_id),
            train_seconds=s.train_seconds,
            first_step_seconds=s.first_step_seconds,
            eval_seconds=s.eval_seconds,
            device=str(self.device),
            precision=self.precision.name,
            precision_reason=self.precision.reason,
            precision_timings=dict(self.precision.timings) if self.precision.timings else None,
            compile=tc.compile,
            threads=self.thread_policy.count if self.thread_policy.enabled else None,
            micro_batch_size=self.micro,
            torch_version=torch.__version__,
            started=s.started,
            finished=now(),
            path=str(self.dir),
            selection=self.selection,
            branch=branch.summary_fields(self.cfg, tokens),
        )
        for plugin, hook in self.hooks:
            piece = hook.summary(tokens, summary.flops_total)
            if piece is not None:
                summary.pieces[plugin.summary_key or plugin.name] = piece
        if self.writer:
            rundir.write_json(self.dir / rundir.SUMMARY, summary.to_dict())
        return summary
