"""The code stays readable at a glance: no function in include/, plugins/ or tools/ is longer
than 60 lines (DAG definitions, in dags/, are the exception: a DAG reads top to bottom)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 60


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for root in ("include", "plugins", "tools"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    size = (node.end_lineno or node.lineno) - node.lineno + 1
                    if size > MAX_LINES:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({size} lines)")
    assert long == []
