"""The command line: a thin typer mirror of the Python API, one module per command group.

``_app`` holds the app and the grammar every command shares; ``render`` turns results into
tables. Each group module registers its commands on import:

* ``models``: count, presets, archs
* ``training``: train, export, corpus
* ``studies``: sweep, points, compare
* ``laws``: fit, plan
* ``reports``: report, demo

A ``ScalelabError`` becomes one plain line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

from scalelab.cli import laws, models, reports, studies, training
from scalelab.cli._app import app, console, error_line
from scalelab.errors import ScalelabError

# the help lists the groups in the order a user meets them, whatever the import order
_PANELS = (models.PANEL, training.PANEL, studies.PANEL, laws.PANEL, reports.PANEL)
app.registered_commands.sort(
    key=lambda c: _PANELS.index(c.rich_help_panel) if c.rich_help_panel in _PANELS else 99
)

__all__ = ["app", "console", "laws", "main", "models", "reports", "studies", "training"]


@app.callback()
def _root() -> None:
    """scalelab: model size and performance in transformer models."""


@app.command("version")
def version() -> None:
    """Print the scalelab version."""
    from scalelab import __version__

    print(__version__)


def main() -> None:
    """Entry point: run the app, turning a ScalelabError into one line and exit code 2."""
    try:
        app()
    except ScalelabError as e:
        error_line(e)
        sys.exit(2)
