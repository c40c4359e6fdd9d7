"""Studies: ``sweep``, ``points``, ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli import render
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
    one_of,
    out_file,
    out_folder,
    say,
    warn,
)
from scalelab.errors import ConfigError, StoreError
from scalelab.outputs import FINISHED
from scalelab.plugin import point_kinds

PANEL = "Studies"


@app.command("sweep", rich_help_panel=PANEL)
def sweep_cmd(
    study: Annotated[
        Path,
        typer.Argument(
            help="The study TOML: a study section plus shared model, data and train sections."
        ),
    ],
    db: DbOption = DEFAULT_DB,
    runs: RunsOption = DEFAULT_RUNS,
    workers: WorkersOption = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a shared key, section.key=value (repeatable)."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Train failed runs again.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Expand and validate the grid and list its runs; train nothing."
        ),
    ] = False,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Devices for the workers, comma-separated: cuda:0,cuda:1."),
    ] = None,
    threads: ThreadsOption = None,
    backend: BackendOption = "local",
    address: AddressOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run a study's grid: skip finished runs, resume interrupted ones, record points in the store."""
    from scalelab.results import load_points
    from scalelab.runner import sweep

    out_folder(runs, "--runs")
    out_file(db, "--db")
    try:
        res = sweep(
            study,
            db=db,
            out=runs,
            workers=workers,
            progress=not quiet,
            retry_failed=retry_failed,
            dry_run=dry_run,
            overrides=overrides or [],
            devices=[d.strip() for d in device.split(",") if d.strip()] if device else None,
            threads=threads,
            backend=backend,
            address=address,
        )
    except KeyboardInterrupt:
        warn(
            "interrupted: finished runs are kept; run the same command again to continue "
            "(interrupted runs resume from their last checkpoint)"
        )
        raise typer.Exit(130) from None
    if dry_run:  # nothing was written: the rows are the plan's
        rows = [{**row, "N": row.get("N_non_embedding")} for row in res.plan]
        for o, row in zip(res.runs, rows, strict=True):
            row["status"] = o.status or "planned"
            row["C"] = o.flops  # planned exact FLOPs
        render.points_table(
            rows, f"study {res.study}: {len(rows)} runs (dry run; C = planned FLOPs)"
        )
        return
    pts = load_points(db, study=res.study, status=None)
    by_id = {r["run_id"]: r for r in pts.to_dict("records")}
    rows = [{**by_id.get(o.run_id, {}), "run_id": o.run_id} for o in res.runs]
    render.points_table(rows, f"study {res.study}")
    busy = f", {res.busy} being trained by another process" if res.busy else ""
    say(
        f"{res.trained} trained, {res.skipped} skipped, {res.failed} failed{busy} "
        f"in {res.wall_seconds:.1f} s; points in {db}"
    )


@app.command("points", rich_help_panel=PANEL)
def points_cmd(
    db: DbOption = DEFAULT_DB,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Export the points to this CSV file.")
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="Export to Parquet (needs pyarrow).")
    ] = None,
    from_runs: Annotated[
        Path | None,
        typer.Option("--from-runs", help="Rebuild the store from this runs directory first."),
    ] = None,
    study: StudyOption = None,
    n: Annotated[
        str, typer.Option("--n", help="N as non_embedding, total or active.")
    ] = "non_embedding",
    all_: Annotated[
        bool, typer.Option("--all", help="Every row, pending and failed runs too.")
    ] = False,
    curves: Annotated[
        bool, typer.Option("--curves", help="Every evaluation of every run as a point.")
    ] = False,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help=f"run (plain runs), {one_of([*point_kinds(), 'all (every kind)'])}.",
        ),
    ] = "run",
) -> None:
    """List, export (--csv/--parquet) or rebuild (--from-runs RUNS) the points of a store."""
    from scalelab.results import export_points, load_points
    from scalelab.results import rebuild as rebuild_store

    kinds = ("run", *point_kinds(), "all")  # the plug-ins' kinds, as registered now
    if kind not in kinds:
        raise ConfigError(f"--kind {kind!r} is not one of {', '.join(kinds)}")
    out_file(csv, "--csv")
    out_file(parquet, "--parquet")

    if from_runs is not None:
        res = rebuild_store(from_runs, db, study=study)
        say(
            f"rebuilt {db}: {res.points} points from {res.runs} run directories "
            f"({res.pending} pending) in {len(res.studies)} studies"
        )
        for why in res.skipped:
            warn(f"skipped: {why}")
    elif not db.is_file():
        raise StoreError(
            f"no results store at {str(db)!r}: give --db PATH, or build one with `scalelab sweep` "
            "or `scalelab points --from-runs RUNS`"
        )
    opts = {
        "n": n,
        "study": study,
        "status": None if all_ else FINISHED,
        "curves": curves,
        "kind": None if kind == "all" else kind,
    }
    for path, fmt in ((csv, "csv"), (parquet, "parquet")):
        if path is not None:
            export_points(db, path, format=fmt, **opts)
            say(f"wrote {len(load_points(db, **opts))} points to {path}")
    if csv is None and parquet is None and from_runs is None:
        pts = load_points(db, **opts)
        render.points_table(pts.to_dict("records"), f"{db}: {len(pts)} points (N = {n})")


@app.command("compare", rich_help_panel=PANEL)
def compare_cmd(
    db: DbOption = DEFAULT_DB,
    study: StudyOption = None,
    compute_column: Annotated[
        str,
        typer.Option(
            "--compute-column", help="Compute axis: C_exact (trainer's FLOPs) or C (6ND)."
        ),
    ] = "C_exact",
    quality: Annotated[
        str, typer.Option("--quality", help="Column fitted (loss, val_bpb).")
    ] = "loss",
    bootstrap: BootstrapOption = "1000",
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the frontier figure (PNG).")
    ] = None,
    depth_width: Annotated[
        bool,
        typer.Option("--depth-width", help="Depth-vs-width slopes (a depth-width study's store)."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """How the architectures of a study scale: alpha vs compute and N, the frontier."""
    from scalelab.analysis.arch_compare import compare
    from scalelab.analysis.depth_vs_width import depth_width as dw
    from scalelab.reporting.architectures import plot_comparison

    n_boot = count_option(bootstrap, "--bootstrap")
    out_file(plot, "--plot")
    if not db.is_file():
        raise StoreError(f"no results store at {str(db)!r}: give the store with --db PATH")
    if depth_width:
        rows = dw(db, study=study, quality=quality, compute=compute_column, bootstrap=n_boot)
        if json_out:
            print(json.dumps([r.to_dict() for r in rows], indent=2))
        else:
            render.depth_width_table(rows, quality, compute_column)
        return
    cmp = compare(db, study=study, quality=quality, compute=compute_column, bootstrap=n_boot)
    if plot is not None:
        plot_comparison(cmp, plot)
    if json_out:
        print(json.dumps(cmp.to_dict(), indent=2, default=float))
        return
    render.comparison(cmp, quality, compute_column, n_boot)
    if plot is not None:
        say(f"figure: {plot}")
