"""The report and the demo: ``report``, ``demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scalelab.cli._app import (
    DEFAULT_DB,
    BootstrapOption,
    DbOption,
    QuietOption,
    StudyOption,
    app,
    count_option,
    one_of,
    say,
    warn,
)
from scalelab.errors import ConfigError
from scalelab.study.studyfile import BUDGET_MODES

PANEL = "Report and demo"


@app.command("report", rich_help_panel=PANEL)
def report_cmd(
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path, typer.Option("--out", help="Folder for index.html and its PNGs.")] = Path(
        "report"
    ),
    study: StudyOption = None,
    bootstrap: BootstrapOption = "200",
) -> None:
    """Write a self-contained HTML report: curves, fits, frontier, extrapolation, plans."""
    from scalelab.cli import checks
    from scalelab.reporting import report

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file: give a folder for the report")
    checks.store(db, write=False)
    # a new folder, or a report written before (index.html): never a run or anything else
    checks.out_dir(out, own=lambda a: a.kind == "folder" and (a.path / "index.html").is_file())
    res = report(db, out, study=study, bootstrap=count_option(bootstrap, "--bootstrap"))
    say(f"wrote {res.path} ({len(res.sections)} sections)")
    if res.law_error:
        warn(f"no law fitted: {res.law_error}")


def _is_demo(path: Path) -> bool:
    """A folder an earlier ``scalelab demo`` wrote into (its runs, store or summary)."""
    return any((path / name).exists() for name in ("summary.json", "runs", "results.db"))


@app.command("demo", rich_help_panel=PANEL)
def demo_cmd(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the runs, store and report.")
    ] = Path("demo"),
    corpus: Annotated[
        str, typer.Option("--corpus", help="Corpus spec, e.g. markov:order=1,vocab=16.")
    ] = "python-stdlib",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", help="Runs of the ladder trained at once (default: cores, max 2)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every run.")] = 0,
    budgets: Annotated[
        str,
        typer.Option(
            "--budgets",
            help=f"{one_of(BUDGET_MODES)} (study.budgets): 'branches' trains one WSD run per "
            "size and branches the smaller budgets off it; 'dedicated' trains every (size, "
            "budget) from scratch with a cosine schedule (docs/branches.md).",
        ),
    ] = "branches",
    quiet: QuietOption = False,
) -> None:
    """The main job on a built-in corpus: ladder, Chinchilla fit, held-out check, report."""
    from scalelab.apps.demo import DemoDesign, demo
    from scalelab.cli import checks

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file: give a folder for the demo")
    checks.seed(seed, "--seed")
    if budgets not in BUDGET_MODES:
        raise ConfigError(f"--budgets {budgets!r} is not one of {one_of(BUDGET_MODES)}")
    # a new folder, or an earlier demo's (it resumes): never a run or anything else
    checks.out_dir(out, own=lambda a: a.kind == "folder" and _is_demo(a.path))
    res = demo(
        out,
        DemoDesign(corpus=corpus, seed=seed, budgets=budgets),
        workers=workers,
        progress=not quiet,
        log=(lambda *_: None) if quiet else say,
    )
    s, h = res.summary, res.summary["holdout"]
    p = s["law"]["params"]
    say(
        f"fit: L(N, D) = {p['E']:.3f} + {p['A']:.4g}/N^{p['alpha']:.3f} + "
        f"{p['B']:.4g}/D^{p['beta']:.3f}"
    )
    lo, hi = h["predicted_interval"]
    say(
        f"held-out model ({h['n_ratio']:.1f}x the largest N, N={h['N']:,.0f}, D={h['D']:,.0f}): "
        f"predicted {h['predicted_loss']:.4f} [{lo:.4f}, {hi:.4f}], measured "
        f"{h['actual_loss']:.4f}, error {100 * h['relative_error']:+.2f}%"
    )
    auto = h.get("auto") or {}
    if "form" in auto:
        iv = auto["predicted_interval"]
        iv_s = f" [{iv[0]:.4f}, {iv[1]:.4f}] ({auto['level']:.0%})" if iv[0] is not None else ""
        say(
            f"form chosen by extrapolation within the ladder: {auto['form']}, predicted "
            f"{auto['predicted_loss']:.4f}{iv_s}, error {100 * auto['relative_error']:+.2f}%"
        )
    if "entropy_rate" in s:
        say(
            f"fitted E = {p['E']:.4f} nats/token against the source's entropy rate "
            f"{s['entropy_rate']:.4f}"
        )
    say(f"report: {res.report}; summary: {res.out / 'summary.json'}; {s['wall_seconds']:.0f} s")
