"""The package's layering, read from the source: no import cycles between its parts, and the few
directions that must never exist do not (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "src" / "maas_gateway"


def _imports() -> dict[str, dict[str, list[str]]]:
    """Part → imported part → the files that import it; a part is a subpackage or a top-level module.

    Every import counts, also those under ``TYPE_CHECKING`` and inside functions: a cycle is a cycle.
    """
    edges: dict[str, dict[str, list[str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        part = relative[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "maas_gateway" and len(pieces) > 1 and pieces[1] != part:
                    edges.setdefault(part, {}).setdefault(pieces[1], []).append(
                        str(path.relative_to(PACKAGE))
                    )
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_parts_of_the_package() -> None:
    """No subpackage (or top-level module) imports, however indirectly, one that imports it back."""
    edges = _imports()
    cycles = _cycles({part: set(targets) for part, targets in edges.items()})
    details = {
        " <-> ".join(cycle): {a: {b: edges[a][b] for b in edges.get(a, {}) if b in cycle} for a in cycle}
        for cycle in cycles
    }
    assert not cycles, details


def test_forbidden_directions_do_not_exist() -> None:
    """The configuration does not import the limiter, the proxy does not import the server module, and
    the admin API and the metrics know nothing of the proxy (they get what they need handed to them)."""
    edges = _imports()
    for part, forbidden in (
        ("config", "limits"),
        ("proxy", "server"),
        ("admin", "proxy"),
        ("metrics", "proxy"),
        ("http", "proxy"),
    ):
        assert forbidden not in edges.get(part, {}), (part, forbidden, edges.get(part, {}).get(forbidden))
