"""The package's import graph has no cycles, counting imports inside functions too.

Imports inside functions are allowed only to keep torch or another heavy library off a light
path; one that dodges a cycle between two parts of scalelab shows up here as a cycle. The
graph is read from the source (``ast``), not from ``sys.modules``, so every import counts,
whether or not a test happens to execute it. ``if TYPE_CHECKING:`` blocks are left out
(they never run).

Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so an import of a
submodule is also an edge to each package above it, except the importer's own packages (they
are already being imported when it runs). A package with lazy public names
(``scalelab._lazy``, a ``_API`` table) imports the defining module when a name is taken from
it, so ``from scalelab.study import load_points`` is an edge to ``scalelab.study.points``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import scalelab

ROOT = Path(scalelab.__file__).parent
PACKAGE = "scalelab"


def _module_name(path: Path, root: Path) -> str:
    parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def _lazy_names(package: str) -> dict[str, str]:
    """``name -> module`` of a package's lazy public names ({} if it has none)."""
    try:
        api = getattr(importlib.import_module(package), "_API", {})
    except ImportError:  # a package of the test's own tree
        return {}
    return dict(api) if isinstance(api, dict) else {}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the scalelab modules importing it runs (module and function level)."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_nodes(tree)
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                lazy = _lazy_names(mod) if root == ROOT and mod in modules else {}
                for alias in node.names:
                    sub = f"{mod}.{alias.name}"
                    targets.add(sub if sub in modules else mod)
                    if alias.name in lazy:
                        targets.add(lazy[alias.name])
        own = set(_ancestors(name))
        for t in targets:
            if t.split(".")[0] != PACKAGE or t not in modules:
                continue
            for m in (*_ancestors(t), t):
                if m != name and m not in own and m in modules:
                    graph[name].add(m)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One cycle inside a component, as ``a -> b -> a``, for the failure message."""
    members = set(comp)
    start = comp[0]
    seen = [start]
    v = start
    while True:
        v = sorted(w for w in graph[v] if w in members)[0]
        if v in seen:
            return " -> ".join([*seen[seen.index(v) :], v])
        seen.append(v)


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "scalelab.config" in graph  # the walk found the package
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_path(graph, c) for c in cycles)


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from scalelab.sub.b import f\n")
    (pkg / "sub" / "__init__.py").write_text("from scalelab.sub.b import f\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from scalelab import c\n"
        "def f():\n    from scalelab.a import g\n"
    )
    (pkg / "c.py").write_text("import scalelab.sub.b\n")
    graph = import_graph(pkg)
    assert graph["scalelab.sub.b"] == {"scalelab.a"}  # the TYPE_CHECKING import is not an edge
    assert graph["scalelab.c"] == {"scalelab.sub", "scalelab.sub.b"}  # the package runs first
    assert find_cycles(graph) == [["scalelab.a", "scalelab.sub", "scalelab.sub.b"]]


def test_every_lazy_public_name_resolves() -> None:
    """Lazy names (``_API`` tables) point at the module that defines them, after moves."""
    all_packages = [_module_name(p, ROOT) for p in ROOT.rglob("__init__.py")]
    packages = [m for m in all_packages if _lazy_names(m)]
    assert {"scalelab", "scalelab.accounting"} <= set(packages)
    for package in packages:
        module = importlib.import_module(package)
        for name in _lazy_names(package):
            assert getattr(module, name) is not None, f"{package}.{name}"
