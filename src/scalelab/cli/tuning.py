"""Searches: ``tune`` (an Optuna search per size of a study) and ``tuned`` (what it found)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from scalelab.cli._app import (
    DEFAULT_DB,
    DEFAULT_RUNS,
    AddressOption,
    BackendOption,
    BootstrapOption,
    DbOption,
    QuietOption,
    RunsOption,
    StudyOption,
    ThreadsOption,
    WorkersOption,
    app,
    count_option,
    number,
    one_of,
    out_file,
    out_folder,
    say,
    warn,
)
from scalelab.errors import ConfigError
from scalelab.tune.space import SAMPLERS

PANEL = "Tune"


def _needs_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("scalelab tune needs Optuna: pip install 'scalelab[tune]'") from None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.4g}"
    return "-" if v is None else str(v)


def _best_table(best: Any, title: str) -> None:
    from rich.table import Table

    from scalelab.cli._app import console

    keys = [c for c in best.columns if "." in c and not c.endswith(("_lo", "_hi"))]
    table = Table(title=title, title_justify="left")
    for col in ("size", "sampler", "N", "trials", "pruned", "failed", "best", *keys, "near"):
        table.add_column(col, justify="left" if col in ("size", "sampler") else "right")
    for r in best.to_dict("records"):
        cells = [_fmt(r.get(c)) for c in ("size", "sampler", "N", "trials", "pruned", "failed")]
        cells.append(_fmt(r.get("best")))
        for k in keys:
            lo, hi = r.get(f"{k}_lo"), r.get(f"{k}_hi")
            near = f" [{_fmt(lo)}, {_fmt(hi)}]" if lo is not None and lo != hi else ""
            cells.append(_fmt(r.get(k)) + near)
        cells.append(_fmt(r.get("near")))
        table.add_row(*cells)
    console.print(table)


@app.command("tune", rich_help_panel=PANEL)
def tune_cmd(
    study: Annotated[Path, typer.Argument(help="A study TOML with [tune] and [tune.space].")],
    db: DbOption = DEFAULT_DB,
    runs: RunsOption = DEFAULT_RUNS,
    trials: Annotated[
        str | None, typer.Option("--trials", help="Trials per size (default tune.trials).")
    ] = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    sampler: Annotated[
        str | None,
        typer.Option("--sampler", help=f"{one_of(SAMPLERS)} (default tune.sampler)."),
    ] = None,
    quiet: QuietOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search hyperparameters per size: every trial a run (kind "trial") in the store; the
    same command continues a stopped search."""
    _needs_optuna()
    from scalelab.tune import tune

    out_folder(runs, "--runs")
    out_file(db, "--db")
    n = count_option(trials, "--trials", allow_zero=False) if trials is not None else None
    try:
        res = tune(
            study,
            db=db,
            out=runs,
            trials=n,
            workers=workers,
            threads=threads,
            backend=backend,
            address=address,
            sampler=sampler,
            progress=not quiet and not as_json,
            log=say if not (quiet or as_json) else (lambda _s: None),
        )
    except KeyboardInterrupt:
        warn("interrupted: finished trials are kept; run the same command again to continue")
        raise typer.Exit(130) from None
    if as_json:
        print(json.dumps({
            "study": res.study,
            "sampler": res.spec.sampler,
            "wall_seconds": res.wall_seconds,
            "groups": [g.__dict__ for g in res.groups],
            "trials": [t.__dict__ for t in res.trials],
        }, indent=1, default=str))  # fmt: skip
        return
    for g in res.groups:
        vals = ", ".join(f"{k}={_fmt(v)}" for k, v in g.best_params.items())
        best = f"{g.best_value:.4f} at {vals}" if g.best_value is not None else "none yet"
        say(f"{g.axes.get('size', g.base_run_id)}: {g.n_trials} trials, best {best}")
    say(f"{len(res.trials)} trials now in {res.wall_seconds:.1f} s; points in {db}")


@app.command("tuned", rich_help_panel=PANEL)
def tuned_cmd(
    db: DbOption = DEFAULT_DB,
    study: StudyOption = None,
    fit: Annotated[
        list[str] | None,
        typer.Option("--fit", help="Fit this searched key's best value against N (repeatable)."),
    ] = None,
    at: Annotated[
        list[str] | None,
        typer.Option("--at", help="Name the fitted value at this N (e.g. 1e8; repeatable)."),
    ] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="Only the searches of this sampler.")
    ] = None,
    within: Annotated[
        float, typer.Option("--within", help="Relative gap to the best that counts as near.")
    ] = 0.01,
    bootstrap: BootstrapOption = "1000",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the fitted laws to this JSON file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The best trial per size, the neighbourhood of its optimum, and (--fit train.lr) the
    power law of the best value against N, to name it for an untuned size (--at 1e8)."""
    from scalelab.tune import best_trials, fit_hyperparameter

    # every option is read before the store is: a bad one is reported whatever the store holds
    n_boot = count_option(bootstrap, "--bootstrap")
    points = [number(a, "--at") for a in at or []]
    if at and not fit:
        raise ConfigError("--at names a fitted value: add --fit KEY (e.g. --fit train.lr)")
    out_file(out, "--out")
    best = best_trials(db, study, within=within, sampler=sampler)
    laws = [fit_hyperparameter(best, key, bootstrap=n_boot) for key in fit or []]
    fits = [{**law.to_dict(), "at": {f"{n:g}": law.predict(n) for n in points}} for law in laws]
    if out is not None:
        from scalelab.rundir import write_json as write_json_atomic

        write_json_atomic(out, fits)
    if as_json:
        rows = json.loads(best.to_json(orient="records"))
        print(json.dumps({"best": rows, "fits": fits}, indent=1))
        return
    _best_table(best, f"best trial per size ({study or 'all studies'})")
    for f in fits:
        ci = f["ci"].get("alpha")
        ci_s = f" (95% CI {ci[0]:.3g} to {ci[1]:.3g})" if ci else ""
        say(f"{f['key']}*(N) = {f['k']:.4g} N^-{f['alpha']:.3f}{ci_s} over {f['n_points']} sizes")
        for n, v in f["at"].items():
            say(f"  at N = {n}: {f['key']} = {v:.4g}")
