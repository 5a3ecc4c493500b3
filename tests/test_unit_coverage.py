"""Every module of the domain library with logic has a unit test module of its own, at the path
that mirrors it, and that test module imports it:

    include/retrainer/<room>/<module>.py  ->  tests/unit/<room>/test_<module>.py
    include/retrainer/<module>.py         ->  tests/unit/test_<module>.py      (the base)
    include/retrainer/spec/<module>.py    ->  tests/unit/spec/test_<module>.py (the base's spec/)

A module has logic when it defines a function or a class: a room's ``__init__.py`` that only
describes the room, and a ``__main__.py`` that only hands over to a module, have none. A module
tested under another name is in ``COVERED_ELSEWHERE``, with the file that covers it and why.
Tests about one subject across modules (leftovers of cut-off writes, re-deliveries) may live
beside these in files of their own.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "include" / "retrainer"
UNIT = REPO / "tests" / "unit"

#: module (below include/retrainer/) -> (its test module, below the mirrored folder of tests/unit/; why)
COVERED_ELSEWHERE: dict[str, tuple[str, str]] = {
    "__main__.py": ("test_main.py", "the command line (python -m retrainer); test___main__.py would read as a typo"),
}


def _has_logic(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for node in ast.walk(tree))


def _modules() -> list[Path]:
    return sorted(p for p in LIBRARY.rglob("*.py") if _has_logic(p))


def _mirror(module: Path) -> Path:
    relative = module.relative_to(LIBRARY)
    return UNIT / relative.parent / f"test_{relative.stem}.py"


def _dotted(module: Path) -> str:
    return ".".join(("retrainer", *module.relative_to(LIBRARY).with_suffix("").parts))


def _imported(test_module: Path) -> set[str]:
    """The modules a test module imports (those inside functions too): ``from a.b import c``
    counts as importing both ``a.b`` and ``a.b.c``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(test_module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def _test_module(module: Path) -> Path:
    relative = str(module.relative_to(LIBRARY))
    if relative in COVERED_ELSEWHERE:
        return _mirror(module).parent / COVERED_ELSEWHERE[relative][0]
    return _mirror(module)


def test_the_library_is_read_as_expected() -> None:
    """Guards the rule itself: a room's description is not a module, a module of constants or
    a shim is not one with logic, and the rooms' modules are found."""
    assert not _has_logic(LIBRARY / "__init__.py") and not _has_logic(LIBRARY / "serving" / "__main__.py")
    modules = {str(p.relative_to(LIBRARY)) for p in _modules()}
    assert {"settings.py", "spec/fields.py", "data/landing.py", "pipeline/rollback.py", "__main__.py"} <= modules
    assert not any(m.endswith("__init__.py") for m in modules)


def test_every_module_with_logic_has_its_unit_test_module() -> None:
    missing = [
        f"{module.relative_to(LIBRARY)}: no {_test_module(module).relative_to(REPO)}"
        for module in _modules()
        if not _test_module(module).is_file()
    ]
    assert missing == []


def test_each_test_module_imports_the_module_it_is_named_after() -> None:
    wrong = [
        f"{_test_module(module).relative_to(REPO)} does not import {_dotted(module)}"
        for module in _modules()
        if _test_module(module).is_file() and _dotted(module) not in _imported(_test_module(module))
    ]
    assert wrong == []


def test_the_exceptions_are_few_real_and_needed() -> None:
    assert len(COVERED_ELSEWHERE) <= 5
    for module, (test_file, why) in COVERED_ELSEWHERE.items():
        assert (LIBRARY / module).is_file() and _has_logic(LIBRARY / module), module
        assert (_mirror(LIBRARY / module).parent / test_file).is_file(), test_file
        assert not _mirror(LIBRARY / module).exists(), f"{module} has its mirrored test module: no exception needed"
        assert why.strip(), module


def test_the_unit_tests_are_grouped_by_the_rooms_of_the_library() -> None:
    rooms = {p.name for p in LIBRARY.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= rooms
