"""Post-training: ``posttrain``, ``bon``, ``overopt`` (Gao et al.'s design as one driver) and
``demos`` (a task's pretraining corpus)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scalelab.cli._app import QuietOption, app, number, one_of, say
from scalelab.errors import ConfigError
from scalelab.posttrain.api import METHODS
from scalelab.posttrain.tasks import VERIFIABLE

PANEL = "Post-training"

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
    gold: Annotated[
        str | None,
        typer.Option(
            "--gold",
            help="The gold reward: grader (default) or a gold reward-model stage (Gao et al.).",
        ),
    ] = None,
    overrides: SetOption = None,
    out: OutOption = None,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """One post-training stage in its own directory linked to RUN (resumable; a posttrain
    point with --db)."""
    from scalelab.posttrain import posttrain, posttrain_config

    cfg = posttrain_config(overrides or [])
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
        return [int(number(p, "--best-of", integer=True)) for p in text.split(",") if p.strip()]
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
    gold: Annotated[
        str | None,
        typer.Option(
            "--gold",
            help="The gold reward: grader (default) or a gold reward-model stage (Gao et al.).",
        ),
    ] = None,
    overrides: SetOption = None,
    out: OutOption = None,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Best-of-n against a reward model: gold (grader) and proxy reward at each n, with the
    analytic KL = log n - (n-1)/n."""
    from scalelab.posttrain import best_of_n, posttrain_config

    cfg = posttrain_config(overrides or [])
    s = best_of_n(
        run,
        reward,
        task,
        _ns(n),
        cfg,
        out=out,
        db=db,
        log=None if quiet or as_json else say,
        gold=gold,
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
    runs: Annotated[str, typer.Option("--runs", help="Directory of the runs.")] = "runs",
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
    from scalelab.posttrain import get_verifiable, write_corpus

    get_verifiable(task)
    count = int(number(n, "--count", integer=True))
    path = write_corpus(task, out, count, seed)
    say(f"{count} {task} demonstrations in {path} (corpus 'jsonl:{path}:text', tokenizer bytes)")
