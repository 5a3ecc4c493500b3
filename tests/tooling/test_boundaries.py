"""The developer tooling stands on its own: tools/ and bench/ import nothing from tests/, nobody
imports a private (underscore) name of the tooling, and the tooling imports no private name of
the other packages. Polling goes through ``retrainer_dev.waiting`` alone."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: a loop that counts down to a deadline of its own
DEADLINE_LOOP = re.compile(r"deadline = time\.monotonic\(\)")
#: the project's packages by folder (bench/'s scripts import each other as ``common``)
OWN = {
    "tools": "retrainer_dev",
    "bench": "common",
    "tests": "tests",
    "include": "retrainer",
    "plugins": "retrainer_airflow",
}


def _sources(*roots: str) -> Iterator[Path]:
    for root in roots:
        yield from sorted((REPO / root).rglob("*.py"))


def _imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, names) of each absolute import of ``path``, those inside functions too."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def _private(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("_") and not n.startswith("__")]


def test_tools_and_bench_import_nothing_from_tests() -> None:
    found = [
        f"{path.relative_to(REPO)}: {module}"
        for path in _sources("tools", "bench")
        for module, _ in _imports(path)
        if module.split(".")[0] == "tests"
    ]
    assert found == []


def test_no_private_name_crosses_into_or_out_of_the_tooling() -> None:
    """tools/ and bench/ use only the public names of the project's other packages; tests may
    reach into the product they test, but use the tooling through its public names too."""
    found = []
    for path in _sources("tools", "bench", "tests"):
        own = OWN[path.relative_to(REPO).parts[0]]
        for module, names in _imports(path):
            top = module.split(".")[0]
            crossing = top in OWN.values() and top != own and (own != "tests" or top == "retrainer_dev")
            found += [f"{path.relative_to(REPO)}: {module}.{n}" for n in _private(names) if crossing]
    assert found == []


def test_no_hand_rolled_deadline_loops_outside_the_product() -> None:
    found = [
        f"{path.relative_to(REPO)}:{n}"
        for path in _sources("tools", "bench", "tests")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if DEADLINE_LOOP.search(line) and path != Path(__file__)
    ]
    assert found == []
