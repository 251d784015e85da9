"""The layering DESIGN.md promises, checked on the source: one place per dialect, and
no import cycle between the top-level packages.

A module "branches on a dialect" when it names one (a dialect's name as a string, or a
dialect package or class it imports). Outside the dialect packages only the registry may.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from interlock.dialects import DIALECTS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("interlock", "policies", "recorder", "addons", "datasette_plugins", "backtest")
DIALECTS_DIR = ROOT / "interlock" / "dialects"
DIALECT_PACKAGES = {path.name for path in DIALECTS_DIR.iterdir() if (path / "__init__.py").exists()}
DIALECT_CLASSES = {type(dialect).__name__ for dialect in DIALECTS.values()}


def sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def imported_modules(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def names_a_dialect(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in DIALECTS:
            found.append(f"string {node.value!r}")
        elif (
            isinstance(node, ast.Name | ast.alias)
            and getattr(node, "id", getattr(node, "name", None)) in DIALECT_CLASSES
        ):
            found.append(f"class {getattr(node, 'id', None) or getattr(node, 'name', None)}")
    for module in imported_modules(tree):
        parts = module.split(".")
        if parts[:2] == ["interlock", "dialects"] and len(parts) > 2 and parts[2] in DIALECT_PACKAGES:
            found.append(f"import {module}")
    return found


def inside_a_dialect_package(path: Path) -> bool:
    return path.parent != DIALECTS_DIR and DIALECTS_DIR in path.parents


def test_only_the_registry_names_a_dialect_outside_the_dialect_packages() -> None:
    branching = {
        relative(path): names_a_dialect(ast.parse(path.read_text()))
        for path in sources()
        if not inside_a_dialect_package(path)
    }
    assert {path for path, found in branching.items() if found} == {"interlock/dialects/__init__.py"}, {
        path: found for path, found in branching.items() if found
    }


def test_the_scan_sees_a_dialect_name_where_there_is_one() -> None:
    name = next(iter(DIALECTS))
    assert names_a_dialect(ast.parse(f"if dialect == {name!r}: pass"))
    assert names_a_dialect(ast.parse(f"from interlock.dialects.{min(DIALECT_PACKAGES)} import wire"))
    assert not names_a_dialect(ast.parse("from interlock.dialects import dialect_for"))


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for path in sources():
        package = relative(path).split("/")[0]
        for module in imported_modules(ast.parse(path.read_text())):
            top = module.split(".")[0]
            if top in graph and top != package:
                graph[package].add(top)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    return sorted((a, b) for a in graph for b in graph[a] if a in reachable(b))


def test_no_import_cycle_between_top_level_packages() -> None:
    graph = import_graph()
    assert cycles(graph) == [], graph
    assert graph["interlock"] == set(), "the core imports none of the other packages"


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [("a", "b"), ("b", "a")]


def test_the_ui_reads_the_schema_not_the_recorder() -> None:
    assert "recorder" not in import_graph()["datasette_plugins"]
