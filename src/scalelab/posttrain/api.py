"""``posttrain(run, method, task)``: one stage, every check before any work (``scalelab posttrain``).

========  ===========================================  ===================================
method    parent                                       reward (``--reward``)
========  ===========================================  ===================================
sft       a pretrained run (or any policy stage)       --
reward    the LM the reward model starts from          the gold labelling the pairs
          (pairs: the parent's samples, or a pair      (``grader`` or a reward-model run)
          file)
dpo       the reference policy (usually the SFT run)   the gold labelling the pairs
rl        the reference policy (usually the SFT run)   ``grader`` or a reward-model run
pairs     the policy whose samples are paired          the gold labelling the pairs
eval      any policy: its accuracy and reward, as a    --
          point (the "pretrain" row of a table)
========  ===========================================  ===================================

A stage that finished before is returned as it is (its summary); one that was interrupted
resumes from its newest checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scalelab import rundir
from scalelab.errors import ConfigError, DataError, StoreError
from scalelab.posttrain.config import PosttrainConfig
from scalelab.posttrain.stage import (
    Stage,
    is_reward_model,
    make_stage,
    open_policy,
    stage_record,
    tokenizer_of,
)
from scalelab.posttrain.tasks import get_verifiable
from scalelab.runs import FinishedRun

METHODS = ("sft", "reward", "dpo", "rl", "pairs", "eval")
GRADER = "grader"


def check_run_files(run: str | Path, what: str = "RUN") -> None:
    """What :func:`open_parent` reads, checked for shape first (a damaged or hand-edited
    run is one error naming the file, not a traceback): ``config.json`` and ``summary.json``
    are JSON tables, and a stage's config names its id, method, task and root run config."""
    d = Path(run)
    if str(run).strip() == "":
        raise ConfigError(f"{what} is empty: give a run or a stage directory")
    tables: dict[str, dict[str, Any]] = {}
    for name in (rundir.CONFIG, rundir.SUMMARY):
        p = d / name
        if not p.is_file():
            continue
        try:
            value = json.loads(p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise StoreError(
                f"{what} {str(d)!r}: {name} is damaged (not JSON): restore it, or give another run"
            ) from None
        if not isinstance(value, dict):
            raise StoreError(
                f"{what} {str(d)!r}: {name} is a {type(value).__name__}, not a table: restore it"
            )
        tables[name] = value
    meta = tables.get(rundir.CONFIG, {})
    if meta.get("kind") == "posttrain":
        for key, kind in (("run_id", str), ("method", str), ("task", str), ("run_config", dict)):
            if not isinstance(meta.get(key), kind):
                raise StoreError(
                    f"{what} {str(d)!r}: its config.json is a stage's without a valid {key!r} "
                    "(damaged or edited): restore it, or run the stage again elsewhere"
                )
        if meta["method"] not in (*METHODS, "bon"):
            raise StoreError(f"{what} {str(d)!r}: unknown stage method {meta['method']!r}")


def check_intact(parent: FinishedRun, what: str = "RUN") -> None:
    """The weights a stage starts from (or scores with) exist and their checksums hold:
    a run whose every checkpoint is damaged or gone is refused before any work."""
    from scalelab.train.checkpoint import latest_checkpoint

    if latest_checkpoint(parent.run_dir / rundir.CHECKPOINTS) is None:
        raise StoreError(
            f"{what} {str(parent.run_dir)!r} has no intact checkpoint (missing, or damaged: "
            "its checksums do not hold); give a run whose weights are intact"
        )


def check_pairs(path: str, task: str, method: str, cfg: PosttrainConfig) -> None:
    """A pair file the stage can learn from: UTF-8, well-formed lines (``read_pairs``),
    gold scores finite numbers when given, and enough pairs (the reward model holds some
    out and needs at least one to train on)."""
    import math

    from scalelab.posttrain.pairs import read_pairs

    where = f"posttrain.pairs_file {path!r}"
    try:
        pairs = read_pairs(path, task)[: cfg.pairs]
    except UnicodeDecodeError:
        raise DataError(f"{where} is not UTF-8 text: write it as JSON lines in UTF-8") from None
    except IsADirectoryError:
        raise DataError(f"{where} is a folder: give a pairs.jsonl file") from None
    for i, pair in enumerate(pairs, 1):
        for key in ("gold_chosen", "gold_rejected"):
            v = getattr(pair, key)
            ok = v is None or (
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            )
            if not ok:
                raise DataError(
                    f"{where}: pair {i} has {key} = {v!r}; give a finite number or leave it out"
                )
    need = 2 if method == "reward" else 1
    if len(pairs) < need:
        why = " (one is held out to measure the reward model)" if method == "reward" else ""
        raise DataError(
            f"{where} holds {len(pairs)} pair(s); --method {method} needs at least {need}{why}"
        )
    if method == "reward":
        held = max(1, round(cfg.holdout * len(pairs)))
        if len(pairs) - held < 1:
            raise DataError(
                f"{where} holds {len(pairs)} pairs and posttrain.holdout = {cfg.holdout} holds "
                f"out {held}: none is left to train on; give more pairs or a smaller holdout"
            )


def check_stage_out(out: str | Path | None, stage: Stage) -> None:
    """``--out`` is a new path, an empty folder, or this very stage (resumed or finished):
    never a run, another stage, an export or a store (:mod:`scalelab.outputs`)."""
    from scalelab.outputs import check_output

    check_output(
        out,
        "--out",
        folder=True,
        own=lambda a: (
            a.config.get("kind") == "posttrain" and a.config.get("run_id") == stage.run_id
        ),
    )


def resolve_reward(reward: str | None, method: str) -> tuple[str | None, FinishedRun | None]:
    """(the reward's name in the stage id, the reward-model run) -- checked."""
    if method in ("sft", "eval"):
        if reward is not None:
            raise ConfigError(f"--reward is not read by --method {method}; leave it out")
        return None, None
    if reward is None or reward == GRADER:
        return GRADER, None
    check_run_files(reward, "--reward")
    rm = open_policy(reward, "--reward")
    if not is_reward_model(rm):
        raise ConfigError(
            f"--reward {reward!r} is not a reward model (a stage of --method reward) nor "
            f"{GRADER!r}: train one with `scalelab posttrain RUN --method reward --task T`"
        )
    check_intact(rm, "--reward")
    return rm.run_id, rm


def resolve_gold(gold: str | None, method: str) -> FinishedRun | None:
    """The gold reward-model run of ``--gold`` (None: the task's grader), checked."""
    if gold is None or gold == GRADER:
        return None
    if method not in ("rl", "bon"):
        raise ConfigError(
            f"--gold is read by rl and best-of-n only, not --method {method}; the pairs' gold "
            "is --reward (e.g. --method pairs --reward GOLD_RM)"
        )
    g = open_policy(gold, "--gold")
    if not is_reward_model(g):
        raise ConfigError(
            f"--gold {gold!r} is not a reward model (a stage of --method reward) nor "
            f"{GRADER!r}: train one with `scalelab posttrain RUN --method reward --task T`"
        )
    return g


def prepare(
    run: str | Path,
    method: str,
    task: str,
    cfg: PosttrainConfig,
    *,
    reward: str | None = None,
    out: str | Path | None = None,
    key: dict[str, Any] | None = None,
    gold: str | None = None,
) -> tuple[Stage, FinishedRun | None, FinishedRun | None]:
    """The stage, its reward model and its gold reward model (None: the grader), every
    input checked; nothing is written."""
    if method not in (*METHODS, "bon"):
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)}")
    get_verifiable(task)  # a task without a grader cannot be sampled, scored or rewarded
    check_run_files(run)
    parent = open_policy(run)
    record = stage_record(parent)
    tokenizer_of(parent)
    if is_reward_model(parent):
        raise ConfigError(
            f"RUN {str(run)!r} is a reward model; --method {method} starts from a policy "
            "(a pretrained run or an sft, dpo or rl stage)"
        )
    if record and record.get("task") != task and method != "eval":
        raise ConfigError(
            f"RUN {str(run)!r} was post-trained on task {record.get('task')!r}, not "
            f"{task!r}: continue on the same task or start from a pretrained run"
        )
    reward_name, rm = resolve_reward(reward, method)
    if rm is not None and rm.cfg.data.tokenizer != parent.cfg.data.tokenizer:
        raise ConfigError("--reward reads another tokenizer than RUN; use runs of one corpus")
    gold_rm = resolve_gold(gold, method)
    if gold_rm is not None:
        if gold_rm.cfg.data.tokenizer != parent.cfg.data.tokenizer:
            raise ConfigError("--gold reads another tokenizer than RUN; use runs of one corpus")
        if rm is not None and gold_rm.run_id == rm.run_id:
            raise ConfigError(
                "--gold is the --reward run itself: the gold must be another reward model "
                "(or the grader) for overoptimisation to be measured"
            )
        # the gold names the stage only when it is a model: grader-gold ids are unchanged
        key = {**(key or {}), "gold": gold_rm.run_id}
    if method in ("reward", "dpo") and cfg.pairs_file:
        check_pairs(cfg.pairs_file, task, method, cfg)  # before any work
    extra = {"reward_dir": str(rm.run_dir.resolve())} if rm is not None else {}
    if gold_rm is not None:
        extra.update(gold=gold_rm.run_id, gold_dir=str(gold_rm.run_dir.resolve()))
    stage = make_stage(method, parent, task, reward_name, cfg, out, extra, key)
    check_stage_out(out, stage)
    if not stage.finished:  # a finished stage is returned as it is: its parent is not read
        check_intact(parent)
    return stage, rm, gold_rm


def posttrain(
    run: str | Path,
    method: str,
    task: str,
    cfg: PosttrainConfig | None = None,
    *,
    reward: str | None = None,
    out: str | Path | None = None,
    db: str | Path | None = None,
    log: Any = None,
    gold: str | None = None,
) -> dict[str, Any]:
    """Run one stage (see the module docstring); its summary, and with ``db`` its points.
    ``gold`` (rl only): a gold reward-model run to measure the policy with instead of the
    grader (Gao et al. 2022's protocol; :mod:`.gold`)."""
    cfg = cfg or PosttrainConfig()
    if method not in METHODS:  # best-of-n is its own command (it has its own key: the n)
        hint = ": best-of-n is `scalelab bon`" if method == "bon" else ""
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)}{hint}")
    stage, rm, gold_rm = prepare(run, method, task, cfg, reward=reward, out=out, gold=gold)
    if not stage.finished:
        stage.write_config()
        summary = _run(stage, rm, log, gold_rm)
    else:
        summary = stage.summary()
    if db is not None:
        record(stage, summary, db)
    return summary


def best_of_n(
    run: str | Path,
    reward: str,
    task: str,
    ns: list[int],
    cfg: PosttrainConfig | None = None,
    *,
    out: str | Path | None = None,
    db: str | Path | None = None,
    log: Any = None,
    gold: str | None = None,
) -> dict[str, Any]:
    """Best-of-n of ``run``'s samples against the reward model ``reward`` for each n in
    ``ns`` (:mod:`scalelab.posttrain.bon`); its summary (``curve``: one row per n).
    ``gold``: a gold reward-model run instead of the grader (:mod:`.gold`)."""
    from scalelab.posttrain.bon import check_ns, run_bon

    cfg = cfg or PosttrainConfig()
    ns = check_ns(ns)
    if reward == GRADER:
        raise ConfigError(
            "--reward for best-of-n is a reward-model run (the proxy); the grader is the gold "
            "reward it is measured with"
        )
    stage, rm, gold_rm = prepare(
        run, "bon", task, cfg, reward=reward, out=out, key={"n": ns}, gold=gold
    )
    if not stage.finished:
        stage.write_config()
        threads = threads_for(stage)
        threads.apply()
        try:
            summary = run_bon(stage, rm, ns, log, gold_rm)
        finally:
            threads.restore()
    else:
        summary = stage.summary()
    if db is not None:
        record(stage, summary, db)
    return summary


def record(stage: Stage, summary: dict[str, Any], db: str | Path) -> None:
    """The stage's points (its summary, and each row of its curve) in the store ``db``."""
    from scalelab.posttrain.points import point, put_points

    # a best-of-n sweep is its curve (one point per n); its summary repeats the best n
    rows = [*([] if summary["method"] == "bon" else [summary]), *summary.get("curve", [])]
    put_points(
        db,
        [
            point(
                {k: v for k, v in r.items() if k != "curve"},
                parent_run_id=stage.parent.run_id,
                arch=stage.parent.cfg.model.arch,
                run_dir=str(stage.run_dir),
            )
            for r in rows
        ],
    )


def threads_for(stage: Stage) -> Any:
    """The CPU thread count of the stage's kernels (:class:`scalelab.train.device.ThreadPolicy`:
    one thread for micro-batches too small to gain from more, which on a loaded machine is
    many times faster), applied by the caller."""
    import torch

    from scalelab.accounting import count
    from scalelab.train.device import ThreadPolicy

    model = stage.parent.cfg.model
    work = 2.0 * count(model, causal=True).params.total * stage.cfg.batch_size * model.context
    return ThreadPolicy(
        torch.device("cpu"), work * (stage.cfg.group if stage.method == "rl" else 1)
    )


def _run(
    stage: Stage, rm: FinishedRun | None, log: Any, gold: FinishedRun | None = None
) -> dict[str, Any]:
    threads = threads_for(stage)
    threads.apply()
    try:
        return _dispatch(stage, rm, log, gold)
    finally:
        threads.restore()


def _dispatch(
    stage: Stage, rm: FinishedRun | None, log: Any, gold: FinishedRun | None = None
) -> dict[str, Any]:
    if stage.method == "sft":
        from scalelab.posttrain.sft import run_sft

        return run_sft(stage, log)
    if stage.method == "eval":
        from scalelab.posttrain.grade import run_eval

        return run_eval(stage)
    if stage.method == "pairs":
        from scalelab.posttrain.pairs import run_pairs

        return run_pairs(stage, rm, log)
    if stage.method == "reward":
        from scalelab.posttrain.reward import run_reward

        return run_reward(stage, rm, log)
    if stage.method == "dpo":
        from scalelab.posttrain.dpo import run_dpo

        return run_dpo(stage, rm, log)
    from scalelab.posttrain.rl import run_rl

    return run_rl(stage, rm, log, gold)
