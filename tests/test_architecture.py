"""The domain library's rooms, read from its imports (those inside functions too): no cycle, no
import from a room above, no two modules of one name, and docs/architecture.md maps them all.

The rooms, from the ground up (docs/architecture.md):

- the base at the package's top: settings, periods, storage, records, schema, faults, and ``spec/``;
- ``data/``, then ``model/``, then ``serving/`` and ``registry/`` (side by side, neither
  importing the other), then ``pipeline/``, then the command line (``__main__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "include" / "retrainer"
#: the floor of each room; ``spec/`` is part of the base
BASE_ROOMS = {"spec"}
FLOORS = {"base": 0, "data": 1, "model": 2, "serving": 3, "registry": 3, "pipeline": 4, "__main__": 5}


def _module(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The library's modules that ``path`` imports (``from retrainer.x import y`` names module
    ``retrainer.x.y`` when that is a module, else ``retrainer.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "retrainer":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "retrainer"}
    return {m for m in found if m in modules and m != "retrainer"}


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and (LIBRARY / parts[1]).is_dir():
        return "base" if parts[1] in BASE_ROOMS else parts[1]
    return "__main__" if parts[-1] == "__main__" else "base"


def _graph() -> dict[str, set[str]]:
    paths = {_module(p): p for p in LIBRARY.rglob("*.py")}
    return {m: _imports(p, set(paths)) - {m} for m, p in paths.items()}


def test_every_room_has_a_floor() -> None:
    rooms = {p.name for p in LIBRARY.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms <= set(FLOORS) | BASE_ROOMS


def test_no_module_imports_from_a_room_above_or_beside_it() -> None:
    wrong = []
    for module, imported in _graph().items():
        for other in imported:
            mine, theirs = _room(module), _room(other)
            if mine != theirs and FLOORS[theirs] >= FLOORS[mine]:
                wrong.append(f"{module} ({mine}) imports {other} ({theirs})")
    assert wrong == []


def test_the_imports_have_no_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_no_two_modules_share_a_name() -> None:
    names: dict[str, list[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        if path.stem not in ("__init__", "__main__"):
            names.setdefault(path.stem, []).append(str(path.relative_to(LIBRARY)))
    assert {n: p for n, p in names.items() if len(p) > 1} == {}


def test_the_architecture_page_maps_every_module() -> None:
    page = (REPO / "docs" / "architecture.md").read_text()
    missing = [
        str(p.relative_to(LIBRARY))
        for p in sorted(LIBRARY.rglob("*.py"))
        if p.stem != "__init__" and f"`{p.relative_to(LIBRARY)}`" not in page
    ]
    assert missing == []
