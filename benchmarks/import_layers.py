"""The house's import graph in numbers: imports from the core into techniques, imports that
go up a layer of docs/layers.md, and cycles between top-level packages.

Counts the package at ``scalelab.__file__`` (point ``PYTHONPATH`` at another checkout's
``src`` to count that one) with the graph of ``tests/test_import_graph.py`` (module- and
function-level imports, ``TYPE_CHECKING`` aside) and the layer table of this checkout's
docs/layers.md (packages it does not name count as the base layer).

    PYTHONPATH=src .venv/bin/python benchmarks/import_layers.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))

import test_import_graph as g  # noqa: E402

CORE = {"train", "study", "results", "runner", "data", "models", "config"}
TECHNIQUES = {"techniques", "select", "tasks", "intrinsic", "memorization", "tune", "reporting"}


def elementary_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every simple cycle, each once (started at its smallest member)."""
    out: list[list[str]] = []

    def walk(start: str, v: str, path: list[str]) -> None:
        for w in sorted(graph[v]):
            if w == start:
                out.append(list(path))
            elif w not in path and w > start:
                walk(start, w, [*path, w])

    for s in sorted(graph):
        walk(s, s, [s])
    return out


def core_to_technique_statements(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        name = g._module_name(path, root)
        if g._package(name) not in CORE:
            continue
        tree = ast.parse(path.read_text())
        skip = g._type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            found += [
                f"{name} -> {m}"
                for m in mods
                if m.startswith("scalelab.") and m.split(".")[1] in TECHNIQUES
            ]
    return found


def main() -> None:
    graph = g.import_graph()
    layer_of, pending = g.read_layers(HERE / "docs" / "layers.md")
    pkgs = g.package_graph(graph)
    for p in pkgs:
        layer_of.setdefault(p, 0)
    plain = {a: set(t) for a, t in pkgs.items()}
    cycles = elementary_cycles(plain)
    print(f"package: {g.ROOT}")
    core = core_to_technique_statements(g.ROOT)
    print(f"core -> technique import statements: {len(core)}")
    for line in core:
        print(f"  {line}")
    up = g.wrong_way_imports(pkgs, layer_of)
    print(f"imports up a layer (module, package): {len(up)}")
    for module, package in up:
        print(f"  {module} -> {package}{'  (pending)' if (module, package) in pending else ''}")
    print(f"elementary package cycles: {len(cycles)}")
    print(f"pairs importing each other: {sorted(c for c in cycles if len(c) == 2)}")
    rest = {a: set(t) for a, t in g.package_graph(graph, skip=pending).items()}
    print(f"elementary package cycles without the pending imports: {len(elementary_cycles(rest))}")


if __name__ == "__main__":
    main()
