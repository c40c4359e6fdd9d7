"""Preference pairs: two of a policy's own completions of a prompt, ranked by a gold reward.

A pair file is JSON lines ``{"prompt": ..., "chosen": ..., "rejected": ..., "gold_chosen":
..., "gold_rejected": ...}`` (the gold scores optional). ``--method pairs`` writes one from
its parent policy: for each training prompt two completions sampled at temperature 1, scored
by the gold reward (the task's grader, or a reward-model run: Gao et al. 2022 label with a
larger "gold" reward model), kept when the two scores differ (a tie says nothing about
preference), the better one ``chosen``. The reward stage and DPO read the same file, so
reward models of several sizes can learn from one set of pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalelab import atomic
from scalelab.errors import DataError
from scalelab.posttrain.rollout import sample
from scalelab.posttrain.tasks import get_verifiable, prompts

if TYPE_CHECKING:
    from torch import nn

    from scalelab.data import Tokenizer

PAIRS_FILE = "pairs.jsonl"
# gold(prompts, completions) -> (scores, FLOPs spent scoring)
Gold = Callable[[list[str], list[str]], tuple[list[float], float]]


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    gold_chosen: float | None = None
    gold_rejected: float | None = None


def read_pairs(path: str | Path, task: str) -> list[Pair]:
    """The pairs of a file, or a ``DataError`` naming the first bad line and the fix."""
    p = Path(path)
    t = get_verifiable(task)
    if not p.is_file():
        raise DataError(f"posttrain.pairs_file {str(p)!r} does not exist")
    out: list[Pair] = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"posttrain.pairs_file {str(p)!r} line {i}"
        try:
            obj = json.loads(line)
        except ValueError:
            raise DataError(f"{where} is not JSON; each line is an object") from None
        if not isinstance(obj, dict) or not all(
            isinstance(obj.get(k), str) for k in ("prompt", "chosen", "rejected")
        ):
            raise DataError(
                f'{where} needs string fields "prompt", "chosen" and "rejected", e.g. '
                '{"prompt": "42+75=", "chosen": "711", "rejected": "712"}'
            )
        if len(obj["prompt"]) != t.prompt_len:
            raise DataError(
                f"{where}: prompt {obj['prompt']!r} is not a {task} prompt "
                f"({t.prompt_len} characters, e.g. {prompts(task, 'train', 1)[0][0]!r})"
            )
        if obj["chosen"] == obj["rejected"]:
            raise DataError(f"{where}: chosen and rejected are the same completion")
        out.append(
            Pair(
                obj["prompt"],
                obj["chosen"],
                obj["rejected"],
                obj.get("gold_chosen"),
                obj.get("gold_rejected"),
            )
        )
    if not out:
        raise DataError(f"posttrain.pairs_file {str(p)!r} holds no pairs")
    return out


def write_pairs(path: Path, pairs: list[Pair]) -> None:
    atomic.write_text(path, "".join(json.dumps(asdict(p)) + "\n" for p in pairs))


def grader_gold(task: str) -> Gold:
    t = get_verifiable(task)

    def gold(ps: list[str], cs: list[str]) -> tuple[list[float], float]:
        return [t.score(p, c) for p, c in zip(ps, cs, strict=True)], 0.0

    return gold


def model_gold(rm: nn.Module, tokenizer: Tokenizer, task: str) -> Gold:
    """A reward model as the gold (or proxy) reward of text completions."""
    from scalelab.posttrain.rewardmodel import score_text

    def gold(ps: list[str], cs: list[str]) -> tuple[list[float], float]:
        return score_text(rm, tokenizer, task, ps, cs)

    return gold


def draw_pairs(
    policy: nn.Module,
    tokenizer: Tokenizer,
    task: str,
    n: int,
    gold: Gold,
    *,
    seed: int = 0,
    batch: int = 256,
) -> tuple[list[Pair], float, int]:
    """``n`` pairs from the policy's samples of training prompts (see the module); also the
    FLOPs and tokens spent sampling and scoring them."""
    import torch

    t = get_verifiable(task)
    g = torch.Generator().manual_seed(seed)
    out: list[Pair] = []
    flops, tokens, draw = 0.0, 0, 0
    while len(out) < n:
        draw += 1
        ps = [p for p, _ in prompts(task, "train", batch, seed=seed * 10_007 + draw)]
        a = sample(policy, tokenizer, ps, t.max_answer + 1, generator=g)
        b = sample(policy, tokenizer, ps, t.max_answer + 1, generator=g)
        ga, fa = gold(ps, a.completions)
        gb, fb = gold(ps, b.completions)
        flops += a.flops + b.flops + fa + fb
        tokens += a.tokens + b.tokens
        for p, ca, cb, sa, sb in zip(ps, a.completions, b.completions, ga, gb, strict=True):
            if sa != sb and ca != cb and len(out) < n:
                win, lose = ((ca, sa), (cb, sb)) if sa > sb else ((cb, sb), (ca, sa))
                out.append(Pair(p, win[0], lose[0], win[1], lose[1]))
        if draw > 20 * (n // batch + 1) and len(out) < n // 10:
            raise DataError(
                f"the policy's two samples of a {task} prompt almost never differ in gold "
                f"reward ({len(out)} pairs from {draw * batch} prompts): it is always right or "
                "always wrong the same way; start from a less (or more) trained policy"
            )
    return out, flops, tokens


def run_pairs(stage: Any, rm: Any, log: Any = None) -> dict[str, Any]:
    """``--method pairs``: write ``pairs.jsonl`` from the parent policy's samples."""
    from scalelab.posttrain.stage import build_lm, finish, n_params, tokenizer_of

    tokenizer = tokenizer_of(stage.parent)
    policy = build_lm(stage.parent)
    gold = (
        grader_gold(stage.task) if rm is None else model_gold(build_lm(rm), tokenizer, stage.task)
    )
    pairs, flops, tokens = draw_pairs(
        policy, tokenizer, stage.task, stage.cfg.pairs, gold, seed=stage.cfg.seed
    )
    write_pairs(stage.run_dir / PAIRS_FILE, pairs)
    if log:
        log(f"{len(pairs)} pairs written to {stage.run_dir / PAIRS_FILE}")
    return finish(
        stage,
        {
            "step": 0,
            "policy_N": n_params(policy),
            "pairs": len(pairs),
            "pairs_file": str(stage.run_dir / PAIRS_FILE),
            "tokens": tokens,
            "flops": flops,
            "seconds": 0.0,
        },
    )
