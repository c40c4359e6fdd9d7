"""Post-training: ``posttrain``, ``bon``, ``overopt`` (Gao et al.'s design as one driver) and
``demos`` (a task's pretraining corpus)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scalelab.cli._app import DEFAULT_RUNS, QuietOption, RunsOption, app, number, one_of, say
from scalelab.errors import ConfigError
from scalelab.posttrain.api import METHODS
from scalelab.posttrain.tasks import VERIFIABLE

PANEL = "Post-training"

GoldOption = Annotated[
    str | None,
    typer.Option(
        "--gold",
        help="The gold reward: grader (default) or a gold reward-model stage (Gao et al.).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="posttrain.key=value (steps, lr, batch_size, beta, loss, group, kl_coef, pairs, "
        "pairs_file, ...).",
    ),
]
TaskOption = Annotated[
    str,
    typer.Option(
        "--task", help=f"A generative task with a grader: {one_of(VERIFIABLE, last='or')}."
    ),
]
OutOption = Annotated[
    str | None, typer.Option("--out", help="The stage's directory (default beside RUN).")
]
OptionalDb = Annotated[
    Path | None, typer.Option("--db", help="Also record the points in this results store.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


# The posttrain keys each method reads (scalelab.posttrain: the shared loop reads the
# training keys; sft/rl/dpo score eval_prompts; dpo/rl/bon measure KL on kl_prompts). A
# --set key outside its method's set has no effect there and is refused (issue 22).
_TRAIN = {"lr", "steps", "batch_size", "weight_decay", "eval_every", "checkpoint_every", "seed"}
READS: dict[str, set[str]] = {
    "sft": _TRAIN | {"eval_prompts"},
    "reward": _TRAIN | {"pairs", "pairs_file", "holdout"},
    "dpo": _TRAIN | {"pairs", "pairs_file", "beta", "loss", "label_smoothing", "rpo_alpha",
                     "chosen_right", "eval_prompts", "kl_prompts"},
    "rl": _TRAIN | {"group", "clip", "kl_coef", "updates", "temperature", "top_k",
                    "eval_prompts", "kl_prompts"},
    "pairs": {"pairs", "seed"},
    "eval": {"eval_prompts", "seed"},
    "bon": {"kl_prompts", "seed"},
}  # fmt: skip


def _check_reads(method: str, overrides: list[str]) -> None:
    """Refuse a --set posttrain.KEY that ``method`` does not read (whatever its value)."""
    if method not in READS:
        return  # an unknown method is refused by the stage's own checks, with the choices
    keys = [o.split("=", 1)[0].strip() for o in overrides]
    moot = [k for k in keys if k.startswith("posttrain.") and k[10:] not in READS[method]]
    if moot:
        what = "bon" if method == "bon" else f"--method {method}"
        raise ConfigError(
            f"--set {moot[0]} has no effect with {what} (it reads "
            f"{', '.join(sorted(READS[method]))}): drop it"
        )


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.1f}%"


def _line(s: dict[str, Any]) -> str:
    parts = [f"{s['method']} {s['task']}"]
    if s.get("accuracy") is not None and s["method"] != "bon":
        parts.append(
            f"accuracy {_pct(s['accuracy'])} [{_pct(s.get('accuracy_lo'))}, "
            f"{_pct(s.get('accuracy_hi'))}]"
        )
    for key, label in (
        ("gold_reward", "gold reward"),
        ("proxy_reward", "proxy reward"),
        ("kl", "KL"),
        ("pair_accuracy", "held-out pair accuracy"),
        ("pairs", "pairs"),
    ):
        if s.get(key) is not None:
            v = s[key]
            parts.append(f"{label} {v:.4g}" if isinstance(v, float) else f"{label} {v}")
    parts.append(f"FLOPs {s.get('flops', 0):.3g}")
    return "; ".join(parts) + f"; {s['run_dir']}"


@app.command("posttrain", rich_help_panel=PANEL)
def posttrain_cmd(
    run: Annotated[str, typer.Argument(help="The parent: a run or a stage directory.")],
    method: Annotated[str, typer.Option("--method", help=f"{one_of(METHODS)}.")],
    task: TaskOption,
    reward: Annotated[
        str | None,
        typer.Option(
            "--reward", help="grader (default) or a reward-model stage directory (rl, pairs)."
        ),
    ] = None,
    gold: GoldOption = None,
    overrides: SetOption = None,
    out: OutOption = None,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """One post-training stage in its own directory linked to RUN (resumable; a posttrain
    point with --db)."""
    from scalelab.cli import checks
    from scalelab.posttrain import posttrain, posttrain_config

    checks.store(db)
    cfg = posttrain_config(overrides or [])
    _check_reads(method, overrides or [])
    s = posttrain(
        run,
        method,
        task,
        cfg,
        reward=reward,
        out=out,
        db=db,
        log=None if quiet or as_json else say,
        gold=gold,
    )
    if as_json:
        print(json.dumps(s, indent=1, default=str))
        return
    say(_line(s))


def _ns(text: str) -> list[int]:
    try:
        parts = text.split(",")
        if any(not p.strip() for p in parts):
            raise ConfigError("an empty item")
        return [int(number(p, "--best-of", integer=True)) for p in parts]
    except ConfigError:
        raise ConfigError(
            f"--best-of takes whole numbers >= 1 separated by commas, got {text!r} "
            "(e.g. 1,4,16,64,256,1024)"
        ) from None


@app.command("bon", rich_help_panel=PANEL)
def bon_cmd(
    run: Annotated[str, typer.Argument(help="The policy: a run or a stage directory.")],
    reward: Annotated[str, typer.Option("--reward", help="The proxy: a reward-model stage.")],
    task: TaskOption,
    n: Annotated[
        str,
        typer.Option(
            "--best-of", help="The n of best-of-n: samples per prompt, e.g. 1,4,16,64,256,1024."
        ),
    ] = "1,4,16,64,256,1024",
    gold: GoldOption = None,
    overrides: SetOption = None,
    out: OutOption = None,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Best-of-n against a reward model: gold (grader) and proxy reward at each n, with the
    analytic KL = log n - (n-1)/n."""
    from scalelab.cli import checks
    from scalelab.posttrain import best_of_n, posttrain_config

    checks.store(db)
    cfg = posttrain_config(overrides or [])
    _check_reads("bon", overrides or [])
    ns = _ns(n)
    # kl_prompts x n samples are drawn and scored at once: bounded by the machine
    checks.count(max(ns), "--best-of", bytes_each=cfg.kl_prompts * 4096.0, maximum=2**20)
    s = best_of_n(
        run, reward, task, ns, cfg, out=out, db=db, log=None if quiet or as_json else say, gold=gold
    )
    if as_json:
        print(json.dumps(s, indent=1, default=str))
        return
    for c in s["curve"]:
        say(
            f"n {c['n']:>5}: KL {c['kl']:.3f}, gold reward {c['gold_reward']:.4f} "
            f"[{c['gold_reward_lo']:.4f}, {c['gold_reward_hi']:.4f}], proxy {c['proxy_reward']:.4f}"
        )
    say(s["run_dir"])


@app.command("overopt", rich_help_panel=PANEL)
def overopt_cmd(
    study: Annotated[str, typer.Argument(help="A study TOML file with an [overopt] table.")],
    db: OptionalDb = None,
    runs: RunsOption = DEFAULT_RUNS,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Reward-model overoptimisation by Gao et al.'s protocol: the ladder, a gold reward model
    on grader-labelled pairs, proxies of each size on gold-labelled pairs, best-of-n and RL
    against each (resumable; scalelab.posttrain.overopt)."""
    from scalelab.posttrain.overopt import RESULT_FILE, run_overopt

    r = run_overopt(study, db=db, runs=runs, log=None if quiet or as_json else say)
    if as_json:
        print(json.dumps(r, indent=1, default=str))
        return
    g = r["gold"]
    say(
        f"gold RM {g['size']} ({g['reward_N']:,}): held-out pair accuracy {_pct(g['pair_accuracy'])}"
    )
    for p in r["proxies"]:
        say(
            f"proxy {p['size']} ({p['reward_N']:,}): test pair accuracy "
            f"{_pct(p['test_accuracy'])} [{_pct(p['test_accuracy_lo'])}, "
            f"{_pct(p['test_accuracy_hi'])}]"
        )
    say(f"{r['seconds']:.0f} s; {Path(runs) / RESULT_FILE}")


@app.command("demos", rich_help_panel=PANEL)
def demos_cmd(
    task: TaskOption,
    out: Annotated[str, typer.Option("--out", help="The JSON-lines file to write.")],
    n: Annotated[str, typer.Option("--count", help="Demonstrations (training prompts).")] = "20000",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the draw.")] = 0,
) -> None:
    """A task's training demonstrations as a pretraining corpus: use it as
    data.corpus = 'jsonl:PATH:text' with data.tokenizer = 'bytes'."""
    from scalelab.cli import checks
    from scalelab.posttrain import get_verifiable, write_corpus

    get_verifiable(task)
    count = int(number(n, "--count", integer=True))
    checks.count(count, "--count", bytes_each=256.0, maximum=10**8)  # a line is ~30 bytes
    checks.seed(seed, "--seed")
    checks.out_file(out, "--out")  # never a store, a run's file or a folder
    path = write_corpus(task, out, count, seed)
    say(f"{count} {task} demonstrations in {path} (corpus 'jsonl:{path}:text', tokenizer bytes)")
