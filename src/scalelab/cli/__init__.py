"""The command line: a thin typer mirror of the Python API, one module per command group.

``_app`` holds the app and the grammar every command shares; ``render`` turns results into
tables. Each group module registers its commands on import:

* ``models``: count, presets, archs
* ``training``: train, export, corpus
* ``studies``: sweep, points, compare
* ``laws``: fit, plan
* ``memorization``: capacity, memorization
* ``reports``: report, demo
* ``techniques``: compress, effective
* ``selection``: select
* ``tasks``: tasks, eval, finetune, intrinsic
* ``tuning``: tune, tuned

A ``ScalelabError`` becomes one plain line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys

import typer

from scalelab.cli import checks, laws, models, reports, studies, training
from scalelab.cli._app import app, console, error_line
from scalelab.errors import ScalelabError
from scalelab.plugin import cli_modules

# each technique's command group comes from its plug-in (scalelab.plugin: Plugin.cli), in
# the plug-ins' order: techniques, selection, tasks, tuning, memorization
_GROUPS = {m.rsplit(".", 1)[1]: importlib.import_module(m) for m in cli_modules()}

# the help lists the groups in the order a user meets them, whatever the import order; a
# plug-in's group not named here comes after these
_ORDER = (
    "models",
    "training",
    "selection",
    "studies",
    "tuning",
    "laws",
    "techniques",
    "memorization",
    "reports",
    "tasks",
    "posttrain",
)
_ALL = {
    "laws": laws,
    "models": models,
    "reports": reports,
    "studies": studies,
    "training": training,
}
_ALL.update(_GROUPS)
_PANELS = tuple(_ALL[g].PANEL for g in _ORDER if g in _ALL) + tuple(
    m.PANEL for g, m in _GROUPS.items() if g not in _ORDER
)
app.registered_commands.sort(
    key=lambda c: _PANELS.index(c.rich_help_panel) if c.rich_help_panel in _PANELS else 99
)
checks.plain_help()

__all__ = ["app", "checks", "console", "laws", "main", "models", "reports", "studies", "training"]


@app.callback()
def _root() -> None:
    """scalelab: model size and performance in transformer models."""


@app.command("version")
def version() -> None:
    """Print the scalelab version."""
    from scalelab import __version__

    print(__version__)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _check_argv(args: list[str]) -> None:
    """The command line's own mistakes (an empty value, an option given twice)."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name is None:
        return
    group = typer.main.get_command(app)
    command = getattr(group, "commands", {}).get(name)
    if command is not None:
        checks.argv(command, args[args.index(name) + 1 :])


def main() -> None:
    """Entry point: every bad input (a ScalelabError, or a usage error such as an unknown
    option or a missing argument) becomes one plain line on stderr and exit code 2."""
    try:  # typer >= 0.20 carries its own copy of click
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        with checks.warnings_as_notes(_note):
            _check_argv(sys.argv[1:])
            code = app(standalone_mode=False, prog_name="scalelab")
    except ScalelabError as e:
        error_line(e)
        sys.exit(2)
    except getattr(click, "NoArgsIsHelpError", ()) as e:  # `scalelab` alone: the help
        e.show()
        sys.exit(0)
    except click.UsageError as e:
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        error_line(f"{e.format_message()}{where}")
        sys.exit(2)
    except click.ClickException as e:  # e.g. a file option that cannot be opened
        error_line(e.format_message())
        sys.exit(e.exit_code)
    except typer.Abort:  # Ctrl-C outside a command's own handler
        sys.exit(130)
    except OSError as e:  # the machine said no: a full disk, a read-only folder, a bad path
        where = f" ({e.filename}" + (f" -> {e.filename2}" if e.filename2 else "") + ")"
        error_line(f"{e.strerror or e}{where if e.filename else ''}")
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
