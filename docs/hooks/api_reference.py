"""MkDocs hook: the Python API reference, one entry per public name.

scalelab's packages export their public names lazily (a ``_API`` table of name -> defining
module, see ``scalelab._lazy``), which a static reader cannot see as members. This hook reads
those tables and writes one mkdocstrings directive per name into `docs/api.md`, so every
public name has its entry and a name added to a table appears without editing the page.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

MARKER = "<!-- api-reference -->"


def public_api() -> dict[str, dict[str, str]]:
    """package -> {public name: defining module}, for scalelab and each of its packages."""
    import scalelab

    tables: dict[str, dict[str, str]] = {"scalelab": dict(scalelab._API)}
    for info in pkgutil.iter_modules(scalelab.__path__):
        if not info.ispkg or info.name.startswith("_"):
            continue
        name = f"scalelab.{info.name}"
        module = importlib.import_module(name)
        table = getattr(module, "_API", None)
        if isinstance(table, dict):
            tables[name] = dict(table)
        else:
            tables[name] = {
                n: name for n in getattr(module, "__all__", ()) if not n.startswith("_")
            }
    return tables


def _defined_at(module: str, name: str) -> str | None:
    """Where ``name`` (exported by ``module``) is defined: a table may name a package that
    re-exports it, and mkdocstrings reads the source, so follow the object home."""
    obj = getattr(importlib.import_module(module), name)
    home, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(home, str) and home.startswith("scalelab") and qualname == name:
        return f"{home}.{name}"
    # a constant has no __module__: find the submodule that binds it first
    package = importlib.import_module(module)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=f"{module}."):
        sub = importlib.import_module(info.name)
        if vars(sub).get(name) is obj and name in _assigned(sub):
            return f"{info.name}.{name}"
    if name in _assigned(package):
        return f"{module}.{name}"
    return None  # computed when read (a module-level __getattr__): no source to render


def _assigned(module: Any) -> set[str]:
    """Names a module assigns at its top level (not those it imports)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def api_reference() -> str:
    out: list[str] = []
    for package, table in public_api().items():
        if not table:
            continue
        out.append(f"## `{package}`\n")
        for name in sorted(table):
            home = _defined_at(table[name], name)
            if home is None:
                out.append(f"### `{name}`\n\nComputed when read, in `{table[name]}`.\n")
            else:
                out.append(f"::: {home}\n")
    return "\n".join(out)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, api_reference())
    return markdown
