"""Laws and plans: ``fit``, ``plan``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from scalelab.cli import render
from scalelab.cli._app import (
    DEFAULT_DB,
    BootstrapOption,
    BootstrapSeedOption,
    StudyOption,
    app,
    count_option,
    number,
    one_of,
    say,
    warn,
)
from scalelab.errors import FitError, StoreError
from scalelab.laws.forms import FORM_TABLE, GAO_FORMS, ONE_VARIABLE
from scalelab.laws.options import RESAMPLING, REWARDS, VARIABLES
from scalelab.outputs import FINISHED

AUTO = "auto"  # choose the form by how well it predicts the larger sizes (select_law)
# the allocation fits of --form: Hoffmann et al. 2022's approach of each
ALLOCATIONS = {"isoflop": 2, "envelope": 1}


def _read_csv(db: Path | None, csv: Path | None, study: str | None) -> Any:
    """The points of ``--csv`` as a DataFrame, or None when they come from a store (``--db``);
    the two together, or ``--study`` with a CSV, are refused."""
    import pandas as pd

    if db is not None and csv is not None:
        raise FitError("give the points either with --db STORE or with --csv FILE, not both")
    if csv is None:
        return None
    if study is not None:
        raise FitError("--study selects points of a store (--db); a --csv file has none")
    try:
        return pd.read_csv(csv)
    except FileNotFoundError:
        raise FitError(f"--csv {str(csv)!r} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise FitError(f"cannot read --csv {str(csv)!r} as CSV: {e}") from None


def _store(db: Path | None, make: str) -> Path:
    """The store of ``--db`` (default results.db), which must exist; ``make`` says how to
    make one (``{db}`` stands for its path)."""
    db = db or DEFAULT_DB
    if not db.is_file():
        raise StoreError(
            f"no results store at {str(db)!r}: {make.format(db=db)} first, or give the "
            "points with --csv FILE"
        )
    return db


def read_points(
    db: Path | None, csv: Path | None, arch: str | None, study: str | None, n: str
) -> Any:
    """The points to fit, one per run, from a store or a CSV, filtered to one architecture."""
    df = _read_csv(db, csv, study)
    if df is None:
        from scalelab.results import load_points

        db = _store(db, "run `scalelab sweep STUDY.toml --db {db}`")
        # finished and stopped-early runs (the latter with their best loss), one point per
        # run even where a run belongs to several studies, plain runs only (no technique)
        df = load_points(db, n=n, study=study, kind="run", one_per_run=True)
    elif "status" in df.columns:
        done = df["status"].astype(str).isin(FINISHED)  # done, or stopped early with its best loss
        if not done.all():
            warn(f"note: {int((~done).sum())} point(s) of runs that did not finish left out")
        df = df[done]
    if "arch" in df.columns:
        archs = sorted(map(str, df["arch"].dropna().unique()))
        if arch is not None:
            if arch not in archs:
                raise FitError(f"--arch {arch!r}: no points; the points have {', '.join(archs)}")
            df = df[df["arch"] == arch]
        elif len(archs) > 1:
            raise FitError(
                f"the points mix architectures ({', '.join(archs)}): one law per "
                "architecture; choose one with --arch"
            )
    elif arch is not None:
        raise FitError("--arch given but the points have no 'arch' column")
    return df


def read_posttrain_points(
    db: Path | None, csv: Path | None, arch: str | None, study: str | None
) -> Any:
    """The points of kind ``posttrain`` of a store (their ``extra_json`` keys as columns),
    or a CSV's rows, for the Gao laws."""
    df = _read_csv(db, csv, study)
    if df is None:
        from scalelab.results import load_points

        db = _store(db, "run `scalelab bon` or `scalelab posttrain` with --db {db}")
        # the posttrain numbers (kl, rewards, method, reward model) live in extra_json
        df = load_points(db, study=study, kind="posttrain", extra=True)
        if df.empty:
            raise FitError(
                f"the store {db} holds no posttrain points: run `scalelab bon` or "
                "`scalelab posttrain --method rl` with --db first"
            )
    if arch is not None:
        if "arch" not in df.columns or arch not in set(df["arch"].astype(str)):
            raise FitError(f"--arch {arch!r}: no posttrain points of that architecture")
        df = df[df["arch"] == arch]
    return df


def fit_gao_cmd(
    df: Any,
    form: str,
    *,
    reward: str,
    bootstrap: int,
    seed: int,
    fix: dict[str, float] | None,
    as_json: bool,
    out: Path | None,
) -> None:
    """One Gao law per curve (policy x reward model), and the coefficients' trends against
    the reward model's size where there are curves at two sizes or more."""
    from scalelab.laws.gao import coefficient_trend, fit_gao_curves

    curves = fit_gao_curves(df, form, reward=reward, bootstrap=bootstrap, seed=seed, fix=fix)
    if out is not None and len(curves) > 1:
        raise FitError(
            f"--out writes one law; the points hold {len(curves)} curves: select one "
            "(--study, or a CSV of one curve)"
        )
    sizes = {c.reward_N for c in curves if c.reward_N}
    trends = []
    if len(sizes) >= 2:
        free = [k for k in ("alpha", "beta", "R0") if k not in (fix or {})]
        trends = [coefficient_trend(curves, k) for k in free]
    if out is not None:
        curves[0].law.save(out)
    if as_json:
        payload = {
            "form": form,
            "reward": reward,
            "curves": [c.to_dict() for c in curves],
            "trends": trends,
        }
        print(json.dumps(payload, indent=1, default=float))
        return
    if len(curves) == 1:
        render.law(curves[0].law)
        say(curves[0].law.notes or "")
    else:
        render.gao_curves(curves, trends)
    if out is not None:
        say(f"wrote {out}")


def parse_fix(items: list[str]) -> dict[str, float]:
    """``--fix E=1.69`` (repeatable) as {"E": 1.69}."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise FitError(f"--fix {item!r}: write NAME=VALUE, e.g. --fix E=1.69")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise FitError(f"--fix {item!r}: {value!r} is not a number") from None
    return out


PANEL = "Laws and plans"


@app.command("fit", rich_help_panel=PANEL)
def fit_cmd(
    db: Annotated[
        Path | None,
        typer.Option("--db", help="The SQLite results store (default results.db)."),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="CSV of points: N, D, loss (+ unique_tokens, C).")
    ] = None,
    form: Annotated[
        str,
        typer.Option(
            "--form",
            help=" | ".join(n for n, e in FORM_TABLE.items() if e.fits == "loss")
            + f"; {' | '.join(GAO_FORMS)} (Gao et al. 2022: reward against sqrt(KL) on "
            "posttrain points, one law per curve); auto: the one of --forms that best predicts "
            "the largest sizes from the smaller; or an allocation fit: "
            + " | ".join(f"{a} (approach {n})" for a, n in ALLOCATIONS.items())
            + ".",
        ),
    ] = "chinchilla",
    forms: Annotated[
        str,
        typer.Option("--forms", help="--form auto: the candidates, comma-separated."),
    ] = "chinchilla,chinchilla-tied,overtrain",
    holdout: Annotated[
        int, typer.Option("--holdout", help="--form auto: the largest sizes held out, one by one.")
    ] = 2,
    fix: Annotated[
        list[str] | None,
        typer.Option("--fix", help="Hold a parameter at a value, e.g. --fix E=1.69 (repeatable)."),
    ] = None,
    min_n: Annotated[
        str | None, typer.Option("--min-n", help="Fit only points with N >= this, e.g. 1e8.")
    ] = None,
    min_c: Annotated[
        str | None, typer.Option("--min-c", help="Fit only points with C >= this, e.g. 1e19.")
    ] = None,
    resample: Annotated[
        str,
        typer.Option(
            "--resample",
            help=f"Bootstrap resamples: {one_of(RESAMPLING)} (row: points; size: whole "
            "model sizes).",
        ),
    ] = "row",
    study: StudyOption = None,
    n: Annotated[
        str, typer.Option("--n", help="N as non_embedding, total or active (store points).")
    ] = "non_embedding",
    x: Annotated[
        str | None,
        typer.Option("--x", help=f"Variable of {'/'.join(ONE_VARIABLE)}: {one_of(VARIABLES)}."),
    ] = None,
    bootstrap: BootstrapOption = "200",
    bootstrap_seed: BootstrapSeedOption = 0,
    base: Annotated[
        str | None,
        typer.Option("--base", help="data-constrained: base law held fixed (preset or FIT.json)."),
    ] = None,
    delta: Annotated[
        float, typer.Option("--delta", help="Huber threshold on log residuals.")
    ] = 1e-3,
    arch: Annotated[
        str | None, typer.Option("--arch", help="Fit only this architecture's points.")
    ] = None,
    extrapolation: Annotated[
        bool, typer.Option("--extrapolation/--no-extrapolation", help="Leave-largest-out check.")
    ] = True,
    reward: Annotated[
        str,
        typer.Option(
            "--reward", help=f"{', '.join(GAO_FORMS)}: the reward fitted, {one_of(REWARDS)}."
        ),
    ] = "gold",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the law (FIT.json) for `plan --law`.")
    ] = None,
) -> None:
    """Fit a scaling law to points (Huber on log residuals, L-BFGS, bootstrap intervals)."""
    from scalelab.errors import did_you_mean
    from scalelab.laws import envelope, fit_law, isoflop

    choices = (*FORM_TABLE, AUTO, *ALLOCATIONS)
    if form not in choices:
        raise FitError(
            f"unknown --form {form!r}{did_you_mean(form, choices)}; choose from {choices}"
        )
    n_boot = count_option(bootstrap, "--bootstrap")
    if not math.isfinite(delta) or delta <= 0:
        raise FitError(f"--delta {delta}: give a positive Huber threshold such as 1e-3")
    if out is not None and out.is_dir():
        raise FitError(f"--out {str(out)!r} is a directory: give the path of a .json file")
    from scalelab.cli import checks

    checks.out_file(out, "--out")
    if form != AUTO:  # given explicitly, even with its default value, an option is refused
        typed = checks.given("forms", "holdout")
        checks.unused(
            {
                "--forms": forms if typed["forms"] else None,
                "--holdout": holdout if typed["holdout"] else None,
            },
            f"with --form {form} (they choose among forms: --form auto)",
        )
    fixed = parse_fix(fix or [])
    bounds = {
        "min_n": None if min_n is None else number(min_n, "--min-n"),
        "min_c": None if min_c is None else number(min_c, "--min-c"),
    }
    if form in GAO_FORMS:
        if x is not None or base is not None or resample != "row" or any(bounds.values()):
            raise FitError(
                f"--form {form} fits a reward against sqrt(KL): --x, --base, --resample, "
                "--min-n and --min-c apply to laws of loss"
            )
        fit_gao_cmd(
            read_posttrain_points(db, csv, arch, study),
            form,
            reward=reward,
            bootstrap=n_boot,
            seed=bootstrap_seed,
            fix=fixed or None,
            as_json=as_json,
            out=out,
        )
        return
    df = read_points(db, csv, arch, study, n)
    if form == AUTO:
        from scalelab.laws import select_law

        if x is not None or base is not None or resample != "row":
            raise FitError(
                "--form auto chooses among laws of N and D and resamples whole sizes: "
                "--x, --base and --resample apply to a named --form"
            )

        sel = select_law(
            df,
            forms.split(","),
            holdout,
            fix=fixed or None,
            bootstrap=n_boot,
            seed=bootstrap_seed,
            delta=delta,
            **bounds,
        )
        if out is not None:
            sel.law.save(out)
        if as_json:
            print(json.dumps(sel.law.to_dict(samples=False), indent=1))
        else:
            render.selection(sel)
            render.law(sel.law)
            if out is not None:
                say(f"wrote {out}")
        for note in sel.notes:
            warn(f"note: {note}")
        return
    if form in ALLOCATIONS:
        if out is not None:
            raise FitError("--out writes laws for `plan`; an allocation fit has no law to write")
        alloc = (isoflop if form == "isoflop" else envelope)(
            df, bootstrap=n_boot, seed=bootstrap_seed
        )
        if as_json:
            print(json.dumps(alloc.to_dict(), indent=1, default=float))
        else:
            render.allocation(alloc)
        return
    result = fit_law(
        df,
        form,
        x=x,
        bootstrap=n_boot,
        seed=bootstrap_seed,
        delta=delta,
        extrapolation=extrapolation,
        base=base,
        fix=fixed or None,
        resample=resample,
        **bounds,
    )
    if out is not None:
        result.save(out)
    if as_json:
        print(json.dumps(result.to_dict(samples=False), indent=1))
    else:
        render.law(result)
        if out is not None:
            say(f"wrote {out}")


@app.command("plan", rich_help_panel=PANEL)
def plan_cmd(
    compute: Annotated[
        list[str] | None,
        typer.Option(
            "--compute", help="Training FLOPs (C = 6ND), e.g. 1e21; repeat for several budgets."
        ),
    ] = None,
    target_loss: Annotated[
        float | None,
        typer.Option("--target-loss", help="Instead: the compute needed to reach this loss."),
    ] = None,
    law: Annotated[
        str,
        typer.Option(
            "--law",
            help="A law: FIT.json from `fit --out`, or a published one (`scalelab presets --laws`).",
        ),
    ] = "epoch2024",
    unique_tokens: Annotated[
        str | None,
        typer.Option(
            "--unique-tokens", help="Unique tokens available, e.g. 1e11 (data-constrained)."
        ),
    ] = None,
    hyper: Annotated[
        Path | None,
        typer.Option(
            "--hyper",
            help="Name hyperparameters for the planned N with the laws `tuned --fit KEY --out "
            "FILE` wrote.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Compute-optimal N and D for a compute budget, or the compute for a target loss."""
    from scalelab.laws import PlanError, resolve_law
    from scalelab.laws import plan as make_plan

    if not compute and target_loss is None:
        raise PlanError("give --compute FLOPS (one or more) or --target-loss LOSS")
    if compute and target_loss is not None:
        raise PlanError("give --compute or --target-loss, not both")
    if target_loss is not None and not (math.isfinite(target_loss) and target_loss > 0):
        raise PlanError(f"--target-loss {target_loss}: give a finite loss > 0 (nats per token)")
    budgets = [number(c, "--compute") for c in compute or []]
    unique = None if unique_tokens is None else number(unique_tokens, "--unique-tokens")
    tuned = []
    if hyper is not None:
        from scalelab.tune.trends import load_hyperparameter_laws

        tuned = load_hyperparameter_laws(hyper)
    the_law = resolve_law(law)
    if target_loss is not None:
        plans = [make_plan(the_law, target_loss=target_loss, unique_tokens=unique)]
    else:
        plans = [make_plan(the_law, c, unique_tokens=unique) for c in budgets]
    for p in plans:  # the planned size's hyperparameters, from the tuned ladder's laws
        p.hyperparameters = [h.name_at(p.N) for h in tuned]
    if as_json:
        payload = [p.to_dict() for p in plans]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=1))
        return
    for p in plans:
        render.plan(p, the_law)
