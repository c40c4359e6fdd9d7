"""The intrinsic dimension d90 of an objective, by a geometric sweep then bisection.

d90 (Li et al. 2018; Aghajanyan et al. 2021) is the smallest subspace dimension d whose
subspace training reaches 90% of what training every parameter reaches. ``performance`` is
a score (higher is better: accuracy, say) and the target is ``threshold`` x the full run's
score; without one, the score is the loss *reduction* from theta_0 (L_0 - L), so the target
is 90% of full training's reduction, which is what "90% of the performance" means for a
loss (pretraining from scratch, or Li et al.'s toy problem).

Search: train at each ``dims`` value in increasing order until one reaches the target, then
bisect between the last miss and that hit until the bracket is within ``resolution`` of its
upper end (``resolution = 0``: exact, to one unit). Every trial is kept as the curve. The
search assumes performance rises with d, as it does on average; with a noisy objective the
bisection returns one d where the curve crosses the target.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from scalelab.errors import ConfigError
from scalelab.intrinsic.projections import PROJECTIONS
from scalelab.intrinsic.subspace import Subspace

LossFn = Callable[[Callable[..., Any], Any], torch.Tensor]
DEFAULT_DIMS = (10, 30, 100, 300, 1000, 3000, 10000)


@dataclass
class Trial:
    d: int  # trainable numbers (D for the full run)
    performance: float
    loss: float
    seconds: float
    phase: str  # "full", "sweep" or "bisect"


@dataclass
class IntrinsicResult:
    d90: int | None  # None: no d in the sweep reached the target
    target: float
    full_performance: float
    threshold: float
    projection: str
    said: bool
    D: int
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    note: str | None = None  # why there is no d90 beyond "the sweep never reached it"

    def curve(self) -> Any:
        """The trials as a DataFrame (``d``, ``performance``, ``loss``, ``seconds``,
        ``phase``), sorted by d."""
        import pandas as pd

        return pd.DataFrame([asdict(t) for t in self.trials]).sort_values("d")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["trials"] = [asdict(t) for t in self.trials]
        return d


def optimise(
    params: list[torch.Tensor],
    loss_of: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    optimizer: str = "adam",
) -> None:
    """``steps`` updates of ``params`` on ``loss_of(step)``: Adam with a cosine decay to 10%
    of ``lr``, or L-BFGS with a strong-Wolfe line search (full-batch objectives: it solves
    a quadratic to machine precision in a few dozen iterations)."""
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=steps,
            history_size=50,
            tolerance_grad=1e-14,
            tolerance_change=1e-16,
            line_search_fn="strong_wolfe",
        )

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = loss_of(0)
            loss.backward()
            return loss

        opt.step(closure)
        return
    if optimizer != "adam":
        raise ConfigError(f"optimizer {optimizer!r} is not one of adam, lbfgs")
    opt = torch.optim.Adam(params, lr=lr)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        opt.zero_grad()
        loss_of(step).backward()
        opt.step()


def search(
    score: Callable[[int], float],
    target: float,
    dims: Sequence[int],
    *,
    resolution: float = 0.1,
    on_trial: Callable[[int, float, str], None] | None = None,
) -> int | None:
    """The smallest d (to ``resolution``) with ``score(d) >= target``; None if none of
    ``dims`` reaches it. ``score`` is called once per d."""
    seen: dict[int, float] = {}

    def at(d: int, phase: str) -> float:
        if d not in seen:
            seen[d] = score(d)
            if on_trial is not None:
                on_trial(d, seen[d], phase)
        return seen[d]

    lo = 0
    hi = None
    for d in sorted(set(dims)):
        if at(d, "sweep") >= target:
            hi = d
            break
        lo = d
    if hi is None:
        return None
    while hi - lo > max(1.0, resolution * hi):
        mid = (lo + hi) // 2
        if at(mid, "bisect") >= target:
            hi = mid
        else:
            lo = mid
    return hi


def _mean_loss(module: Callable[..., Any], loss_fn: LossFn, data: Sequence[Any]) -> float:
    with torch.no_grad():
        return float(sum(float(loss_fn(module, b)) for b in data) / len(data))


def _work_flops(D: int, batch: Any) -> float:
    """Forward FLOPs of one batch, roughly (2 D per example, or per token for token ids): only
    to pick the thread count (:class:`scalelab.train.device.ThreadPolicy`)."""
    first = batch[0] if isinstance(batch, tuple | list) and batch else batch
    if isinstance(first, dict) and first:
        first = next(iter(first.values()))
    if not isinstance(first, torch.Tensor) or first.dim() == 0:
        return 2.0 * D
    rows = first.numel() if not first.is_floating_point() else first.shape[0]
    return 2.0 * D * rows


def intrinsic_dimension(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[Any],
    *,
    performance: Callable[[Callable[..., Any]], float] | None = None,
    eval_data: Sequence[Any] | None = None,
    dims: Sequence[int] = DEFAULT_DIMS,
    projection: str = "fastfood",
    said: bool = False,
    threshold: float = 0.9,
    steps: int = 200,
    lr: float = 0.1,
    full_lr: float = 1e-3,
    full_steps: int | None = None,
    full: float | None = None,
    min_full: float | None = None,
    optimizer: str = "adam",
    resolution: float = 0.1,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    done: Mapping[str, Sequence[float]] | None = None,
    on_trial: Callable[[str, Trial], None] | None = None,
) -> IntrinsicResult:
    """d90 of ``loss_fn`` on ``model`` (see the module docstring).

    ``done``: trials a killed search finished, ``{"full" or str(d): (performance, loss,
    seconds)}``, taken as they are instead of trained again (a trial is a function of its
    settings and seed); ``on_trial(key, trial)`` is told each trial trained now, to keep.

    ``loss_fn(module, batch) -> scalar tensor`` where ``module`` is called like ``model``;
    ``data`` is a sequence of training batches (step i uses ``data[i % len(data)]``);
    ``performance(module) -> float`` scores a trained module (higher is better; default: the
    loss reduction on ``eval_data``, which defaults to ``data``). ``full`` is full training's
    performance when already known; otherwise every parameter of a copy of ``model`` is
    trained with ``full_lr`` for ``full_steps`` (default ``steps``). ``min_full``: a full performance at or below it
    (chance, for a task) leaves d90 undefined: no search, ``note`` says why (90% of a model
    that learned nothing is reached by any subspace). ``model`` itself is never changed.
    """
    if projection not in PROJECTIONS:
        raise ConfigError(f"projection {projection!r} is not one of {', '.join(PROJECTIONS)}")
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    if not data:
        raise ConfigError("intrinsic_dimension needs at least one training batch")
    if not dims or min(dims) < 1:
        raise ConfigError(f"dims must be positive integers, got {list(dims)}")
    from scalelab.train.device import ThreadPolicy

    D = sum(p.numel() for p in model.parameters())
    # Tiny problems run far faster on one thread on a shared machine (see ThreadPolicy).
    threads = ThreadPolicy(torch.device("cpu"), _work_flops(D, data[0]))
    threads.apply()
    try:
        return _search(
            model,
            loss_fn,
            data,
            performance,
            eval_data,
            dims,
            projection,
            said,
            threshold,
            steps,
            lr,
            full_lr,
            full_steps or steps,
            full,
            min_full,
            optimizer,
            resolution,
            seed,
            log,
            D,
            dict(done or {}),
            on_trial,
        )
    finally:
        threads.restore()


def _search(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[Any],
    performance: Callable[[Callable[..., Any]], float] | None,
    eval_data: Sequence[Any] | None,
    dims: Sequence[int],
    projection: str,
    said: bool,
    threshold: float,
    steps: int,
    lr: float,
    full_lr: float,
    full_steps: int,
    full: float | None,
    min_full: float | None,
    optimizer: str,
    resolution: float,
    seed: int,
    log: Callable[[str], None] | None,
    D: int,
    done: dict[str, Sequence[float]],
    on_trial: Callable[[str, Trial], None] | None,
) -> IntrinsicResult:
    t_start = time.perf_counter()
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    evaluation = list(eval_data) if eval_data is not None else list(data)
    base_loss = _mean_loss(model, loss_fn, evaluation)

    def score(module: Callable[..., Any]) -> tuple[float, float]:
        loss = _mean_loss(module, loss_fn, evaluation)
        perf = performance(module) if performance is not None else base_loss - loss
        return perf, loss

    def batch(step: int) -> Any:
        return data[step % len(data)]

    trials: list[Trial] = []
    if full is None and "full" in done:  # a resumed search: full training finished before
        full, full_loss, secs = (float(v) for v in done["full"])
        trials.append(Trial(D, full, full_loss, secs, "full"))
    elif full is None:
        t0 = time.perf_counter()
        twin = copy.deepcopy(model)
        twin.train()
        params = [p for p in twin.parameters()]
        for p in params:
            p.requires_grad_(True)
        optimise(
            params,
            lambda s: loss_fn(twin, batch(s)),
            steps=full_steps,
            lr=full_lr,
            optimizer=optimizer,
        )
        twin.eval()
        full, full_loss = score(twin)
        trials.append(Trial(D, full, full_loss, time.perf_counter() - t0, "full"))
        if on_trial is not None:
            on_trial("full", trials[-1])
        if log:
            log(f"full training ({D:,} parameters): performance {full:.4g}")
    target = threshold * full
    if min_full is not None and full <= min_full:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        return IntrinsicResult(
            d90=None, target=target, full_performance=full, threshold=threshold,
            projection=projection, said=said, D=D, trials=trials,
            seconds=time.perf_counter() - t_start,
            note=(
                f"full training reached {full:.4g}, not above {min_full:.4g} (chance): d90 is "
                "undefined; train longer (steps) or with another full_lr"
            ),
        )  # fmt: skip

    def train_at(d: int) -> float:
        if str(d) in done:  # a resumed search: this dimension finished before
            perf, loss, secs = (float(v) for v in done[str(d)])
            trials.append(Trial(d, perf, loss, secs, ""))
            return perf
        t0 = time.perf_counter()
        sub = Subspace(model, d, projection=projection, said=said, seed=seed)
        sub.train()
        optimise(
            [p for p in sub.parameters() if p.requires_grad],
            lambda s: loss_fn(sub, batch(s)),
            steps=steps,
            lr=lr,
            optimizer=optimizer,
        )
        sub.eval()
        perf, loss = score(sub)
        trials.append(Trial(d, perf, loss, time.perf_counter() - t0, ""))
        if on_trial is not None:
            on_trial(str(d), trials[-1])
        return perf

    def note(d: int, perf: float, phase: str) -> None:
        trials[-1].phase = phase
        if log:
            log(f"d = {d}: performance {perf:.4g} (target {target:.4g})")

    d90 = search(train_at, target, dims, resolution=resolution, on_trial=note)
    for p, flag in zip(model.parameters(), flags, strict=True):
        p.requires_grad_(flag)
    return IntrinsicResult(
        d90=d90,
        target=target,
        full_performance=full,
        threshold=threshold,
        projection=projection,
        said=said,
        D=D,
        trials=trials,
        seconds=time.perf_counter() - t_start,
    )
