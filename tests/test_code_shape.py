"""The code stays readable at a glance, as the formatter lays it out.

- ``ruff format`` formats everything: at most a handful of ``# fmt: skip`` lines in the code,
  each with its reason in a comment on the line above (a table that reads better aligned).
- No function in include/, plugins/ or tools/ is longer than 60 lines as ``ruff format`` lays
  it out (DAG definitions, in dags/, are the exception: a DAG reads top to bottom). The length
  is measured on the formatted code with every ``# fmt: skip`` taken away, so hand-packed lines
  count as the formatter would write them. A function whose steps read top to bottom may be
  longer when a comment starting ``# long:`` says why, right after its signature or docstring.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 60
CODE = ("include", "plugins", "tools", "dags")
MEASURED = ("include", "plugins", "tools")
MOST_SKIPS = 5
SKIP = re.compile(r"\s*# fmt: skip\s*$")
LONG_BECAUSE = re.compile(r"^\s*# long: \S")


def _formatted_copy(tmp: Path) -> Path:
    """The measured folders copied under ``tmp`` with every ``# fmt: skip`` removed, then formatted."""
    for root in MEASURED:
        for path in (REPO / root).rglob("*.py"):
            dest = tmp / path.relative_to(REPO)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text("\n".join(SKIP.sub("", line) for line in path.read_text().splitlines()) + "\n")
    shutil.copy(REPO / "pyproject.toml", tmp / "pyproject.toml")
    subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--quiet", "--config", str(tmp / "pyproject.toml"), *MEASURED],
        cwd=tmp,
        check=True,
    )
    return tmp


def _exempt(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> bool:
    """The function says why it stays long: a ``# long:`` comment before its first statement
    (after the signature and docstring)."""
    body = node.body
    has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1
    first = body[1] if has_doc else body[0]
    return any(LONG_BECAUSE.match(line) for line in lines[node.lineno - 1 : first.lineno - 1])


def test_no_function_is_longer_than_a_screen(tmp_path: Path) -> None:
    formatted = _formatted_copy(tmp_path)
    long = []
    for root in MEASURED:
        for path in sorted((formatted / root).rglob("*.py")):
            text = path.read_text()
            lines = text.splitlines()
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    size = (node.end_lineno or node.lineno) - node.lineno + 1
                    if size > MAX_LINES and not _exempt(node, lines):
                        long.append(f"{path.relative_to(formatted)}:{node.lineno} {node.name} ({size} lines)")
    assert long == []


def test_the_formatter_is_switched_off_only_with_a_reason() -> None:
    skips = []
    for root in CODE:
        for path in sorted((REPO / root).rglob("*.py")):
            lines = path.read_text().splitlines()
            for i, line in enumerate(lines):
                if "fmt: off" in line:
                    skips.append(f"{path.relative_to(REPO)}:{i + 1}: fmt: off")
                elif SKIP.search(line):
                    why = lines[i - 1].strip() if i else ""
                    skips.append(f"{path.relative_to(REPO)}:{i + 1}" + ("" if why.startswith("#") else ": no reason"))
    assert not [s for s in skips if s.endswith(("no reason", "fmt: off"))]
    assert len(skips) <= MOST_SKIPS, skips
