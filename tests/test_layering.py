"""The architecture as tests: faces hold no rules, and the package has no import circles."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "edgecache"
RULE_MODULES = {
    f"edgecache.core.{name}"
    for name in (
        "policy",
        "freshness",
        "storability",
        "conditional",
        "invalidation",
        "negotiation",
        "encoding",
        "cache_control",
        "vary",
        "surrogate",
    )
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """Every edgecache module ``path`` imports, at any depth, TYPE_CHECKING ones too."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("edgecache"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("edgecache")
        ):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def test_faces_import_no_rule_module() -> None:
    for face in ("asgi", "wsgi", "django"):
        for path in (PACKAGE / face).glob("*.py"):
            bad = _imports(path) & RULE_MODULES
            assert not bad, f"{path.name} imports rule modules {sorted(bad)}: ask the driver"


def test_no_import_circles() -> None:
    graph = _graph()
    # A package imports its submodules' names through __init__; that is no circle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
