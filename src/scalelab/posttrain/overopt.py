"""The overoptimisation study by Gao, Schulman & Hilton's (2022) protocol, as one driver.

A study's ``[study] posttrain`` axis runs stages on each run of a ladder by itself; this
design chains runs of different sizes (a gold reward model labels the pairs every proxy
learns from), so it is a driver over a study file with an ``[overopt]`` table
(``scalelab overopt STUDY.toml``)::

    [overopt]
    task = "dyck"
    policy = "d32"                       # the ladder size whose pretrained run is the policy
    gold = "d256"                        # the size of the gold reward model's body
    proxies = ["d16", "d32", "d64", "d128"]
    gold_pairs = 16000                   # grader-labelled pairs the gold RM learns from
    pairs = 8000                         # gold-labelled pairs every proxy learns from
    test_pairs = 1000                    # gold-labelled pairs no proxy sees (pair accuracy)
    pair_counts = [125, 500, 2000, 8000] # the pair-count curve, on the pair_count_size body
    pair_count_size = "d64"
    best_of = [1, 4, 16, 64, 256]
    rl_kl_coefs = [0.0, 0.1]             # one RL run per proxy and KL coefficient
    gold_rm = {steps = 1500}             # posttrain settings of each step's stages
    proxy_rm = {steps = 600}
    bon = {kl_prompts = 64}
    rl = {steps = 40, lr = 3e-5}

In order (each a resumable stage; finished ones are reused):

1. the ladder of ``[study]`` is swept (pretraining);
2. ``gold_pairs`` pairs of the policy's samples, labelled by the task's grader, train the
   gold reward model on the ``gold`` body (Gao et al.'s 6B gold RM, sec. 2.2);
3. ``pairs + test_pairs`` fresh pairs of the policy's samples (another seed), labelled by
   the gold RM; each proxy trains on the first ``pairs`` of them;
4. against each proxy: best-of-n (each n of ``best_of``) and RL (GRPO) for each KL
   coefficient, the gold reward model measuring the policy (``--gold``);
5. the pair-count curve: the ``pair_count_size`` body trained on the first n pairs for each
   n of ``pair_counts``. Every proxy and every n is scored on the same last ``test_pairs``
   (Wilson intervals), which none of them saw.

With ``db``, every stage is a ``posttrain`` point (``scalelab fit --form gao-bon|gao-rl``
fits the curves). The result (stage directories, pair accuracies, seconds and load average
of each step) is written to ``overopt.json`` in the runs directory.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.errors import ConfigError, did_you_mean
from scalelab.posttrain.config import PosttrainConfig, posttrain_config
from scalelab.posttrain.tasks import get_verifiable

RESULT_FILE = "overopt.json"
SETTINGS = ("gold_pairs_set", "gold_rm", "proxy_pairs_set", "proxy_rm", "bon", "rl")
KEYS = (
    "task",
    "policy",
    "gold",
    "proxies",
    "gold_pairs",
    "pairs",
    "test_pairs",
    "pair_counts",
    "pair_count_size",
    "best_of",
    "rl_kl_coefs",
    *SETTINGS,
)


@dataclass(frozen=True)
class Design:
    """The ``[overopt]`` table, checked."""

    task: str
    policy: str
    gold: str
    proxies: tuple[str, ...]
    gold_pairs: int = 16_000
    pairs: int = 8_000
    test_pairs: int = 1_000
    pair_counts: tuple[int, ...] = ()
    pair_count_size: str = ""
    best_of: tuple[int, ...] = (1, 4, 16, 64, 256)
    rl_kl_coefs: tuple[float, ...] = (0.0,)
    settings: Mapping[str, PosttrainConfig] = field(default_factory=dict)

    def cfg(self, step: str, **fields: Any) -> PosttrainConfig:
        return dataclasses.replace(self.settings.get(step, PosttrainConfig()), **fields)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"overopt.{name} must be a positive integer, got {value!r}")
    return value


def _names(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'overopt.{name} is a list of size names, e.g. ["d16", "d32"]')
    return tuple(value)


def check_design(table: Any, sizes: list[str]) -> Design:
    """The ``[overopt]`` table of a study whose ladder has the size names ``sizes``."""
    if not isinstance(table, dict):
        raise ConfigError("the study needs an [overopt] table (see scalelab.posttrain.overopt)")
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"unknown key overopt.{key}{did_you_mean(key, KEYS)}")
    for key in ("task", "policy", "gold", "proxies"):
        if key not in table:
            raise ConfigError(f"overopt.{key} is required (see scalelab.posttrain.overopt)")
    get_verifiable(str(table["task"]))
    proxies = _names("proxies", table["proxies"])
    named = {"policy": table["policy"], "gold": table["gold"]}
    named.update({f"proxies[{i}]": p for i, p in enumerate(proxies)})
    if table.get("pair_counts"):
        named["pair_count_size"] = table.get("pair_count_size", proxies[0])
    for where, size in named.items():
        if size not in sizes:
            raise ConfigError(
                f"overopt.{where} = {size!r} is not a size of the study's ladder "
                f"({', '.join(sizes)}){did_you_mean(str(size), sizes)}"
            )
    pairs = _count("pairs", table.get("pairs", 8000))
    counts = tuple(_count("pair_counts", n) for n in table.get("pair_counts", []))
    if counts and max(counts) > pairs:
        raise ConfigError(
            f"overopt.pair_counts go up to {max(counts):,}, more than overopt.pairs = {pairs:,} "
            "(the pairs drawn for the proxies); raise pairs or lower the counts"
        )
    best_of = tuple(_count("best_of", n) for n in table.get("best_of", [1, 4, 16, 64, 256]))
    from scalelab.posttrain.bon import check_ns

    check_ns(list(best_of))
    coefs = table.get("rl_kl_coefs", [0.0])
    if not isinstance(coefs, list) or not coefs:
        raise ConfigError("overopt.rl_kl_coefs is a list of KL coefficients, e.g. [0.0, 0.1]")
    settings = {}
    for step in SETTINGS:
        sub = table.get(step, {})
        if not isinstance(sub, dict):
            raise ConfigError(f"overopt.{step} is a table of posttrain keys, e.g. {{steps = 300}}")
        settings[step] = posttrain_config(**sub)
    for c in coefs:
        posttrain_config(kl_coef=c)  # a negative or infinite coefficient fails here
    return Design(
        task=str(table["task"]),
        policy=str(table["policy"]),
        gold=str(table["gold"]),
        proxies=proxies,
        gold_pairs=_count("gold_pairs", table.get("gold_pairs", 16000)),
        pairs=pairs,
        test_pairs=_count("test_pairs", table.get("test_pairs", 1000)),
        pair_counts=counts,
        pair_count_size=str(named.get("pair_count_size", "")),
        best_of=best_of,
        rl_kl_coefs=tuple(float(c) for c in coefs),
        settings=settings,
    )


def load_design(study: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], Design]:
    """(the study without its [overopt] table, the design), every key checked."""
    from scalelab.study import study_from_dict

    if isinstance(study, (str, Path)):
        import tomllib

        path = Path(study)
        if not path.is_file():
            raise ConfigError(f"study file {str(path)!r} does not exist")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML ({e})") from None
    else:
        values = dict(study)
    table = values.pop("overopt", None)
    ladder = study_from_dict(values)
    design = check_design(table, [s.name for s in ladder.sizes])
    return values, design


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:  # not every platform has one
        return None


def held_accuracy(rm_dir: str | Path, task: str, pairs: list[Any]) -> dict[str, float]:
    """A reward model's share of ``pairs`` ranked as their labels say, with its 95% Wilson
    interval: every proxy and pair count is scored on the same pairs."""
    from scalelab.posttrain.reward import pair_accuracy, pair_tensors
    from scalelab.posttrain.stage import build_lm, open_policy, tokenizer_of
    from scalelab.tasks.scoring import wilson

    parent = open_policy(rm_dir, "reward model")
    rm = build_lm(parent).eval()
    acc = pair_accuracy(rm, pair_tensors(tokenizer_of(parent), task, pairs))
    lo, hi = wilson(round(acc * len(pairs)), len(pairs))
    return {"test_accuracy": acc, "test_accuracy_lo": lo, "test_accuracy_hi": hi}


def run_overopt(
    study: str | Path | Mapping[str, Any],
    *,
    db: str | Path | None = None,
    runs: str | Path = "runs",
    log: Callable[[str], None] | None = None,
    sweep_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the whole design (see the module); its result, also in ``runs/overopt.json``."""
    from scalelab.posttrain.api import best_of_n, posttrain
    from scalelab.posttrain.pairs import read_pairs
    from scalelab.study import expand, sweep

    values, d = load_design(study)  # every input checked before any work
    say = log or (lambda _msg: None)
    runs = Path(runs)
    steps: list[dict[str, Any]] = []
    started = time.perf_counter()

    def timed(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        t0, load0 = time.perf_counter(), load_average()
        s = fn()
        took = time.perf_counter() - t0
        steps.append({"step": name, "seconds": took, "load": [load0, load_average()]})
        say(f"{name}: {took:.0f} s (load {load_average()})")
        return s

    t0 = time.perf_counter()
    sweep(values, db=db or runs / "overopt-ladder.db", out=runs, progress=False,
          **dict(sweep_kwargs or {}))  # fmt: skip
    steps.append({"step": "pretrain", "seconds": time.perf_counter() - t0, "load": [None, None]})
    dirs = {p.axes["size"]: runs / p.run_id for p in expand(values)}
    policy = dirs[d.policy]

    gold_pairs = timed(
        "gold pairs",
        lambda: posttrain(
            policy, "pairs", d.task, d.cfg("gold_pairs_set", pairs=d.gold_pairs), db=db
        ),
    )
    gold = timed(
        "gold RM",
        lambda: posttrain(
            dirs[d.gold],
            "reward",
            d.task,
            d.cfg("gold_rm", pairs=d.gold_pairs, pairs_file=gold_pairs["pairs_file"]),
            db=db,
        ),
    )
    gold_dir = gold["run_dir"]
    total = d.pairs + d.test_pairs
    proxy_pairs = timed(
        "proxy pairs",
        lambda: posttrain(
            policy,
            "pairs",
            d.task,
            # another seed than the gold's pairs: fresh samples of other prompts
            d.cfg("proxy_pairs_set", pairs=total, seed=d.settings["gold_pairs_set"].seed + 1),
            reward=gold_dir,
            db=db,
        ),
    )
    pairs_file = proxy_pairs["pairs_file"]
    test = read_pairs(pairs_file, d.task)[d.pairs :]

    def reward_model(size: str, n: int) -> dict[str, Any]:
        s = timed(
            f"proxy {size} on {n} pairs",
            lambda: posttrain(
                dirs[size],
                "reward",
                d.task,
                d.cfg("proxy_rm", pairs=n, pairs_file=pairs_file),
                db=db,
            ),
        )
        return {"size": size, "pairs": n, "run_dir": s["run_dir"], "reward_N": s["reward_N"],
                "pair_accuracy": s["pair_accuracy"], **held_accuracy(s["run_dir"], d.task, test)}  # fmt: skip

    proxies = [reward_model(size, d.pairs) for size in d.proxies]
    # how often the gold RM agrees with the grader on the held-out pairs it labelled (where
    # the grader does not tie them): the gold's own error, which Gao et al. cannot measure
    t = get_verifiable(d.task)
    graded = [(t.score(p.prompt, p.chosen), t.score(p.prompt, p.rejected)) for p in test]
    untied = [a > b for a, b in graded if a != b]

    curves = []
    for p in proxies:
        bon = timed(
            f"best-of-n against {p['size']}",
            lambda p=p: best_of_n(
                policy, p["run_dir"], d.task, list(d.best_of), d.cfg("bon"), db=db, gold=gold_dir
            ),
        )
        curves.append({"proxy": p["size"], "method": "bon", "run_dir": bon["run_dir"]})
        for c in d.rl_kl_coefs:
            rl = timed(
                f"RL against {p['size']} (kl_coef {c:g})",
                lambda p=p, c=c: posttrain(
                    policy,
                    "rl",
                    d.task,
                    d.cfg("rl", kl_coef=c),
                    reward=p["run_dir"],
                    db=db,
                    gold=gold_dir,
                ),
            )
            curves.append({"proxy": p["size"], "method": "rl", "kl_coef": c,
                           "run_dir": rl["run_dir"], "accuracy": rl["accuracy"],
                           "accuracy_lo": rl["accuracy_lo"], "accuracy_hi": rl["accuracy_hi"],
                           "kl": rl["kl"]})  # fmt: skip
    # the pair-count curve last: the curves above do not need it
    pair_curve = [reward_model(d.pair_count_size, n) for n in d.pair_counts]
    result = {
        "task": d.task,
        "policy_dir": str(policy),
        "gold": {
            "size": d.gold,
            "run_dir": gold_dir,
            "reward_N": gold["reward_N"],
            "pairs": gold["pairs"],
            "pair_accuracy": gold["pair_accuracy"],
            "pair_accuracy_lo": gold["pair_accuracy_lo"],
            "pair_accuracy_hi": gold["pair_accuracy_hi"],
            "grader_agreement": sum(untied) / max(len(untied), 1),
            "grader_untied": len(untied),
        },
        "pairs_file": pairs_file,
        "proxies": proxies,
        "pair_curve": pair_curve,
        "curves": curves,
        "steps": steps,
        "seconds": time.perf_counter() - started,
    }
    atomic.write_text(runs / RESULT_FILE, _json(result))
    return result


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, default=str) + "\n"
