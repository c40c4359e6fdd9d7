"""Assemble a report: read the store, fit the law once, run the section builders, write
``index.html`` (every PNG inlined as a data URI, no external CSS or JS) beside the PNGs."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalelab import atomic
from scalelab.errors import ScalelabError, StoreError
from scalelab.laws import fit_law, select_law
from scalelab.reporting import plots
from scalelab.reporting.sections import (
    WITHOUT_RUNS,
    Builder,
    ReportContext,
    Section,
    default_builders,
)
from scalelab.results.points import load_curves, load_points

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
img { max-width: 100%; height: auto; display: block; margin: .5em 0; }
table { border-collapse: collapse; margin: .6em 0; font-size: .92em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
table.num td + td { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; } .note { color: #8a4b00; }
nav a { margin-right: 1em; } code { background: #f4f4f4; padding: 0 .2em; }
"""


@dataclass
class ReportResult:
    """Where the report went, what it holds, and the law it fitted (None if it could not)."""

    path: Path
    sections: list[Section] = field(default_factory=list)
    law: Any | None = None
    law_error: str | None = None
    # how the law's form was chosen (scalelab.laws.Selection, bootstrap seed 0) and the runs
    # it was chosen on: a caller with the same runs reuses it instead of choosing again
    selection: Any | None = None
    run_ids: frozenset[str] = frozenset()


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _inline(section: Section) -> str:
    """The section's HTML with every figure it names replaced by a data URI."""
    out = section.html
    for fig in section.figures:
        out = out.replace(f'src="{fig.name}"', f'src="{plots.data_uri(fig)}"')
    return out


def context(
    db: str | Path, out: str | Path, *, study: str | None = None, bootstrap: int = 200
) -> ReportContext:
    """Read the store and fit the law once for every section: the form chosen by how well
    it predicts the larger sizes (``select_law``), or Chinchilla's where there are too few
    sizes to choose by extrapolation."""

    db = Path(db)
    if not db.exists():
        raise StoreError(f"no results store at {db}: run `scalelab sweep STUDY.toml --db {db}`")
    points = load_points(db, study=study, kind="run", one_per_run=True)
    law, err, selection, why_not = None, None, None, None
    if points.empty:
        where = f" for study {study!r}" if study else ""
        trials = not load_points(db, study=study, kind="trial").empty
        if not trials and load_points(db, study=study, kind="posttrain").empty:
            raise StoreError(f"{db} has no finished runs{where}: run `scalelab sweep` first")
        # a search's store (`scalelab tune` alone) or a post-training one: its own points
        # are reported, there is no ladder to fit a law to
        what = "the trials of a search" if trials else "post-training points"
        err = f"{db} holds {what}{where} and no ladder runs: no law to fit"
    curves = load_curves(db, study=study, run_ids=points["run_id"].tolist())
    archs = sorted(points["arch"].unique()) if not points.empty else []
    if len(archs) > 1:
        # one law over several architectures mixes different curves: compare them instead
        err = (
            f"the store holds {len(archs)} architectures ({', '.join(archs)}); one Chinchilla "
            "law over all of them would mix different curves: see the Architectures section, "
            "or report one with --study"
        )
    elif archs:
        try:
            selection = select_law(points, bootstrap=bootstrap)
            law = selection.law
        except ScalelabError as e:
            why_not = str(e)
            try:
                law = fit_law(points, "chinchilla", bootstrap=bootstrap)
            except ScalelabError as e2:
                err = str(e2)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = ReportContext(db, out, study, points, curves, law, err, bootstrap)
    ctx.selection, ctx.selection_error = selection, why_not
    return ctx


def report(
    db: str | Path,
    out: str | Path,
    *,
    study: str | None = None,
    bootstrap: int = 200,
    sections: Sequence[Builder] | None = None,
    extra: Sequence[Section] = (),
    title: str | None = None,
) -> ReportResult:
    """Write ``out/index.html`` and its PNGs for the points in ``db`` (one ``study`` or all).

    ``sections`` replaces the default builders (:func:`scalelab.reporting.sections.default_builders`: the core's and the plug-ins');
    ``extra`` appends ready-made sections (the demo adds its held-out check this way).
    A section whose builder fails says so on the page; the rest of the report is kept.
    """
    ctx = context(db, out, study=study, bootstrap=bootstrap)
    if sections is None:
        # without ladder runs (a store of trials) only the sections of other kinds apply
        sections = default_builders() if not ctx.points.empty else WITHOUT_RUNS
    built: list[Section] = []
    for builder in sections:
        try:
            s = builder(ctx)
        except ScalelabError as e:
            s = Section(
                builder.__name__.replace("_", " "), f"<p class='note'>{html.escape(str(e))}</p>"
            )
        if s is not None:
            built.append(s)
    built.extend(extra)
    name = title or f"scalelab report: {study or ctx.db.name}"
    nav = "".join(f'<a href="#{_slug(s.title)}">{html.escape(s.title)}</a>' for s in built)
    body = "\n".join(
        f'<section id="{_slug(s.title)}"><h2>{html.escape(s.title)}</h2>\n{_inline(s)}</section>'
        for s in built
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(name)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(name)}</h1><p>Store <code>{html.escape(str(ctx.db))}</code>, "
        f"written {stamp} by scalelab.</p><nav>{nav}</nav>\n{body}\n</body></html>\n"
    )
    path = ctx.out / "index.html"
    atomic.write_text(path, page)
    data = {s.title: s.data for s in built if s.data}
    atomic.write_text(ctx.out / "report.json", json.dumps(data, indent=2, default=_jsonable) + "\n")
    ids = frozenset(ctx.points["run_id"]) if not ctx.points.empty else frozenset()
    return ReportResult(path, built, ctx.law, ctx.law_error, ctx.selection, ids)


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)
