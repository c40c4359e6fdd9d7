"""Knowledge distillation: a student trained on ``(1 - alpha) CE + alpha KD`` against a teacher.

The ``[distill]`` section of a run config (:class:`~scalelab.techniques.distill_plugin.DistillConfig`,
owned by the distillation plug-in) names a
teacher (a finished run directory, any architecture) and the distillation term:

* ``forward_kl``: ``T^2 KL(p_teacher^T || p_student^T)`` with both distributions softened
  by the temperature T (Hinton, Vinyals and Dean 2015, sec. 2: the T^2 keeps the
  gradient's scale when T changes);
* ``reverse_kl``: ``T^2 KL(p_student^T || p_teacher^T)``, the mode-seeking direction that
  MiniLLM (Gu et al. 2024) argues for in generative models; MiniLLM optimises it at the
  sequence level with policy gradients, here it is the token-level form (their "word-level"
  baseline), which needs no sampling;
* ``mse_logits``: the mean squared difference of the raw logits (Ba and Caruana 2014),
  temperature-free.

``top_k`` keeps only the teacher's k largest logits per position (the storage trick of
offline distillation): both distributions are renormalised over those k tokens.

The teacher runs in eval mode under ``torch.no_grad``. Its forward FLOPs are counted
apart from the student's training FLOPs (``C_student``, ``C_teacher``, ``C_total`` in the
run's ``summary.json``), because distillation is only free when the teacher's cost is sunk
(Busbridge et al. 2025). ``init_every = k`` initialises student block i from teacher block
i k, as DistilBERT (Sanh et al. 2019) took every second layer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from scalelab import rundir
from scalelab.config import RunConfig, load_run_config
from scalelab.errors import ConfigError
from scalelab.plugin import RunContext, TrainHook

if TYPE_CHECKING:
    from scalelab.techniques.distill_plugin import DistillConfig

FINISHED = ("finished", "stopped_early")


def kd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    *,
    loss: str = "forward_kl",
    temperature: float = 1.0,
    top_k: int | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The distillation term summed over positions (``[..., V]`` logits, ``mask`` ``[...]``).

    Summed, not averaged, so the caller divides by the same token count as the
    cross-entropy (micro-batches add up to the batch mean).
    """
    s = student.float().flatten(0, -2)
    t = teacher.float().flatten(0, -2)
    if mask is not None:
        keep = mask.flatten()
        s, t = s[keep], t[keep]
    if top_k is not None and top_k < t.shape[-1]:
        t, idx = t.topk(top_k, dim=-1)
        s = s.gather(-1, idx)
    if loss == "mse_logits":
        return (s - t).pow(2).mean(-1).sum()
    tau = temperature
    log_ps = F.log_softmax(s / tau, dim=-1)
    log_pt = F.log_softmax(t / tau, dim=-1)
    if loss == "forward_kl":
        per_pos = (log_pt.exp() * (log_pt - log_ps)).sum(-1)
    elif loss == "reverse_kl":
        per_pos = (log_ps.exp() * (log_ps - log_pt)).sum(-1)
    else:
        raise ConfigError(f"distill.loss = {loss!r} is not forward_kl, reverse_kl or mse_logits")
    return tau * tau * per_pos.sum()


@dataclasses.dataclass
class Teacher:
    """A finished run loaded for distillation: its model in eval mode and its accounting."""

    run_dir: Path
    cfg: RunConfig
    model: nn.Module
    run_id: str
    val_loss: float | None
    forward_flops_per_token: float
    params: dict[str, Any]


def _teacher_of_config(path: Path, out: Path) -> Path:
    """The finished run a teacher TOML describes, in ``out``: the sweep (through the
    plug-in's ``needs``) or ``scalelab train`` trains it first; a student never does."""
    cfg = load_run_config(path)
    run_dir = out / cfg.run_id()
    if not _finished(run_dir):
        raise ConfigError(
            f"distill.teacher = {str(path)!r} is a run config whose run has not finished in "
            f"{out}: train it first (scalelab train {path} --runs {out}; scalelab train and "
            "scalelab sweep of the student do so)"
        )
    return run_dir


def _finished(run_dir: Path) -> bool:
    p = run_dir / rundir.SUMMARY
    return p.is_file() and rundir.read_json(p).get("status") in FINISHED


def resolve_teacher(spec: str, out: Path) -> Path:
    """The run directory ``distill.teacher`` names (a TOML: its run in ``out``)."""
    path = Path(spec).expanduser()
    if path.suffix == ".toml" and path.is_file():
        return _teacher_of_config(path, out)
    if not path.is_absolute() and not path.exists() and (out / spec).exists():
        path = out / spec  # a run id inside the runs directory
    if not (path / rundir.CONFIG).is_file():
        raise ConfigError(
            f"distill.teacher = {spec!r} is not a run directory (no {rundir.CONFIG}) nor a "
            "run-config TOML: point it at a finished run"
        )
    if not _finished(path):
        raise ConfigError(
            f"distill.teacher = {spec!r} has not finished training (no finished summary.json): "
            "train it first"
        )
    return path


def check_teacher(student: RunConfig, teacher: RunConfig, where: str) -> None:
    """A teacher must score the same tokens: same tokenizer, vocabulary, context, objective."""
    pairs = {
        "data.tokenizer": (student.data.tokenizer, teacher.data.tokenizer),
        "model.vocab_size": (student.model.vocab_size, teacher.model.vocab_size),
        "model.context": (student.model.context, teacher.model.context),
        "train.objective": (student.train.objective, teacher.train.objective),
    }
    if student.data.tokenizer == "bpe":  # a BPE vocabulary is learnt from its corpus
        pairs["data.corpus"] = (student.data.corpus, teacher.data.corpus)
    bad = [f"{k} ({s!r} vs teacher {t!r})" for k, (s, t) in pairs.items() if s != t]
    if bad:
        raise ConfigError(
            f"the teacher {where} does not match the student in {', '.join(bad)}: "
            "distillation needs the same tokens and positions"
        )


def load_teacher(spec: str, out: Path, student: RunConfig, device: torch.device) -> Teacher:
    """Load ``distill.teacher`` for a student config, checked and frozen (a teacher given as
    a run TOML must have finished in ``out``)."""
    from scalelab.accounting import count
    from scalelab.runs import open_run

    run_dir = resolve_teacher(spec, out)
    opened = open_run(run_dir, what="distill.teacher")
    tcfg = opened.cfg
    check_teacher(student, tcfg, str(run_dir))
    model = opened.load_model(device, fork_rng=False)  # the trainer's RNG draws as before
    model.requires_grad_(False)
    summary = opened.summary
    counted = count(tcfg.model, causal=tcfg.model.causal).to_dict()
    return Teacher(
        run_dir=run_dir,
        cfg=tcfg,
        model=model,
        run_id=tcfg.run_id(),
        val_loss=summary.get("val_loss"),
        forward_flops_per_token=float(counted["flops"]["forward_per_token"]),
        params=counted["params"],
    )


def init_from_teacher(student: nn.Module, teacher: nn.Module, every: int) -> list[str]:
    """Copy teacher weights into the student: block i <- teacher block ``i * every``, every
    other tensor by name (embeddings, final norm, head). Returns the copied names.

    The shapes must agree (same width): the student differs in depth only, as DistilBERT.
    """
    t_state = teacher.state_dict()
    n_teacher = 1 + max(
        (int(k.split(".")[1]) for k in t_state if k.startswith("blocks.")), default=-1
    )
    copied, bad = [], []
    new_state = {}
    for name, value in student.state_dict().items():
        src = name
        if name.startswith("blocks."):
            _, i, rest = name.split(".", 2)
            j = int(i) * every
            if j >= n_teacher:
                raise ConfigError(
                    f"distill.init_every = {every}: student block {i} maps to teacher block {j}, "
                    f"but the teacher has {n_teacher}; lower init_every or model.n_layer"
                )
            src = f"blocks.{j}.{rest}"
        if src not in t_state or t_state[src].shape != value.shape:
            bad.append(name)
            continue
        new_state[name] = t_state[src].detach().clone()
        copied.append(name)
    if bad:
        raise ConfigError(
            "distill.init_every needs a teacher of the same architecture and width; "
            f"no matching teacher tensor for {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}"
        )
    student.load_state_dict(new_state, strict=True)
    return copied


class Distiller(TrainHook):
    """The loop's hook (:class:`scalelab.plugin.TrainHook`): holds the teacher and mixes
    the KD term into the loss."""

    def __init__(self, run: RunContext) -> None:
        cfg = run.cfg
        spec: DistillConfig = cfg.section("distill")
        assert spec.teacher is not None
        self.cfg = spec
        self.run = run  # run.precision: the run's Precision, set by the loop once resolved
        self.device = device = run.device
        self.mlm = cfg.train.objective == "mlm"
        # building the teacher draws from the RNG: fork it so the student's run is unchanged
        cuda = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            self.teacher = load_teacher(spec.teacher, run.run_dir.parent, cfg, device)
        if self.cfg.init_every is not None:
            init_from_teacher(run.model, self.teacher.model, self.cfg.init_every)
        # the scratch twin: the same run without [distill], the plain point to compare with
        self.scratch_run_id = cfg.with_section("distill", None).run_id()

    def loss(
        self,
        lm: torch.Tensor,
        student_logits: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        denom: Any,
    ) -> torch.Tensor:
        """``(1 - alpha) lm + alpha KD / denom``; ``lm`` itself when alpha is 0."""
        alpha = self.cfg.alpha
        if alpha == 0:
            return lm
        with torch.no_grad(), self.run.precision.autocast(self.device):
            t_logits = self.teacher.model(x)
        mask = (y != -100) if self.mlm else None  # masked LM: the masked positions only
        kd = (
            kd_loss(
                student_logits,
                t_logits,
                loss=self.cfg.loss,
                temperature=self.cfg.temperature,
                top_k=self.cfg.top_k,
                mask=mask,
            )
            / denom
        )
        return (1 - alpha) * lm + alpha * kd

    def summary(self, tokens: int, student_flops: float) -> dict[str, Any]:
        """The teacher block of the student's ``summary.json``: run id, loss, FLOPs apart."""
        c_teacher = self.teacher.forward_flops_per_token * tokens if self.cfg.alpha > 0 else 0.0
        t = self.teacher
        return {
            "teacher_run_id": t.run_id,
            "teacher_dir": str(t.run_dir.resolve()),
            "teacher_loss": t.val_loss,
            "teacher_arch": t.cfg.model.arch,
            "teacher_N_non_embedding": t.params.get("non_embedding"),
            "teacher_N_total": t.params.get("total"),
            "teacher_forward_flops_per_token": t.forward_flops_per_token,
            "scratch_run_id": self.scratch_run_id,
            "alpha": self.cfg.alpha,
            "temperature": self.cfg.temperature,
            "loss": self.cfg.loss,
            "top_k": self.cfg.top_k,
            "init_every": self.cfg.init_every,
            "C_student": student_flops,
            "C_teacher": c_teacher,
            "C_total": student_flops + c_teacher,
            "teacher_share": c_teacher / (student_flops + c_teacher)
            if student_flops + c_teacher > 0
            else None,
        }
