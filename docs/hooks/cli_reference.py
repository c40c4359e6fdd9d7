"""MkDocs hook: the CLI reference, generated from the commands themselves.

`docs/cli.md` holds the marker below; at build time it is replaced by one section per command
of the typer app (its help text and a table of its options), read from the click command tree,
so the reference cannot drift from the code.
"""

from __future__ import annotations

import re
from typing import Any

MARKER = "<!-- cli-reference -->"


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped, and <run id> shown, not read as HTML."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _param_row(param: Any) -> str | None:
    if getattr(param, "hidden", False):
        return None
    if param.param_type_name == "argument":
        name = f"`{(param.metavar or param.name or '').upper()}`"
        kind = "argument"
    else:
        names = [*param.opts, *param.secondary_opts]
        name = ", ".join(f"`{n}`" for n in names)
        kind = "flag" if param.is_flag else "option"
    default = param.default
    shown = "" if default is None or callable(default) or default == () else f"`{default}`"
    if getattr(param, "is_flag", False) and default is False:
        shown = ""
    help_text = _cell(getattr(param, "help", None) or "")
    return f"| {name} | {kind} | {shown} | {help_text} |"


def cli_reference() -> str:
    """Markdown for every command of ``scalelab``'s CLI, in the order ``--help`` lists them."""
    import typer

    from scalelab.cli import app

    # typer carries its own click: its Context, and duck typing for the command tree
    root: Any = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="scalelab")
    out: list[str] = []
    for name in root.list_commands(ctx):
        cmd = root.get_command(ctx, name)
        if cmd is None or cmd.hidden:
            continue
        sub = typer.Context(cmd, info_name=name, parent=ctx)
        usage = " ".join(cmd.collect_usage_pieces(sub))
        usage = re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), usage)  # typer's {run}
        out.append(f"## `scalelab {name}`\n")
        out.append(f"```text\nscalelab {name} {usage}\n```\n")
        if cmd.help:
            out.append(_cell(cmd.help.strip().replace("\b\n", "")) + "\n")
        rows = [r for p in cmd.params if (r := _param_row(p)) is not None]
        if rows:
            out.append("| name | kind | default | what it means |\n|---|---|---|---|")
            out.extend(rows)
            out.append("")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
