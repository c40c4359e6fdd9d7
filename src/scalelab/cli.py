"""The command line: a thin typer mirror of the Python API.

Each command parses its options, calls one function of the API and prints the
result. A ``ScalelabError`` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from scalelab.errors import ScalelabError

app = typer.Typer(
    help="scalelab: model size and performance in transformer models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """scalelab: model size and performance in transformer models."""


@app.command()
def version() -> None:
    """Print the scalelab version."""
    from scalelab import __version__

    print(__version__)


# --- how big is it: count, presets ---------------------------------------------------------


@app.command("count")
def count_cmd(
    model: str = typer.Argument(
        ..., help="A preset (see `scalelab presets`), a config.json / params.json, or a model TOML."
    ),
    seq_len: int | None = typer.Option(
        None, "--seq-len", "-T", help="Sequence length (default: the model's context)."
    ),
    batch: int = typer.Option(
        1, "--batch", "-b", help="Sequences held at once (KV cache, activations)."
    ),
    dtype: str = typer.Option("bf16", help="Inference dtype: fp32, bf16, fp16, fp8, int8, int4."),
    device_memory: str | None = typer.Option(
        None, "--device-memory", help="Memory of one device: 80GiB, 80GB or 8e10."
    ),
    tokens: str | None = typer.Option(
        None, help="Training tokens, e.g. 15.6e12 or 15.6T: adds a time."
    ),
    devices: int = typer.Option(1, help="Devices training together."),
    mfu: float = typer.Option(0.4, help="Model FLOP utilisation, a fraction of the peak."),
    peak_flops: str = typer.Option(
        "989e12", help="Peak FLOP/s of one device (default: H100 SXM, dense BF16)."
    ),
    recompute: str = typer.Option("none", help="Activation recomputation: none, selective, full."),
    causal: bool = typer.Option(
        False, "--causal", help="Count attention FLOPs over earlier tokens only."
    ),
    grad_dtype: str = typer.Option(
        "bf16", help="Gradient dtype in training: bf16 (16 B/param) or fp32 (18)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """How big is this model: exact parameters, FLOPs per token and memory."""
    from scalelab.accounting import count

    c = count(
        model,
        seq_len=seq_len,
        batch=batch,
        dtype=dtype,
        device_memory=device_memory,
        tokens=tokens,
        devices=devices,
        mfu=mfu,
        peak_flops=peak_flops,
        recompute=recompute,
        causal=causal,
        grad_dtype=grad_dtype,
    )
    if json_out:
        import json

        print(json.dumps(c.to_dict(), indent=2))
        return
    from scalelab.accounting.display import count_table

    console.print(count_table(c))


@app.command("presets")
def presets_cmd(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every preset with its total and non-embedding parameters."""
    from scalelab.accounting import count
    from scalelab.presets import list_presets

    rows = [(p.name, p.family, count(p.name), p.description) for p in list_presets()]
    if json_out:
        import json

        print(
            json.dumps(
                [
                    {"name": name, "family": family, "description": description,
                     **{k: getattr(c.params, k) for k in ("total", "non_embedding", "active", "embedding")}}
                    for name, family, c, description in rows
                ],
                indent=2,
            )
        )  # fmt: skip
        return
    from scalelab.accounting.display import presets_rich_table

    console.print(presets_rich_table([(name, family, c) for name, family, c, _ in rows]))


# --- train one model: train, export ----------------------------------------------------------


@app.command("train")
def train_cmd(
    config: str | None = typer.Argument(
        None, help="run config TOML with sections model, data, train (defaults if omitted)"
    ),
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="section.key=value, e.g. --set train.lr=1e-3 (repeatable)"),
    ] = None,
    out: str = typer.Option("runs", "--out", help="runs go to OUT/<run id>/"),
    resume: bool = typer.Option(
        False, "--resume", help="continue from the run's last checkpoint (or reuse its result)"
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of a table"),
) -> None:
    """Train one model; the run is OUT/<hash of the resolved config>/."""
    import json

    from scalelab.config import load_run_config
    from scalelab.train import train

    cfg = load_run_config(config, overrides or [])
    summary = train(cfg, out, resume=resume, progress=progress)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=1))
    else:
        from rich.table import Table

        def num(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        t = Table(title=f"run {summary.run_id}: {summary.status}", show_header=False)
        t.add_row("directory", summary.path)
        t.add_row("steps", f"{summary.step} of {summary.steps}")
        t.add_row("tokens", f"{summary.tokens:,} ({summary.epochs:.3g} epochs)")
        t.add_row("train loss", num(summary.train_loss, ".4f"))
        t.add_row("val loss (nats/token)", num(summary.val_loss, ".4f"))
        t.add_row("val bits per byte", num(summary.val_bpb, ".4f"))
        t.add_row("best val loss", num(summary.best_val_loss, ".4f"))
        if summary.entropy_rate is not None:
            t.add_row("entropy rate (floor)", f"{summary.entropy_rate:.4f}")
        t.add_row(
            "params total / non-embedding",
            f"{summary.params['total']:,} / {summary.params['non_embedding']:,}",
        )
        t.add_row("training FLOPs", f"{summary.flops_total:.3g} (6ND {summary.six_nd:.3g})")
        t.add_row("tokens/s (training steps)", num(summary.tokens_per_second, ",.0f"))
        t.add_row("wall seconds", f"{summary.wall_seconds:.1f}")
        t.add_row("device, precision", f"{summary.device}, {summary.precision}")
        console.print(t)
    if summary.status == "failed":
        err_console.print(f"[bold red]run failed:[/] {summary.reason}", highlight=False)
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    run: str = typer.Argument(..., help="a run directory (OUT/<run id>)"),
    format: str = typer.Option(
        "hf", "--format", help="hf: Hugging Face config.json + model.safetensors"
    ),
    out: str | None = typer.Option(None, "--out", help="output directory (default RUN/hf)"),
) -> None:
    """Export a run's newest checkpoint (GPT2LMHeadModel or LlamaForCausalLM)."""
    from scalelab.train.export import export

    path = export(run, out, format=format)
    console.print(f"wrote {path}", highlight=False)


@app.command("corpus")
def corpus_cmd(
    spec: str = typer.Argument(
        "python-stdlib",
        help="corpus spec: python-stdlib[:max_bytes=N], markov:order=K,vocab=V,seed=S, "
        "text:PATH, jsonl:PATH:FIELD, hf:NAME[:CONFIG]",
    ),
    tokenizer: str = typer.Option("bpe", help="bpe (trained at --vocab-size) or bytes"),
    vocab_size: int = typer.Option(512, "--vocab-size", help="the model's vocabulary size"),
    val_fraction: float = typer.Option(0.02, help="share of documents held out, by hash"),
    cache_dir: str | None = typer.Option(
        None, help="default: $SCALELAB_CACHE or ~/.cache/scalelab"
    ),
    rebuild: bool = typer.Option(False, "--rebuild", help="tokenize again even if cached"),
    show: int = typer.Option(0, help="print the first N validation tokens, decoded"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Tokenize a corpus into the shared cache (once) and describe it."""
    import json

    from rich.status import Status
    from rich.table import Table

    from scalelab.config import DataConfig
    from scalelab.data import load_tokens

    data = DataConfig(
        corpus=spec, tokenizer=tokenizer, val_fraction=val_fraction, cache_dir=cache_dir
    )
    with Status(f"loading {spec} ...", console=err_console):
        td = load_tokens(data, vocab_size, rebuild=rebuild)
    info = td.describe()
    if as_json:
        print(json.dumps(info))
    else:
        table = Table(show_header=False, box=None)
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(
                    f"{k} {v:.2f}s" if key == "build_seconds" else f"{k} {v:,}"
                    for k, v in value.items()
                )
            elif isinstance(value, float):
                value = f"{value:.4f}"
            elif isinstance(value, int):
                value = f"{value:,}"
            table.add_row(key, str(value))
        console.print(table)
    if show:
        print(td.tokenizer.decode(td.val[:show].tolist()))


# --- studies: sweep, points ------------------------------------------------------------------


def _si(v: object) -> str:
    """1.5e6 -> '1.5M': counts of parameters, tokens and FLOPs, short enough for a table."""
    if v is None or not isinstance(v, (int, float)) or v != v:  # v != v: NaN
        return ""
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _points_table(rows: list[dict], title: str) -> None:
    """Points (or planned runs) as a table; constant or empty columns are left out."""
    from rich.table import Table

    def loss(v: object) -> str:
        return f"{v:.4f}" if isinstance(v, float) and v == v else ""

    def status(r: dict) -> str:
        reason = r.get("reason")
        return str(r.get("status") or "") + (f": {reason}" if isinstance(reason, str) else "")

    cols: dict[str, tuple[str, object]] = {
        "run": ("left", lambda r: str(r["run_id"])),
        "arch": ("left", lambda r: str(r.get("arch") or "")),
        "size": ("left", lambda r: str(r.get("size") or "")),
        "budget": ("left", lambda r: str(r.get("budget") or "")),
        "seed": ("right", lambda r: "" if r.get("seed") is None else str(r["seed"])),
        "N": ("right", lambda r: _si(r.get("N"))),
        "D": ("right", lambda r: _si(r.get("D"))),
        "C": ("right", lambda r: _si(r.get("C"))),
        "loss": ("right", lambda r: loss(r.get("loss"))),
        "bpb": ("right", lambda r: loss(r.get("val_bpb"))),
        "status": ("left", status),
    }
    axes = sorted({k for r in rows for k in r if "." in k and r[k] is not None and r[k] == r[k]})
    order = ["run", "arch", "size", "budget", "seed", *axes, "N", "D", "C", "loss", "bpb", "status"]
    cells = {name: [fn(r) for r in rows] for name, (_, fn) in cols.items()}  # type: ignore[operator]
    cells.update({k: [str(r.get(k, "")) for r in rows] for k in axes})
    keep = [
        name
        for name in order
        if name in ("run", "N")
        or len(set(cells[name])) > 1
        or (name in ("loss", "D") and any(cells[name]))
    ]
    table = Table(title=title, title_justify="left")
    for name in keep:
        justify = cols[name][0] if name in cols else "left"
        table.add_column(
            name,
            justify=justify,
            no_wrap=name != "status",
            min_width=7 if name == "status" else None,
        )  # type: ignore[arg-type]
    for i in range(len(rows)):
        table.add_row(*(cells[name][i] for name in keep))
    console.print(table)


@app.command("sweep")
def sweep_cmd(
    study: Annotated[
        Path,
        typer.Argument(
            help="The study TOML: a study section plus shared model, data and train sections."
        ),
    ],
    db: Annotated[Path, typer.Option("--db", help="SQLite results store.")] = Path("results.db"),
    out: Annotated[Path, typer.Option("--out", help="Directory of run directories.")] = Path(
        "runs"
    ),
    workers: Annotated[
        int,
        typer.Option("--workers", "-j", help="Worker processes (one torch thread each when > 1)."),
    ] = 1,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a shared key, section.key=value (repeatable)."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Train failed runs again.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Expand the grid and list its runs; train nothing.")
    ] = False,
    devices: Annotated[
        str | None,
        typer.Option("--devices", help="Devices for the workers, comma-separated: cuda:0,cuda:1."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option("--threads", help="Torch threads per worker (default 1 if --workers > 1)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress view.")] = False,
) -> None:
    """Run a study's grid: skip finished runs, resume interrupted ones, record points in the store."""
    from scalelab.study import load_points, sweep

    try:
        res = sweep(
            study,
            db=db,
            out=out,
            workers=workers,
            progress=not quiet,
            retry_failed=retry_failed,
            dry_run=dry_run,
            overrides=overrides or [],
            devices=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
            threads=threads,
        )
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted:[/] finished runs are kept; run the same command again to "
            "continue (interrupted runs resume from their last checkpoint)"
        )
        raise typer.Exit(130) from None
    pts = load_points(db, study=res.study, status=None)
    by_id = {r["run_id"]: r for r in pts.to_dict("records")}
    rows = [{**by_id.get(o.run_id, {}), "run_id": o.run_id} for o in res.runs]
    if dry_run:
        for o, row in zip(res.runs, rows, strict=True):
            row["status"] = o.status or "planned"
            row["C"] = o.flops  # planned exact FLOPs
        _points_table(rows, f"study {res.study}: {len(rows)} runs (dry run; C = planned FLOPs)")
        return
    _points_table(rows, f"study {res.study}")
    busy = f", {res.busy} being trained by another process" if res.busy else ""
    print(
        f"{res.trained} trained, {res.skipped} skipped, {res.failed} failed{busy} "
        f"in {res.wall_seconds:.1f} s; points in {db}"
    )


@app.command("points")
def points_cmd(
    db_arg: Annotated[
        Path | None, typer.Argument(metavar="[DB]", help="SQLite results store.")
    ] = None,
    db_opt: Annotated[
        Path | None, typer.Option("--db", help="The store (instead of the argument).")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Export the points to this CSV file.")
    ] = None,
    parquet: Annotated[
        Path | None, typer.Option("--parquet", help="Export to Parquet (needs pyarrow).")
    ] = None,
    rebuild: Annotated[
        Path | None,
        typer.Option("--rebuild", help="Rebuild the store from this runs directory first."),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", help="Only this study's points.")] = None,
    n: Annotated[
        str, typer.Option("--n", help="N as non_embedding, total or active.")
    ] = "non_embedding",
    all_: Annotated[
        bool, typer.Option("--all", help="Every row, pending and failed runs too.")
    ] = False,
    curves: Annotated[
        bool, typer.Option("--curves", help="Every evaluation of every run as a point.")
    ] = False,
) -> None:
    """List, export (--csv/--parquet) or rebuild (--rebuild RUNS_DIR) the points of a store."""
    from scalelab.errors import StoreError
    from scalelab.study import export_points, load_points
    from scalelab.study import rebuild as rebuild_store

    if db_arg is not None and db_opt is not None and db_arg != db_opt:
        raise StoreError(f"two stores given ({db_arg} and --db {db_opt}): give one")
    db = db_arg or db_opt
    if db is None:
        raise StoreError("name the store: scalelab points results.db (or --db results.db)")
    if rebuild is not None:
        res = rebuild_store(rebuild, db, study=study)
        print(
            f"rebuilt {db}: {res.points} points from {res.runs} run directories "
            f"({res.pending} pending) in {len(res.studies)} studies"
        )
        for why in res.skipped:
            err_console.print(f"[yellow]skipped:[/] {why}", highlight=False)
    opts = {
        "n": n,
        "study": study,
        "status": None if all_ else ("finished", "stopped_early"),
        "curves": curves,
    }
    for path, fmt in ((csv, "csv"), (parquet, "parquet")):
        if path is not None:
            export_points(db, path, format=fmt, **opts)
            print(f"wrote {len(load_points(db, **opts))} points to {path}")
    if csv is None and parquet is None and rebuild is None:
        pts = load_points(db, **opts)
        _points_table(pts.to_dict("records"), f"{db}: {len(pts)} points (N = {n})")


# --- laws and plans: fit, plan -----------------------------------------------------------------

_FIT_LAWS = ("chinchilla", "kaplan", "power", "data-constrained", "bnsl", "slope")
_ALLOCATIONS = ("isoflop", "envelope")  # Hoffmann et al. 2022, approaches 2 and 1


def _read_points(db: Path | None, csv: Path | None, arch: str | None) -> Any:
    """The points to fit, from a study store or a CSV, filtered to one architecture."""
    import pandas as pd

    from scalelab.errors import FitError, StoreError

    if (db is None) == (csv is None):
        raise FitError("give the points either as a study store (DB) or with --csv FILE, not both")
    if csv is not None:
        try:
            df = pd.read_csv(csv)
        except FileNotFoundError:
            raise FitError(f"--csv {str(csv)!r} does not exist") from None
        except (OSError, ValueError) as e:
            raise FitError(f"cannot read --csv {str(csv)!r} as CSV: {e}") from None
    else:
        assert db is not None
        if not db.exists():
            raise StoreError(
                f"results store {str(db)!r} does not exist; run `scalelab sweep` first"
            )
        try:
            from scalelab.study import load_points
        except ImportError:
            raise StoreError(
                "this install has no study store reader (scalelab.study); export the points "
                "to CSV and use --csv"
            ) from None
        df = load_points(db)
    if "status" in df.columns:
        finished = df["status"].astype(str) == "finished"
        if not finished.all():
            err_console.print(f"note: {int((~finished).sum())} unfinished point(s) left out")
        df = df[finished]
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


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.4e}"


def _print_law(law: Any) -> None:
    from rich.table import Table

    console.print(f"{law.form} law: {law.formula}", highlight=False)
    table = Table()
    table.add_column("param")
    table.add_column("value", justify="right")
    table.add_column(f"{law.ci_level:.0%} bootstrap interval", justify="right")
    for k, v in law.params.items():
        ci = law.ci.get(k)
        iv = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ("fixed" if k in law.fixed else "")
        table.add_row(k, _fmt(v), iv)
    console.print(table)
    n_boot = 0 if law.samples is None else len(law.samples)
    console.print(
        f"objective {law.objective:.6g} on {law.n_points} points"
        + (f" (Huber delta {law.delta:g}, sum over points)" if law.delta else "")
        + f"; {n_boot} bootstrap refits"
    )
    ex = law.extrapolation
    if ex:
        if "skipped" in ex:
            console.print(f"extrapolation check skipped: {ex['skipped']}")
        else:
            console.print(
                f"extrapolation (fit without the largest {ex['by']}, {ex['n_holdout']} point(s) "
                f"at {ex['by']} >= {ex['threshold']:.3g}): mean |error| "
                f"{ex['mean_abs_rel_error']:.2%}, max {ex['max_abs_rel_error']:.2%}"
            )


@app.command()
def fit(
    db: Annotated[Path | None, typer.Argument(help="A study's results store (SQLite).")] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", help="CSV of points: N, D, loss (+ unique_tokens, C).")
    ] = None,
    law: Annotated[
        str,
        typer.Option(
            "--law",
            help="chinchilla | kaplan | power | data-constrained | bnsl | slope, or an allocation "
            "fit: isoflop (approach 2) | envelope (approach 1).",
        ),
    ] = "chinchilla",
    x: Annotated[
        str | None, typer.Option("--x", help="Variable of power/bnsl/slope: N, D or C.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap refits for intervals.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the law (FIT.json) for `plan`.")
    ] = None,
) -> None:
    """Fit a scaling law to points (Huber on log residuals, L-BFGS, bootstrap intervals)."""
    import json

    from scalelab.errors import FitError, did_you_mean
    from scalelab.laws import envelope, fit_law, isoflop

    choices = (*_FIT_LAWS, *_ALLOCATIONS)
    if law not in choices:
        raise FitError(f"unknown --law {law!r}{did_you_mean(law, choices)}; choose from {choices}")
    df = _read_points(db, csv, arch)
    if law in _ALLOCATIONS:
        if out is not None:
            raise FitError("--out writes laws for `plan`; an allocation fit has no law to write")
        alloc = (isoflop if law == "isoflop" else envelope)(df, bootstrap=bootstrap, seed=seed)
        if as_json:
            print(json.dumps(alloc.to_dict(), indent=1, default=float))
            return
        console.print(f"approach {alloc.approach}: N_opt = k_N C^a, D_opt = k_D C^b")
        for k, v in alloc.params.items():
            ci = alloc.ci.get(k)
            iv = f"  [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""
            console.print(f"  {k:4s} {_fmt(v)}{iv}")
        for note in alloc.notes:
            err_console.print(f"note: {note}")
        return
    result = fit_law(
        df,
        law,
        x=x,
        bootstrap=bootstrap,
        seed=seed,
        delta=delta,
        extrapolation=extrapolation,
        base=base,
    )
    if out is not None:
        result.save(out)
    if as_json:
        print(json.dumps(result.to_dict(samples=False), indent=1))
    else:
        _print_law(result)
        if out is not None:
            console.print(f"wrote {out}")


def _print_plan(p: Any, law: Any) -> None:
    lvl = f"{p.ci_level:.0%}"

    def iv(t: Any) -> str:
        return f"  [{t[0]:.3g}, {t[1]:.3g}]" if t else ""

    src = f" ({law.source})" if law.source else ""
    console.print(f"law: {p.law}{src}\n  {law.formula}", highlight=False)
    if p.target_loss is not None:
        console.print(
            f"target loss {p.target_loss:g}: compute {p.compute:.3g} FLOPs{iv(p.compute_interval)}"
        )
    else:
        console.print(f"compute {p.compute:.3g} FLOPs (C = 6ND)")
    console.print(f"  N    {p.N:.3g} parameters{iv(p.N_interval)}")
    console.print(f"  D    {p.D:.3g} tokens{iv(p.D_interval)}")
    console.print(f"  D/N  {p.tokens_per_param:.1f} tokens per parameter")
    loss_iv = (
        f"  [{p.loss_interval[0]:.4f}, {p.loss_interval[1]:.4f}] ({lvl})" if p.loss_interval else ""
    )
    console.print(f"  loss {p.loss:.4f}{loss_iv}")
    if p.constrained:
        c = p.constrained
        civ = c.get("loss_interval")
        civ_s = f"  [{civ[0]:.4f}, {civ[1]:.4f}]" if civ else ""
        console.print(
            f"with {p.unique_tokens:.3g} unique tokens (repetition, R_D* = {c['R_D_star']:.3g}, "
            f"R_N* = {c['R_N_star']:.3g}):\n"
            f"  N    {c['N']:.3g}\n  D    {c['D']:.3g} ({c['epochs']:.2f} epochs)\n"
            f"  loss {c['loss']:.4f}{civ_s}"
        )
    for w in p.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)


@app.command()
def plan(
    compute: Annotated[
        list[float] | None,
        typer.Option("--compute", help="Training FLOPs (C = 6ND); repeat for several budgets."),
    ] = None,
    target_loss: Annotated[
        float | None,
        typer.Option("--target-loss", help="Instead: the compute needed to reach this loss."),
    ] = None,
    law: Annotated[
        str,
        typer.Option(
            "--law",
            help="FIT.json from `fit --out`, or a preset: hoffmann2022, epoch2024, muennighoff2023, "
            "kaplan2020.",
        ),
    ] = "epoch2024",
    unique_tokens: Annotated[
        float | None,
        typer.Option(
            "--unique-tokens", help="Unique tokens available (data-constrained adjustment)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Compute-optimal N and D for a compute budget, or the compute for a target loss."""
    import json

    from scalelab.laws import PlanError, resolve_law
    from scalelab.laws import plan as make_plan

    if not compute and target_loss is None:
        raise PlanError("give --compute FLOPS (one or more) or --target-loss LOSS")
    if compute and target_loss is not None:
        raise PlanError("give --compute or --target-loss, not both")
    the_law = resolve_law(law)
    if target_loss is not None:
        plans = [make_plan(the_law, target_loss=target_loss, unique_tokens=unique_tokens)]
    else:
        assert compute is not None
        plans = [make_plan(the_law, c, unique_tokens=unique_tokens) for c in compute]
    if as_json:
        payload = [p.to_dict() for p in plans]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=1))
        return
    for p in plans:
        _print_plan(p, the_law)


# --- report and demo ---------------------------------------------------------------------------


@app.command("report")
def report_cmd(
    db: Annotated[Path, typer.Argument(help="SQLite results store written by `scalelab sweep`.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for index.html and its PNGs.")] = Path(
        "report"
    ),
    study: Annotated[
        str | None, typer.Option("--study", help="Only this study's points (default: all).")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap refits for the intervals.")
    ] = 200,
) -> None:
    """Write a self-contained HTML report: curves, fits, frontier, extrapolation, plans."""
    from scalelab.reporting import report

    res = report(db, out, study=study, bootstrap=bootstrap)
    console.print(f"wrote {res.path} ({len(res.sections)} sections)")
    if res.law_error:
        console.print(f"[yellow]no law fitted:[/] {res.law_error}")


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="Folder for the runs, store and report.")] = (
        Path("demo")
    ),
    corpus: Annotated[
        str, typer.Option("--corpus", help="Corpus spec, e.g. markov:order=1,vocab=16.")
    ] = "python-stdlib",
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Processes for the ladder (default: cores, max 2)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every run.")] = 0,
) -> None:
    """The main job on a built-in corpus: ladder, Chinchilla fit, held-out check, report."""
    from scalelab.study.demo import DemoDesign, demo

    res = demo(out, DemoDesign(corpus=corpus, seed=seed), workers=workers, log=console.print)
    s, h = res.summary, res.summary["holdout"]
    p = s["law"]["params"]
    console.print(
        f"fit: L(N, D) = {p['E']:.3f} + {p['A']:.4g}/N^{p['alpha']:.3f} + "
        f"{p['B']:.4g}/D^{p['beta']:.3f}"
    )
    lo, hi = h["predicted_interval"]
    console.print(
        f"held-out model ({h['n_ratio']:.1f}x the largest N, N={h['N']:,.0f}, D={h['D']:,.0f}): "
        f"predicted {h['predicted_loss']:.4f} [{lo:.4f}, {hi:.4f}], measured "
        f"{h['actual_loss']:.4f}, error {100 * h['relative_error']:+.2f}%"
    )
    if "entropy_rate" in s:
        console.print(
            f"fitted E = {p['E']:.4f} nats/token against the source's entropy rate "
            f"{s['entropy_rate']:.4f}"
        )
    console.print(
        f"report: {res.report}; summary: {res.out / 'summary.json'}; {s['wall_seconds']:.0f} s"
    )


# --- architectures: archs --------------------------------------------------------------------


@app.command("archs")
def archs_cmd(
    n_layer: int = typer.Option(4, "--n-layer", help="Shape at which to count each architecture."),
    d_model: int = typer.Option(128, "--d-model"),
    n_head: int = typer.Option(4, "--n-head"),
    context: int = typer.Option(128, "--context"),
    vocab_size: int = typer.Option(512, "--vocab-size"),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every architecture: its inductive bias, its own config fields, and its size at one shape."""
    from scalelab.accounting.display import archs_table

    table = archs_table(
        n_layer=n_layer, d_model=d_model, n_head=n_head, context=context, vocab_size=vocab_size
    )
    if json_out:
        print(table.to_json(orient="records", indent=2))
        return
    from rich.table import Table

    out = Table(
        title=f"{n_layer} x {d_model}, {n_head} heads, context {context}, vocab {vocab_size}",
        title_justify="left",
    )
    out.add_column("arch", style="bold", no_wrap=True)
    out.add_column("params", justify="right", no_wrap=True)
    out.add_column("active", justify="right", no_wrap=True)
    out.add_column("MFLOP/tok", justify="right", no_wrap=True)
    out.add_column("inductive bias [dim](own fields)[/]")
    for row in table.itertuples():
        own = ", ".join(f"{k}={'auto' if v is None else v}" for k, v in row.fields.items())
        out.add_row(
            row.arch,
            f"{row.params:,}",
            f"{row.active:,}",
            f"{row.train_flops_per_token / 1e6:.2f}",
            row.description + (f" [dim]({own})[/]" if own else ""),
        )
    console.print(out)
    console.print(
        "MFLOP/tok: training FLOPs per token (3 x forward, causal); "
        "active: the parameters one token passes through"
    )


def _alpha_cell(sl: Any) -> str:
    if sl.alpha is None:
        return "[dim]-[/]"
    lo, hi = sl.ci if sl.ci else (float("nan"), float("nan"))
    return f"{sl.alpha:.3f} [dim][{lo:.3f}, {hi:.3f}][/]"


@app.command("compare")
def compare_cmd(
    db: Annotated[Path, typer.Argument(help="The study's SQLite store (scalelab sweep --db).")],
    study: str | None = typer.Option(None, "--study", help="Only this study's points."),
    compute: str = typer.Option(
        "C_exact", "--compute", help="Compute axis: C_exact (trainer's FLOPs) or C (6ND)."
    ),
    quality: str = typer.Option("loss", "--quality", help="Column fitted (loss, val_bpb)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples per slope."),
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the frontier figure (PNG).")
    ] = None,
    depth_width: bool = typer.Option(
        False, "--depth-width", help="Depth-vs-width slopes (a depth-width study's store)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """How the architectures of a study scale: alpha vs compute and N, the frontier."""
    import json

    from scalelab.reporting.architectures import plot_comparison
    from scalelab.study.compare import compare
    from scalelab.study.compare import depth_width as dw

    if not db.exists():
        raise ScalelabError(f"no store at {db}: give the --db path of a scalelab sweep")
    if depth_width:
        rows = dw(db, study=study, quality=quality, compute=compute, bootstrap=bootstrap)
        if json_out:
            print(json.dumps([r.to_dict() for r in rows], indent=2))
            return
        from rich.table import Table

        t = Table(
            title=f"depth vs width: {quality} ~ x^-alpha (95% bootstrap)", title_justify="left"
        )
        for c in ("arch", "direction", "fixed", "values", f"alpha vs {compute}", "alpha vs N"):
            t.add_column(c, no_wrap=True)
        for r in rows:
            fixed = f"d_model={r.fixed}" if r.direction == "depth" else f"n_layer={r.fixed}"
            t.add_row(
                r.arch,
                r.direction,
                fixed,
                ",".join(map(str, r.values)),
                _alpha_cell(r.vs_compute),
                _alpha_cell(r.vs_params),
            )
        console.print(t)
        return
    cmp = compare(db, study=study, quality=quality, compute=compute, bootstrap=bootstrap)
    if plot is not None:
        plot_comparison(cmp, plot)
    if json_out:
        print(json.dumps(cmp.to_dict(), indent=2, default=float))
        return
    from rich.table import Table

    t = Table(
        title=f"{quality} ~ k x^-alpha per architecture (95% bootstrap, {bootstrap} resamples)",
        title_justify="left",
    )
    for c in ("arch", "pts", f"alpha vs {compute}", "alpha vs N", "E + A N^-a: E, a", "loss"):
        t.add_column(c, no_wrap=True, justify="left" if c == "arch" else "right")
    for a in sorted(cmp.archs, key=lambda a: -(a.vs_compute.alpha or -1e9)):
        p = a.power_params.params
        t.add_row(
            a.arch + (" [dim](active N)[/]" if a.n_kind == "active_non_embedding" else ""),
            str(a.n_points),
            _alpha_cell(a.vs_compute),
            _alpha_cell(a.vs_params),
            f"{p['E']:.3g}, {p['alpha']:.3f}" if p else "[dim]-[/]",
            f"{a.loss_range[1]:.3f} -> {a.loss_range[0]:.3f}",
        )
    console.print(t)
    for front in (cmp.frontier_compute, cmp.frontier_params):
        regions = "; ".join(f"{r['arch']} {r['from']:.3g}-{r['to']:.3g}" for r in front.regions)
        console.print(f"frontier vs {front.cost}: {regions}", highlight=False)
    crossings = cmp.crossovers("C")
    for c in crossings:
        if c["inside_range"]:
            console.print(
                f"{c['arch']} vs transformer: lines cross at {compute} {c['x']:.3g}, inside the "
                f"measured range: {c['ahead_below']} ahead below, {c['ahead_above']} above",
                highlight=False,
            )
    outside = [c["arch"] for c in crossings if not c["inside_range"]]
    if outside:
        console.print(
            f"[dim]lines that cross the transformer's only outside the measured range "
            f"(--json for where): {', '.join(outside)}[/]",
            highlight=False,
        )
    for note in cmp.notes():
        console.print(f"[dim]note: {note}[/]", highlight=False)
    if plot is not None:
        console.print(f"figure: {plot}")


def main() -> None:
    """Entry point: run the app, turning a ScalelabError into one line and exit code 2."""
    try:
        app()
    except ScalelabError as e:
        err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
