"""Fail when modules of the given packages import each other in a cycle (imports inside
functions included), so each part of the house reads in one direction.

    python scripts/check-import-cycles.py PACKAGE...
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def modules(packages: list[str]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in Path(package).rglob("*.py"):
            name = ".".join(path.with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules `path` imports (`from a import b` counts as a.b when that is a module)."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named |= {
                f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                for alias in node.names
            }
        elif isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
    return named & known.keys()


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in graph[module]:
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            component.append(module)
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in graph:
        if module not in order:
            visit(module)
    return found


def main() -> None:
    known = modules(sys.argv[1:])
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    if found := cycles(graph):
        sys.exit("import cycles: " + "; ".join(" <-> ".join(component) for component in found))


if __name__ == "__main__":
    main()
