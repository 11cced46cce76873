"""The folders' import graph, read from the source with ast: layered, with no folder importing one that imports it."""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("svc", "harness", "bench", "reliability", "tests")
# Who may import whom, beyond itself: svc is the product; harness is the library tests, bench and reliability share.
MAY_IMPORT = {
    "svc": set(),
    "harness": {"svc"},
}
Edges = dict[str, dict[str, list[str]]]  # importer folder -> imported folder -> "file:line" where it happens


def _imported(tree: ast.Module, package: list[str]) -> Iterator[tuple[str, int]]:
    """Every module name an import statement anywhere in the tree names (relative ones resolved), with its line."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, *([node.module] if node.module else [])]), node.lineno
            else:
                yield node.module or "", node.lineno


def folder_edges(root: Path) -> Edges:
    """Which folder imports which, with every place it does."""
    edges: Edges = {folder: {} for folder in FOLDERS}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            relative = path.relative_to(root)
            package = list(relative.parent.parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for module, line in _imported(tree, package):
                target = module.split(".")[0]
                if target in FOLDERS and target != folder:
                    edges[folder].setdefault(target, []).append(f"{relative}:{line}")
    return edges


def cycles(edges: Edges) -> list[list[str]]:
    """Every folder cycle, each as the path that closes it (empty when the graph is layered)."""
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(edges[node]):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:  # each cycle once: from its smallest folder
                visit(target, [*path, target])

    for start in sorted(edges):
        visit(start, [start])
    return found


def _where(edges: Edges, cycle: list[str]) -> str:
    return "; ".join(f"{a} -> {b} at {edges[a][b][0]}" for a, b in itertools.pairwise(cycle))


@pytest.fixture(scope="module")
def edges() -> Edges:
    return folder_edges(REPO)


def test_no_folder_imports_one_that_imports_it_back(edges: Edges) -> None:
    assert [_where(edges, cycle) for cycle in cycles(edges)] == []


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_lower_layers_import_only_what_is_below_them(edges: Edges, folder: str) -> None:
    extra = {target: places[0] for target, places in edges[folder].items() if target not in MAY_IMPORT[folder]}
    assert extra == {}


def test_nothing_outside_tests_imports_tests(edges: Edges) -> None:
    importers = {folder: targets["tests"][0] for folder, targets in edges.items() if "tests" in targets}
    assert importers == {}


def test_the_cycle_finder_reports_a_two_folder_cycle_and_where_it_is() -> None:
    edges: Edges = {
        "bench": {"svc": ["bench/a.py:1"]},
        "reliability": {"tests": ["reliability/b.py:3"]},
        "svc": {},
        "tests": {"reliability": ["tests/c.py:5"], "svc": ["tests/d.py:1"]},
    }
    assert cycles(edges) == [["reliability", "tests", "reliability"]]
    assert _where(edges, cycles(edges)[0]) == (
        "reliability -> tests at reliability/b.py:3; tests -> reliability at tests/c.py:5"
    )


def test_relative_and_function_level_imports_count(tmp_path: Path) -> None:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    (tmp_path / "bench" / "sub").mkdir()
    (tmp_path / "bench" / "sub" / "m.py").write_text("from .. import x\n\n\ndef f():\n    import reliability.load\n")
    (tmp_path / "harness" / "h.py").write_text("from tests.support import y\n")
    found = folder_edges(tmp_path)
    assert found["bench"] == {"reliability": ["bench/sub/m.py:5"]}
    assert found["harness"] == {"tests": ["harness/h.py:1"]}
