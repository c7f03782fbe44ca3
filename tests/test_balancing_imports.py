"""The balancing units stay plain: they import nothing of the parts that will use them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "src" / "maas_gateway"
FORBIDDEN = {"proxy", "admin", "server", "config", "routing"}


def test_the_balancing_package_imports_no_proxy_admin_server_configuration_or_router() -> None:
    """`balancing/` takes identifiers and numbers, so it needs none of the request path, the admin API,
    the server or the configuration schema, and the router can use it without a cycle."""
    found = []
    for path in (PACKAGE / "balancing").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "maas_gateway" and len(pieces) > 1 and pieces[1] in FORBIDDEN:
                    found.append(f"{path.name}: {name}")
    assert not found
