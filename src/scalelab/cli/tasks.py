"""Downstream tasks: ``tasks``, ``eval``, ``finetune``, ``intrinsic``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from scalelab.cli._app import QuietOption, app, console, number, one_of, say
from scalelab.errors import ConfigError
from scalelab.intrinsic.options import PROJECTIONS
from scalelab.tasks.finetune import METHODS as FINETUNE_METHODS

PANEL = "Downstream tasks"

TaskOption = Annotated[
    list[str], typer.Option("--task", help="A task name (repeatable); scalelab tasks lists them.")
]
OptionalDb = Annotated[
    Path | None, typer.Option("--db", help="Also record the result in this results store.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NoVerifyOption = Annotated[
    bool,
    typer.Option(
        "--no-verify",
        help="Read a Hugging Face export without checking its checksums (a hand-made export).",
    ),
]


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in ("task", "kind", "metric", "phase") else "right")
    for r in rows:
        table.add_row(*(Text(c) for c in r))
    console.print(table)


def _pct(v: Any) -> str:
    return "" if v is None else f"{100 * float(v):.1f}%"


@app.command("tasks", rich_help_panel=PANEL)
def tasks_cmd(as_json: JsonOption = False) -> None:
    """List the downstream tasks: name, kind, metric and chance level."""
    from scalelab.tasks import tasks_table

    table = tasks_table()
    if as_json:
        print(json.dumps(table.to_dict(orient="records"), indent=1))
        return
    rows = [[r.name, r.kind, r.metric, _pct(r.chance), r.description] for r in table.itertuples()]
    _table("downstream tasks", ["task", "kind", "metric", "chance", "what"], rows)


@app.command("eval", rich_help_panel=PANEL)
def eval_cmd(
    run: Annotated[str, typer.Argument(help="A run directory (RUNS/<run id>).")],
    task: TaskOption,
    n: Annotated[str, typer.Option("--items", help="Items per task (at most; 0: all).")] = "500",
    items_seed: Annotated[
        int, typer.Option("--items-seed", help="Seed of the draw of items from the pool.")
    ] = 0,
    db: OptionalDb = None,
    as_json: JsonOption = False,
    no_verify: NoVerifyOption = False,
) -> None:
    """Score a run zero-shot on tasks: accuracy with its 95% Wilson interval, written to
    RUN/tasks.json (and the store's tasks table with --db)."""
    from scalelab.cli import checks
    from scalelab.tasks import evaluate

    checks.store(db)
    checks.seed(items_seed, "--items-seed")
    items = None if n.strip() == "0" else int(number(n, "--items", integer=True))
    df = evaluate(run, task, n=items, seed=items_seed, db=db, verify=not no_verify)
    if as_json:
        print(json.dumps(df.to_dict(orient="records"), indent=1))
        return
    rows = [
        [r.task, str(r.n), _pct(r.accuracy), f"[{_pct(r.lo)}, {_pct(r.hi)}]", _pct(r.chance)]
        for r in df.itertuples()
    ]
    _table(f"run {Path(run).name}", ["task", "items", "accuracy", "95% interval", "chance"], rows)


@app.command("finetune", rich_help_panel=PANEL)
def finetune_cmd(
    run: Annotated[str, typer.Argument(help="A run directory (RUNS/<run id>).")],
    task: Annotated[str, typer.Option("--task", help="A fine-tune task (scalelab tasks).")],
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help=f"finetune.key=value (method={'|'.join(FINETUNE_METHODS)}, lr, steps, patience, ...).",
        ),
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="The fine-tune's directory (default beside RUN).")
    ] = None,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
    no_verify: NoVerifyOption = False,
) -> None:
    """Fine-tune a run on a task in its own run directory (linked to RUN; resumable)."""
    from scalelab.cli import checks
    from scalelab.tasks.finetune import finetune, finetune_config

    checks.store(db)
    cfg = finetune_config(overrides or [])
    res = finetune(
        run,
        task,
        cfg,
        out=out,
        db=db,
        log=None if quiet or as_json else say,
        verify=not no_verify,
    )
    if as_json:
        print(json.dumps(res.to_dict(), indent=1))
        return
    say(
        f"{res.task} ({res.method}, {res.trainable_params:,} trainable): test accuracy "
        f"{_pct(res.test_accuracy)} [{_pct(res.test_lo)}, {_pct(res.test_hi)}] on {res.n_test}, "
        f"chance {_pct(res.chance)}; best validation {_pct(res.val_accuracy)} at step "
        f"{res.best_step} ({res.status}); {res.run_dir}"
    )


def _dims(text: str) -> list[int]:
    try:
        dims = [int(number(p, "--dims", integer=True)) for p in text.split(",") if p.strip()]
    except ConfigError:
        raise ConfigError(f"--dims takes whole numbers separated by commas, got {text!r}") from None
    if not dims:
        raise ConfigError("--dims needs at least one dimension, e.g. 10,30,100,300")
    return dims


@app.command("intrinsic", rich_help_panel=PANEL)
def intrinsic_cmd(
    run: Annotated[str, typer.Argument(help="A run directory (RUNS/<run id>).")],
    task: Annotated[
        str,
        typer.Option("--task", help="A fine-tune task, or lm: pretraining from scratch."),
    ],
    dims: Annotated[
        str, typer.Option("--dims", help="Sweep of subspace sizes d, e.g. 10,30,100,300,1000.")
    ] = "10,30,100,300,1000,3000",
    projection: Annotated[
        str, typer.Option("--projection", help=f"{one_of(PROJECTIONS)}.")
    ] = "fastfood",
    said: Annotated[bool, typer.Option("--said", help="SAID per-layer scales.")] = False,
    initial: Annotated[
        bool, typer.Option("--initial", help="From the run's weights before pretraining.")
    ] = False,
    steps: Annotated[int, typer.Option("--steps", help="Updates per trial.")] = 200,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate of z.")] = 0.1,
    full_lr: Annotated[
        float, typer.Option("--full-lr", help="Learning rate of full fine-tuning.")
    ] = 1e-3,
    full_steps: Annotated[
        int | None, typer.Option("--full-steps", help="Updates of full fine-tuning (--steps).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of P and of the head.")] = 0,
    db: OptionalDb = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
    no_verify: NoVerifyOption = False,
) -> None:
    """d90 of fine-tuning a run on a task: the smallest random subspace reaching 90% of full
    fine-tuning's validation accuracy (geometric sweep, then bisection)."""
    from scalelab.cli import checks
    from scalelab.intrinsic import run_intrinsic

    checks.store(db)
    checks.seed(seed, "--seed")
    checks.rate(lr, "--lr")
    checks.rate(full_lr, "--full-lr")
    checks.count(steps, "--steps")
    checks.count(full_steps, "--full-steps")
    res = run_intrinsic(
        run,
        task,
        dims=_dims(dims),
        projection=projection,
        said=said,
        initial=initial,
        steps=steps,
        lr=lr,
        full_lr=full_lr,
        full_steps=full_steps,
        seed=seed,
        db=db,
        log=None if quiet or as_json else say,
        verify=not no_verify,
    )
    if as_json:
        print(json.dumps(res.to_dict(), indent=1))
        return
    rows = [
        [str(t.d), t.phase, f"{t.performance:.4f}", f"{t.loss:.4f}", f"{t.seconds:.1f}"]
        for t in res.curve().itertuples()
    ]
    _table(f"{task}: {projection}", ["d", "phase", "performance", "loss", "seconds"], rows)
    found = (
        f"d90 = {res.d90}"
        if res.d90 is not None
        else res.note or "no d in the sweep reached the target"
    )
    say(
        f"{found} (target {res.target:.4f} = {res.threshold:g} x full {res.full_performance:.4f}, "
        f"D = {res.D:,}; {res.seconds:.0f} s)"
    )
