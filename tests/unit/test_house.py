"""The house: imports point one way (docs/ARCHITECTURE.md).

Read from the code's own imports (every import statement, including those inside
functions and under TYPE_CHECKING), so a new module is covered without a list.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("aggregates", "services", "projections")


def modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (the longest known prefix of each name)."""
    mods = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def edges(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in graph.items() for b in targets)


def test_no_import_loops() -> None:
    assert cycles(import_graph()) == []


def test_the_domain_imports_nothing_of_ours() -> None:
    assert [
        (a, b)
        for a, b in edges(import_graph())
        if a.startswith("aggregates") and not b.startswith("aggregates")
    ] == []


def test_the_read_side_never_imports_the_write_side() -> None:
    assert [
        (a, b) for a, b in edges(import_graph()) if a.startswith("projections") and b.startswith("services")
    ] == []


def test_only_the_edges_import_the_demo_and_the_cli() -> None:
    def edge(module: str) -> bool:
        return module.startswith(("services.cli", "services.demo"))

    wrong = [(a, b) for a, b in edges(import_graph()) if edge(b) and not edge(a)]
    assert wrong == []


def private_names_reached() -> list[tuple[str, str]]:
    """(module, name) for each `_private` name of another project module it imports or reads."""
    mods = modules()
    found = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        bound: dict[str, str] = {}  # local name -> the project module it is
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if _private(alias.name):
                        found.append((name, target))
                    if target in mods:
                        bound[alias.asname or alias.name] = target
            elif isinstance(node, ast.Import):
                bound.update({a.asname or a.name: a.name for a in node.names if a.name in mods})
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr):
                module = bound.get(node.value.id)
                if module is not None and module != name:
                    found.append((name, f"{module}.{node.attr}"))
    return sorted(found)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_reaches_into_another_modules_private_names() -> None:
    assert private_names_reached() == []


def test_the_checks_see_the_house() -> None:
    """The graph is read from real code: the composition is where it should be."""
    graph = import_graph()
    assert "services.city" in graph["services.grpc.node"]
    assert "aggregates.wallet" in graph["services.city"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


def test_nothing_in_production_imports_the_simulation() -> None:
    """The fault simulation (services/simulation) runs only from the command line and tests."""
    wrong = [
        (a, b)
        for a, b in edges(import_graph())
        if b.startswith("services.simulation") and not a.startswith(("services.simulation", "services.cli"))
    ]
    assert wrong == []
    assert "services.simulation.world" in import_graph()["services.cli.simulate"]
