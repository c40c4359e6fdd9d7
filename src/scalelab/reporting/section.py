"""What a report section is and the HTML pieces every section builder shares.

:class:`Section` (what a builder returns), :class:`ReportContext` (what it reads), and the
escaping, table and image helpers. Below :mod:`scalelab.reporting.sections` so that section
builders in their own modules (``data_section``) and the default list that names them do not
import each other.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Section:
    """One part of the page. ``html`` may refer to a figure by its file name
    (``<img src="loss-vs-n.png">``); the page inlines every file in ``figures``."""

    title: str
    html: str
    figures: list[Path] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReportContext:
    """What every builder may use: the store's points and curves, the fitted law (or why
    there is none), and the output folder for figures."""

    db: Path
    out: Path
    study: str | None
    points: pd.DataFrame  # finished runs (final evaluations), kind == "run"
    curves: pd.DataFrame  # every logged step of those runs
    law: Any | None  # scalelab.laws.Law (chinchilla) or None
    law_error: str | None
    bootstrap: int
    wall_seconds: float = 0.0
    selection: Any | None = None  # scalelab.laws.Selection: how the law's form was chosen
    selection_error: str | None = None  # why no form was chosen (the law is Chinchilla's)


Builder = Callable[[ReportContext], Section | None]


def esc(x: Any) -> str:
    return html.escape(str(x))


def table(header: list[str] | None, rows: list[list[Any]], cls: str = "") -> str:
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}">{head}{body}</table>'


def img(path: Path, alt: str) -> str:
    return f'<img src="{esc(path.name)}" alt="{esc(alt)}">'
