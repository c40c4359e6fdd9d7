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
it, so ``from scalelab.study import load_points`` is an edge to ``scalelab.results.points``.
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


# --- packages and layers (docs/layers.md) ----------------------------------------------------

LAYERS_DOC = ROOT.parents[1] / "docs" / "layers.md"


def _package(module: str) -> str:
    """``scalelab.train.loop`` -> ``train``; ``scalelab.errors`` -> ``errors``; the package's
    own ``__init__`` -> ``scalelab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def _table(text: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table after ``heading``, cells stripped."""
    lines = text.split(heading, 1)[1].splitlines()
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip().replace("\\_", "_") for c in line.strip().strip("|").split("|")]
            rows.append(cells)
        elif rows:
            break
    return [r for r in rows[2:]]  # past the header and the --- line


def read_layers(path: Path = LAYERS_DOC) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """``package -> layer`` and the pending ``(importer module, imported package)`` pairs,
    read from the tables of docs/layers.md."""
    text = path.read_text()
    layer_of: dict[str, int] = {}
    for number, _name, members in _table(text, "## The layers"):
        for pkg in (m.strip() for m in members.split(",")):
            assert pkg not in layer_of, f"{pkg} is in two layers of {path.name}"
            layer_of[pkg] = int(number)
    pending = {(importer, imported) for importer, imported, _why in _table(text, "## Pending")}
    return layer_of, pending


def package_graph(
    graph: dict[str, set[str]],
    skip: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
) -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the importing modules (edges in ``skip`` left out)."""
    out: dict[str, dict[str, set[str]]] = {_package(m): {} for m in graph}
    for module, targets in graph.items():
        a = _package(module)
        for t in targets:
            b = _package(t)
            if a != b and b != PACKAGE and (module, b) not in skip:
                out[a].setdefault(b, set()).add(module)
    return out


def wrong_way_imports(
    pkg_graph: dict[str, dict[str, set[str]]], layer_of: dict[str, int]
) -> list[tuple[str, str]]:
    """``(importer module, imported package)`` for every import that goes up a layer."""
    return sorted(
        (module, b)
        for a, targets in pkg_graph.items()
        for b, modules in targets.items()
        if layer_of[b] > layer_of[a]
        for module in modules
    )


def test_every_package_is_in_one_layer() -> None:
    layer_of, _ = read_layers()
    packages = {_package(m) for m in import_graph()}
    assert packages - set(layer_of) == set(), f"place these in {LAYERS_DOC.name}"
    assert set(layer_of) - packages == set(), f"{LAYERS_DOC.name} names what does not exist"


def test_no_import_goes_up_a_layer() -> None:
    layer_of, pending = read_layers()
    wrong = set(wrong_way_imports(package_graph(import_graph()), layer_of))
    assert wrong - pending == set(), "imports up a layer (see docs/layers.md)"
    assert pending - wrong == set(), "pending exceptions no longer needed: remove their rows"


def test_no_two_packages_import_each_other() -> None:
    """Package-level cycles, counting imports inside functions (the pending exceptions of
    docs/layers.md aside)."""
    _, pending = read_layers()
    pkgs = package_graph(import_graph(), skip=pending)
    cycles = find_cycles({a: set(t) for a, t in pkgs.items()})
    assert not cycles, "package cycles:\n" + "\n".join(
        _path({a: set(t) for a, t in pkgs.items()}, c) for c in cycles
    )


def test_the_core_imports_no_technique() -> None:
    """The issue's rule in its own words: train/, study/ (now study/, results/, runner/),
    data/, models/ and config/ import no technique package (the plug-ins are called,
    never imported), nor an app."""
    core = {"train", "study", "results", "runner", "data", "models", "config"}
    techniques = {
        "techniques",
        "select",
        "tasks",
        "intrinsic",
        "memorization",
        "tune",
        "reporting",
        "posttrain",
        "apps",
    }
    _, pending = read_layers()
    pkgs = package_graph(import_graph(), skip=pending)
    bad = {(a, b): sorted(m) for a in core for b, m in pkgs[a].items() if b in techniques}
    assert not bad


def test_the_layer_checks_find_a_wrong_way_import_and_a_package_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "low" / "a.py").write_text("def f():\n    from scalelab.high import b\n")
    (pkg / "high" / "b.py").write_text("from scalelab.low import a\n")
    doc = tmp_path / "layers.md"
    doc.write_text(
        "## The layers\n\n| layer | name | packages |\n|--|--|--|\n| 0 | l | low |\n"
        "| 1 | h | high, scalelab |\n\n## Pending\n\n| importer | imports | why |\n|--|--|--|\n"
    )
    layer_of, pending = read_layers(doc)
    assert layer_of == {"low": 0, "high": 1, "scalelab": 1} and pending == set()
    pkgs = package_graph(import_graph(pkg))
    assert wrong_way_imports(pkgs, layer_of) == [("scalelab.low.a", "high")]
    assert find_cycles({a: set(t) for a, t in pkgs.items()}) == [["high", "low"]]
